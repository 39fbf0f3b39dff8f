/**
 * The API-key lifecycle over HTTP, against the running dev server (real PostgreSQL, Redis and
 * HTTP): create (every expiry form), validation, list and get, use, revoke, roll, expiry and
 * operator suspension, IP allowlists, and that one user can neither see nor change another's
 * keys. Operator actions (suspend, reactivate, expiry, tiers) go through the admin operations.
 *
 * Revocation is checked against the per-isolate key cache: a key is first used several times
 * (so it is served from cache), then revoked, then used at once.
 */
import assert from "node:assert/strict";
import {
  api,
  assertError,
  assertInvalid,
  assertListRefuses,
  assertRateLimitHeaders,
  e2e,
  uniqueIp,
} from "./_harness.ts";
import { closeDbLast, db, newKey, newTier, newUser, type TestUser } from "./_fixtures.ts";
import { setKeyExpiry, setKeyStatus, setKeyTier, setUserTier } from "../tools/admin/ops.ts";
import { MAX_INSTANT_LENGTH } from "../supabase/functions/_shared/schemas/common.ts";
import { delay as sleep } from "../supabase/functions/_shared/deadline.ts";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const KEY = /^sk_(live|test)_[A-Za-z0-9_-]{48}$/;
const DAY_MS = 86_400_000;
const TIERS = {
  free: "01JBG7XKQM9F3Y8W2Z5N4P1R6A",
  professional: "01JBG7XKQM9F3Y8W2Z5N4P1R6B",
  enterprise: "01JBG7XKQM9F3Y8W2Z5N4P1R6C",
} as const;
/** Every field of a key's metadata, as list and get show it (create and roll add `key`). */
const METADATA = [
  "created_at",
  "expires_at",
  "id",
  "ip_allowlist",
  "last_used_at",
  "mode",
  "name",
  "revoked_at",
  "rolled_from",
  "scopes",
  "start",
  "status",
  "tier_id",
];

/** A random address of 198.51.100.0/24 (TEST-NET-2), outside every allowlist used here. */
const outsideIp = () => `198.51.100.${1 + Math.floor(Math.random() * 254)}`;

/** A new user, and their requests to `/api/keys…` from a fresh client address. */
async function newKeysApi() {
  const ip = uniqueIp();
  const user = await newUser();
  return { ip, user, keys: keysApi(user, ip) };
}

/** A signed-in user's requests to `/api/keys…`, from one client address. */
function keysApi(user: TestUser, ip: string) {
  const headers = { Authorization: `Bearer ${user.token}` };
  const send = (method: string, path: string, body?: unknown) =>
    api(`/api/keys${path}`, {
      method,
      ip,
      headers: body === undefined ? headers : { ...headers, "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return {
    create: (body: unknown) => send("POST", "", body),
    list: (query = "") => send("GET", query),
    get: (id: string) => send("GET", `/${id}`),
    revoke: (id: string) => send("POST", `/${id}/revoke`),
    roll: (id: string, body?: unknown) => send("POST", `/${id}/roll`, body),
    /** A body as it is, JSON unless `type` says otherwise. */
    raw: (method: string, path: string, body: BodyInit, type = "application/json") =>
      api(`/api/keys${path}`, { method, ip, headers: { ...headers, "Content-Type": type }, body }),
  };
}

/** `GET /api/v1/test` with this key. */
function useKey(key: string, ip: string, extra: Record<string, string> = {}) {
  return api("/api/v1/test", { ip, headers: { "X-API-Key": key, ...extra } });
}

/** Creates a key over HTTP and asserts the 201. */
async function created(keys: ReturnType<typeof keysApi>, body: Record<string, unknown>) {
  const r = await keys.create({ name: "k", mode: "test", ...body });
  assert.equal(r.status, 201, r.text);
  return r.body as { id: string; key: string } & Record<string, unknown>;
}

function assertNear(iso: unknown, expected: number, toleranceMs: number, what: string): void {
  assert.equal(typeof iso, "string", what);
  const delta = Math.abs(Date.parse(iso as string) - expected);
  assert.ok(delta <= toleranceMs, `${what}: ${iso} is ${delta} ms from expected`);
}

// --- create -------------------------------------------------------------------------------------

e2e("create: 201 with every expiry form; the key once, metadata, deduplicated scopes", async () => {
  const { ip, keys } = await newKeysApi();

  const started = Date.now();
  const forms: Array<[Record<string, unknown>, number | null]> = [
    [{ expires_in: "90d" }, started + 90 * DAY_MS],
    [{ expires_in: "1y" }, started + 365 * DAY_MS],
    [{ expires_in: "never" }, null],
    [{}, null],
    [{ expires_at: "2030-01-02T03:04:05+01:00" }, Date.parse("2030-01-02T02:04:05Z")],
  ];
  const made: Array<{ id: string; key: string }> = [];
  for (const [form, expected] of forms) {
    const r = await keys.create({ name: " ci ", mode: "live", scopes: ["read"], ...form });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), [...METADATA, "key"].sort());
    assert.match(r.body.key, KEY);
    assert.ok(r.body.key.startsWith("sk_live_"));
    assert.equal(r.body.start, r.body.key.slice(0, 12), "start is the key's first 12 characters");
    assert.match(r.body.id, ULID);
    assert.equal(r.body.name, "ci", "the name is trimmed");
    assert.equal(r.body.mode, "live");
    assert.equal(r.body.status, "active");
    assert.equal(r.body.tier_id, TIERS.free, "a key takes its account's tier");
    assert.equal(r.body.ip_allowlist, null);
    assert.equal(r.body.last_used_at, null);
    assert.equal(r.body.revoked_at, null);
    assert.equal(r.body.rolled_from, null);
    assertNear(r.body.created_at, Date.now(), 10_000, "created_at");
    if (expected === null) assert.equal(r.body.expires_at, null, JSON.stringify(form));
    else assertNear(r.body.expires_at, expected, 10_000, JSON.stringify(form));
    made.push({ id: r.body.id, key: r.body.key });
  }

  const scoped = await keys.create({
    name: "dup",
    mode: "test",
    scopes: ["write", "read", "write"],
  });
  assert.equal(scoped.status, 201, scoped.text);
  assert.deepEqual(scoped.body.scopes, ["write", "read"], "scopes deduplicated, order kept");
  assert.ok(scoped.body.key.startsWith("sk_test_"));
  const defaulted = await created(keys, { name: "default scopes" });
  assert.deepEqual(defaulted.scopes, ["read"], "scopes default to read");

  // The key works, and neither list nor get ever shows it (or its hash) again.
  const used = await useKey(made[0]!.key, ip);
  assert.equal(used.status, 200, used.text);
  assert.equal(used.body.key_info.key_id, made[0]!.id);
  const listed = await keys.list("?limit=100");
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.body.data.length, 7);
  for (const item of listed.body.data) {
    assert.deepEqual(Object.keys(item).sort(), METADATA);
  }
  for (const { id, key } of made) {
    const got = await keys.get(id);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(Object.keys(got.body).sort(), METADATA);
    assert.equal(got.body.start, key.slice(0, 12));
    for (const text of [got.text, listed.text]) {
      assert.ok(!text.includes(key), "the full key is never returned again");
      assert.ok(!text.includes(key.slice(12)), "nor its secret part");
      assert.ok(!text.includes("key_hash"), "nor its hash");
    }
  }
  // A lower-case id names the same key.
  assert.equal((await keys.get(made[0]!.id.toLowerCase())).body.id, made[0]!.id);

  // last_used_at follows use (written with the request log, after the response).
  let lastUsed: unknown = null;
  for (let i = 0; i < 30 && lastUsed === null; i++) {
    await sleep(100);
    lastUsed = (await keys.get(made[0]!.id)).body.last_used_at;
  }
  assertNear(lastUsed, Date.now(), 10_000, "last_used_at after use");
});

// --- validation -----------------------------------------------------------------------------------

e2e("create: invalid bodies are 400/413/415 naming the field, never a 500", async () => {
  const { keys } = await newKeysApi();
  const valid = { name: "v", mode: "test" };

  const cases: Array<[unknown, string]> = [
    [{ ...valid, admin: true }, "admin"],
    [{ ...valid, key: "sk_test_chosen" }, "key"],
    [{ ...valid, tier_id: TIERS.enterprise }, "tier_id"],
    [{ ...valid, status: "active" }, "status"],
    [{ ...valid, name: 42 }, "name"],
    [{ ...valid, name: "   " }, "name"],
    [{ ...valid, name: "x".repeat(101) }, "name"],
    [{ mode: "test" }, "name"],
    [{ ...valid, mode: "prod" }, "mode"],
    [{ name: "v" }, "mode"],
    [{ ...valid, scopes: "read" }, "scopes"],
    [{ ...valid, scopes: [] }, "scopes"],
    [{ ...valid, scopes: ["admin"] }, "scopes.0"],
    [{ ...valid, scopes: ["read", 7] }, "scopes.1"],
    [{ ...valid, expires_in: "30d" }, "expires_in"],
    [{ ...valid, expires_in: 90 }, "expires_in"],
    [{ ...valid, expires_at: "2030-01-01" }, "expires_at"],
    [{ ...valid, expires_at: "tomorrow" }, "expires_at"],
    [{ ...valid, expires_in: "90d", expires_at: "2030-01-01T00:00:00Z" }, "expires_at"],
    [{ ...valid, expires_at: "2020-01-01T00:00:00Z" }, "expires_at"],
    [{ ...valid, expires_at: new Date(Date.now() - 1000).toISOString() }, "expires_at"],
    [{ ...valid, expires_at: "2099-01-01T00:00:00Z" }, "expires_at"],
    [{ ...valid, ip_allowlist: "203.0.113.0/24" }, "ip_allowlist"],
    [{ ...valid, ip_allowlist: [] }, "ip_allowlist"],
    [{ ...valid, ip_allowlist: ["not-an-ip"] }, "ip_allowlist.0"],
    [{ ...valid, ip_allowlist: ["203.0.113.0/33"] }, "ip_allowlist.0"],
    [{ ...valid, ip_allowlist: ["203.0.113.0/24", "10.0.0.1/8"] }, "ip_allowlist.1"],
    [{ ...valid, ip_allowlist: ["2001:db8::1/32"] }, "ip_allowlist.0"],
    [{ ...valid, ip_allowlist: [12] }, "ip_allowlist.0"],
    [null, "(root)"],
    [[], "(root)"],
    ["key", "(root)"],
    [42, "(root)"],
  ];
  for (const [body, path] of cases) {
    const r = await keys.create(body);
    assert.notEqual(r.status, 500, `${JSON.stringify(body)}: ${r.text}`);
    assertInvalid(r, path);
    assert.equal(r.body.statusCode, 400, "JWT routes carry statusCode");
  }
  const hostBits = await keys.create({ ...valid, ip_allowlist: ["10.0.0.1/8"] });
  // `expires_at` takes at most 35 characters (nanoseconds and an offset): one more is refused
  // though zod's pattern would take any number of digits.
  const inAWeek = new Date(Date.now() + 7 * DAY_MS).toISOString().slice(0, 19);
  const longest = `${inAWeek}.123456789+00:00`;
  assert.equal(longest.length, MAX_INSTANT_LENGTH);
  const atBound = await (await newKeysApi()).keys.create({ ...valid, expires_at: longest });
  assert.equal(atBound.status, 201, atBound.text);
  assertInvalid(
    await keys.create({ ...valid, expires_at: `${inAWeek}.1234567890+00:00` }),
    "expires_at",
  );
  assert.match(JSON.stringify(hostBits.body.details), /host bits set; did you mean 10\.0\.0\.0\/8/);
  assertError(await keys.raw("POST", "", "{not json"), 400, "INVALID_JSON");
  assertError(await keys.raw("POST", "", ""), 400, "INVALID_JSON");
  assertError(await keys.raw("POST", "", new Uint8Array([0xff, 0xfe])), 400, "INVALID_JSON");
  assertError(
    await keys.raw("POST", "", JSON.stringify(valid), "text/plain"),
    415,
    "UNSUPPORTED_MEDIA_TYPE",
  );
  assertError(
    await keys.raw("POST", "", "name=v&mode=test", "application/x-www-form-urlencoded"),
    415,
    "UNSUPPORTED_MEDIA_TYPE",
  );
  // Over 16 KiB: refused by its Content-Length, and also when streamed without one.
  const big = JSON.stringify({ ...valid, name: "x".repeat(17 * 1024) });
  assertError(await keys.raw("POST", "", big), 413, "PAYLOAD_TOO_LARGE");
  const streamed = new ReadableStream<Uint8Array>({
    start(controller) {
      const bytes = new TextEncoder().encode(big);
      for (let at = 0; at < bytes.length; at += 4096) {
        controller.enqueue(bytes.slice(at, at + 4096));
      }
      controller.close();
    },
  });
  assertError(await keys.raw("POST", "", streamed), 413, "PAYLOAD_TOO_LARGE");
  // Deeply nested bodies within the size limit are a validation matter too.
  const deepArray = "[".repeat(8000) + "]".repeat(8000);
  const deepObject = '{"a":'.repeat(2500) + "1" + "}".repeat(2500);
  assertInvalid(await keys.raw("POST", "", deepArray), "(root)");
  assertInvalid(await keys.raw("POST", "", deepObject), "a");
  // Just under the limit is only a validation matter (the name is too long), not a size one.
  const under = JSON.stringify({ ...valid, name: "x".repeat(15 * 1024) });
  assertInvalid(await keys.raw("POST", "", under), "name");

  // List query validation.
  await assertListRefuses(keys.list, [
    ["?mode=prod", "mode"],
    ["?status=deleted", "status"],
    ["?sort=name", "sort"],
  ]);
  assert.equal((await keys.list()).body.data.length, 0, "nothing was created by any of this");
});

// PostgreSQL text cannot hold U+0000: such a string is refused up front, 400 naming the field.
e2e("create: a NUL character in a string is 400 naming the field, not a 500", async () => {
  const keys = keysApi(await newUser(), uniqueIp());
  assertInvalid(await keys.create({ name: "a\u0000b", mode: "test" }), "name");
  assert.equal((await keys.list()).body.pagination.total, 0);
});

// --- list and get -------------------------------------------------------------------------------

e2e("list: newest first, limit/offset with total, filters by mode and status", async () => {
  const { keys } = await newKeysApi();
  const ids: string[] = [];
  for (const mode of ["live", "test", "live", "test", "live"]) {
    ids.push((await created(keys, { name: `k${ids.length}`, mode })).id);
  }
  assert.equal((await keys.revoke(ids[0]!)).status, 200);
  const newestFirst = [...ids].reverse();

  const all = await keys.list();
  assert.equal(all.status, 200, all.text);
  assert.deepEqual(all.body.data.map((k: { id: string }) => k.id), newestFirst);
  assert.deepEqual(all.body.pagination, { limit: 20, offset: 0, total: 5 });

  const page1 = await keys.list("?limit=2");
  const page2 = await keys.list("?limit=2&offset=2");
  const page3 = await keys.list("?limit=2&offset=4");
  const beyond = await keys.list("?limit=2&offset=10");
  assert.deepEqual(page1.body.data.map((k: { id: string }) => k.id), newestFirst.slice(0, 2));
  assert.deepEqual(page2.body.data.map((k: { id: string }) => k.id), newestFirst.slice(2, 4));
  assert.deepEqual(page3.body.data.map((k: { id: string }) => k.id), newestFirst.slice(4));
  assert.deepEqual(page1.body.pagination, { limit: 2, offset: 0, total: 5 });
  assert.deepEqual(page2.body.pagination, { limit: 2, offset: 2, total: 5 });
  assert.deepEqual(beyond.body.data, []);
  // Past the end no row carries the count: the total is still the whole list's.
  assert.deepEqual(beyond.body.pagination, { limit: 2, offset: 10, total: 5 });

  const live = await keys.list("?mode=live");
  assert.deepEqual(live.body.data.map((k: { id: string }) => k.id), [ids[4], ids[2], ids[0]]);
  assert.equal(live.body.pagination.total, 3);
  const test = await keys.list("?mode=test&limit=100");
  assert.deepEqual(test.body.data.map((k: { id: string }) => k.id), [ids[3], ids[1]]);
  const revoked = await keys.list("?status=revoked");
  assert.deepEqual(revoked.body.data.map((k: { id: string }) => k.id), [ids[0]]);
  assert.equal(revoked.body.data[0].status, "revoked");
  const activeLive = await keys.list("?status=active&mode=live");
  assert.deepEqual(activeLive.body.data.map((k: { id: string }) => k.id), [ids[4], ids[2]]);
  assert.deepEqual((await keys.list("?status=suspended")).body.data, []);

  const got = await keys.get(ids[1]!);
  assert.equal(got.status, 200);
  assert.equal(got.body.name, "k1");
  assert.equal(got.body.mode, "test");
});

e2e("ids: malformed or unknown → 404; another user's key → 404 and it keeps working", async () => {
  const ip = uniqueIp();
  const alice = await newUser();
  const bob = await newUser();
  const aliceKeys = keysApi(alice, ip);
  const bobKeys = keysApi(bob, ip);
  const key = await created(aliceKeys, { name: "alice's" });

  for (const id of ["nope", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "%00"]) {
    assertError(await aliceKeys.get(id), 404, "NOT_FOUND");
    assertError(await aliceKeys.revoke(id), 404, "NOT_FOUND");
    assertError(await aliceKeys.roll(id), 404, "NOT_FOUND");
  }
  // Existence is not revealed: another user's key id looks exactly like an unknown one.
  const unknown = await bobKeys.get("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  const theirs = await bobKeys.get(key.id);
  assertError(theirs, 404, "NOT_FOUND");
  assert.equal(theirs.body.message, unknown.body.message);
  assertError(await bobKeys.revoke(key.id), 404, "NOT_FOUND");
  assertError(await bobKeys.roll(key.id, { grace_period_seconds: 0 }), 404, "NOT_FOUND");
  assert.deepEqual((await bobKeys.list()).body.data, [], "bob lists none of alice's keys");

  const still = await useKey(key.key, ip);
  assert.equal(still.status, 200, "alice's key still works");
  // A key cannot manage keys, its own included: key management takes the user's JWT.
  const byKey = await api(`/api/keys/${key.id}/revoke`, {
    method: "POST",
    ip,
    headers: { "X-API-Key": key.key },
  });
  assertError(byKey, 401, "MISSING_AUTH_TOKEN");
  const mine = await aliceKeys.get(key.id);
  assert.equal(mine.body.status, "active");
  assert.equal(mine.body.expires_at, null, "bob's roll did not shorten it");
  assert.equal((await aliceKeys.list()).body.pagination.total, 1, "bob's roll made no key");
});

// --- use, revoke -------------------------------------------------------------------------------

e2e(
  "revoke: the very next request is refused, even after cached successes; twice is 200",
  async () => {
    const { ip, keys } = await newKeysApi();
    const key = await created(keys, { name: "to revoke", scopes: ["read", "write"] });

    // Several successes, the later ones served from the isolate's key cache.
    for (let i = 0; i < 4; i++) {
      const r = await useKey(key.key, ip);
      assert.equal(r.status, 200, r.text);
      assertRateLimitHeaders(r, 20);
    }
    const vault = await api("/api/v1/vaults", { ip, headers: { "X-API-Key": key.key } });
    assert.equal(vault.status, 200, vault.text);
    // Proof that the cache is in play: a change made by hand in SQL (which announces nothing)
    // is not seen by the next requests, which are answered from the cached lookup.
    await db()`update public.api_keys set name = 'renamed by hand' where id = ${key.id}`;
    const names: string[] = [];
    for (let i = 0; i < 3; i++) names.push((await useKey(key.key, ip)).body.key_info.key_name);
    assert.ok(names.includes("to revoke"), `served from cache: ${names.join(", ")}`);

    const revoked = await keys.revoke(key.id);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body.status, "revoked");
    assertNear(revoked.body.revoked_at, Date.now(), 10_000, "revoked_at");
    assert.equal(revoked.body.key, undefined, "revoke does not return the key");

    const next = await useKey(key.key, ip);
    assertError(next, 401, "API_KEY_NOT_ACTIVE");
    assert.equal(next.body.message, "API key is revoked");
    assertError(
      await api("/api/v1/vaults", { ip, headers: { "X-API-Key": key.key } }),
      401,
      "API_KEY_NOT_ACTIVE",
    );

    const again = await keys.revoke(key.id);
    assert.equal(again.status, 200, "revoking twice is not an error");
    assert.equal(again.body.status, "revoked");
    assert.equal(again.body.revoked_at, revoked.body.revoked_at, "the first revocation stands");
    assertError(await keys.roll(key.id), 409, "KEY_NOT_ACTIVE");
    assertError(await useKey(key.key, ip), 401, "API_KEY_NOT_ACTIVE");
  },
);

e2e("a user cannot hold more than 100 active keys (409 KEY_LIMIT_REACHED)", async () => {
  const { user, keys } = await newKeysApi();
  // 99 keys made directly (cheap), the 100th over HTTP.
  await db()`insert into public.api_keys (user_id, name, mode, start, key_hash, tier_id)
    select ${user.userId}, 'bulk', 'test', 'sk_test_bulk', extensions.gen_random_bytes(32),
      ${TIERS.free}
    from generate_series(1, 99)`;
  const last = await created(keys, { name: "100th" });
  assertError(await keys.create({ name: "101st", mode: "live" }), 409, "KEY_LIMIT_REACHED");
  assert.equal((await keys.revoke(last.id)).status, 200);
  await created(keys, { name: "100th again" });
});

// --- roll --------------------------------------------------------------------------------------

e2e("roll (default grace 24 h): a new key with the same settings; both keys work", async () => {
  const ip = uniqueIp();
  const user = await newUser();
  await setUserTier(db(), user.email, "enterprise");
  const keys = keysApi(user, ip);
  const allowed = "203.0.113.0/24";
  const old = await created(keys, {
    name: "rolling",
    mode: "live",
    scopes: ["read", "delete"],
    expires_in: "1y",
    ip_allowlist: [allowed],
  });
  const from = "203.0.113.20";
  for (let i = 0; i < 3; i++) assert.equal((await useKey(old.key, from)).status, 200);

  // No body at all is the default grace period.
  const r = await keys.roll(old.id);
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(Object.keys(r.body).sort(), [...METADATA, "key", "previous_key"].sort());
  assert.match(r.body.key, KEY);
  assert.ok(r.body.key.startsWith("sk_live_"));
  assert.notEqual(r.body.key, old.key);
  assert.notEqual(r.body.id, old.id);
  assert.equal(r.body.start, r.body.key.slice(0, 12));
  assert.equal(r.body.rolled_from, old.id);
  for (const field of ["name", "mode", "scopes", "expires_at", "ip_allowlist", "tier_id"]) {
    assert.deepEqual(r.body[field], old[field], `the new key keeps ${field}`);
  }
  assert.equal(r.body.status, "active");
  assert.deepEqual(Object.keys(r.body.previous_key).sort(), METADATA);
  assert.equal(r.body.previous_key.id, old.id);
  assert.equal(r.body.previous_key.status, "active");
  assertNear(r.body.previous_key.expires_at, Date.now() + DAY_MS, 10_000, "grace of 24 h");

  const oldUse = await useKey(old.key, from);
  assert.equal(oldUse.status, 200, `the old key works during its grace period: ${oldUse.text}`);
  const newUse = await useKey(r.body.key, from);
  assert.equal(newUse.status, 200, newUse.text);
  assert.equal(newUse.body.key_info.key_id, r.body.id);
  assertError(await useKey(r.body.key, outsideIp()), 403, "IP_NOT_ALLOWED");

  // A grace period never extends a key: one that expires sooner keeps its expiry.
  const soon = new Date(Date.now() + 3_600_000).toISOString();
  const short = await created(keys, { name: "short", expires_at: soon });
  const rolled = await keys.roll(short.id, { grace_period_seconds: 7 * 86_400 });
  assert.equal(rolled.status, 201, rolled.text);
  assertNear(rolled.body.previous_key.expires_at, Date.parse(soon), 1000, "expiry kept");
});

e2e("roll with grace 0: the old key is expired at once, the new one works", async () => {
  const { ip, keys } = await newKeysApi();
  const old = await created(keys, { name: "zero", scopes: ["read", "write"] });
  for (let i = 0; i < 3; i++) assert.equal((await useKey(old.key, ip)).status, 200);

  const r = await keys.roll(old.id, { grace_period_seconds: 0 });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.previous_key.status, "expired");
  assertNear(r.body.previous_key.expires_at, Date.now(), 5000, "expired now");
  assertError(await useKey(old.key, ip), 401, "API_KEY_EXPIRED");
  assert.equal((await useKey(r.body.key, ip)).status, 200);

  const got = await keys.get(old.id);
  assert.equal(got.body.status, "expired");
  assertError(await keys.roll(old.id), 409, "KEY_NOT_ACTIVE");
  assertError(await keys.roll(r.body.key), 404, "NOT_FOUND");
});

// The status filter works on the status shown: an active key past its expires_at is `expired`.
e2e("list: the status filter agrees with the status shown (lapsed keys are expired)", async () => {
  const { keys } = await newKeysApi();
  const old = await created(keys, { name: "lapsing" });
  const r = await keys.roll(old.id, { grace_period_seconds: 0 });
  assert.equal(r.status, 201, r.text);
  const active = await keys.list("?status=active");
  for (const k of active.body.data) assert.equal(k.status, "active", JSON.stringify(k));
  assert.deepEqual(active.body.data.map((k: { id: string }) => k.id), [r.body.id]);
  const expired = await keys.list("?status=expired");
  assert.deepEqual(expired.body.data.map((k: { id: string }) => k.id), [old.id]);
});

// A rolled key keeps its own tier, also one an operator set with `key tier` (migration
// 20261123120000_roll_keeps_tier).
e2e("roll keeps the key's own tier (set by an operator with key tier)", async () => {
  const { ip, keys } = await newKeysApi();
  const old = await created(keys, { name: "special deal" });
  await setKeyTier(db(), old.id, "professional");
  const r = await keys.roll(old.id, { grace_period_seconds: 60 });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.previous_key.tier_id, TIERS.professional);
  assert.equal(r.body.tier_id, TIERS.professional, "the new key keeps the old key's tier");
  const used = await useKey(r.body.key, ip);
  assert.equal(used.body.key_info.rate_limits.requests_per_minute, 120);
});

e2e("roll with grace 2 s: the old key works, then fails as expired after ~2.5 s", async () => {
  const { ip, keys } = await newKeysApi();
  const old = await created(keys, { name: "two seconds" });
  assert.equal((await useKey(old.key, ip)).status, 200);

  const r = await keys.roll(old.id, { grace_period_seconds: 2 });
  assert.equal(r.status, 201, r.text);
  const ends = Date.parse(r.body.previous_key.expires_at);
  assertNear(r.body.previous_key.expires_at, Date.now() + 2000, 2000, "grace of 2 s");
  assert.equal(r.body.previous_key.status, "active");
  assert.equal((await useKey(old.key, ip)).status, 200, "still within its grace period");
  assert.equal((await useKey(r.body.key, ip)).status, 200);

  await sleep(Math.max(0, ends + 500 - Date.now()));
  assertError(await useKey(old.key, ip), 401, "API_KEY_EXPIRED");
  assert.equal((await useKey(r.body.key, ip)).status, 200);
});

e2e(
  "roll: grace_period_seconds is validated (0 … 30 days, whole seconds, nothing else)",
  async () => {
    const { keys } = await newKeysApi();
    const key = await created(keys, { name: "validated" });
    for (
      const [body, path] of [
        [{ grace_period_seconds: -1 }, "grace_period_seconds"],
        [{ grace_period_seconds: 30 * 86_400 + 1 }, "grace_period_seconds"],
        [{ grace_period_seconds: 1.5 }, "grace_period_seconds"],
        [{ grace_period_seconds: "60" }, "grace_period_seconds"],
        [{ grace_period_seconds: null }, "grace_period_seconds"],
        [{ grace: 60 }, "grace"],
        [[], "(root)"],
      ] as const
    ) {
      assertInvalid(await keys.roll(key.id, body), path);
    }
    assertError(
      await keys.raw("POST", `/${key.id}/roll`, "{}", "text/plain"),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    assertError(await keys.raw("POST", `/${key.id}/roll`, "{"), 400, "INVALID_JSON");
    assertError(
      await keys.raw("POST", `/${key.id}/roll`, JSON.stringify({ pad: "x".repeat(17 * 1024) })),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    const max = await keys.roll(key.id, { grace_period_seconds: 30 * 86_400 });
    assert.equal(max.status, 201, "30 days is allowed");
    assert.equal((await keys.list()).body.pagination.total, 2, "only the valid roll made a key");
  },
);

// --- operator actions ---------------------------------------------------------------------------

e2e(
  "expiry set by an operator: the next request is API_KEY_EXPIRED, even after cached use",
  async () => {
    const ip = uniqueIp();
    const key = await newKey({ mode: "live" });
    for (let i = 0; i < 3; i++) assert.equal((await useKey(key.key, ip)).status, 200);
    await setKeyExpiry(db(), key.id, new Date(Date.now() - 1000));
    const r = await useKey(key.key, ip);
    assertError(r, 401, "API_KEY_EXPIRED");
    assert.equal(r.body.message, "API key has expired");
    const owner = keysApi(await newUser(3600, key.email), ip);
    assert.equal((await owner.get(key.id)).body.status, "expired");
    // Given back a future expiry, the key works again at once (no refusal outlives an expiry).
    await setKeyExpiry(db(), key.id, null);
    assert.equal((await useKey(key.key, ip)).status, 200);
  },
);

e2e(
  "suspend: refused on the next request after cached use; reactivation works within 10 s " +
    "(the refused-answer cache bound)",
  async () => {
    const ip = uniqueIp();
    const key = await newKey({ mode: "test", scopes: ["read"] });
    for (let i = 0; i < 3; i++) assert.equal((await useKey(key.key, ip)).status, 200);

    await setKeyStatus(db(), key.id, "suspended");
    const refused = await useKey(key.key, ip);
    assertError(refused, 401, "API_KEY_NOT_ACTIVE");
    assert.equal(refused.body.message, "API key is suspended");
    const owner = keysApi(await newUser(3600, key.email), ip);
    assert.equal((await owner.get(key.id)).body.status, "suspended");
    assertError(await owner.roll(key.id), 409, "KEY_NOT_ACTIVE");

    await setKeyStatus(db(), key.id, "active");
    const reactivated = Date.now();
    let r = await useKey(key.key, uniqueIp());
    // Each poll from its own address: refusals count against the client IP's hourly limit.
    while (r.status !== 200 && Date.now() - reactivated < 10_500) {
      assertError(r, 401, "API_KEY_NOT_ACTIVE");
      await sleep(500);
      r = await useKey(key.key, uniqueIp());
    }
    assert.equal(r.status, 200, `reactivated within 10 s: ${r.text}`);
    assert.equal((await owner.get(key.id)).body.status, "active");
  },
);

e2e("key tier: the next request carries the new tier's limits (body and headers)", async () => {
  const ip = uniqueIp();
  const key = await newKey({ mode: "test", tier: "free" });
  for (let i = 0; i < 3; i++) {
    const r = await useKey(key.key, ip);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.key_info.rate_limits, {
      requests_per_minute: 20,
      requests_per_day: 2000,
    });
  }
  await setKeyTier(db(), key.id, "professional");
  const r = await useKey(key.key, ip);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.key_info.tier_id, TIERS.professional);
  assert.deepEqual(r.body.key_info.rate_limits, {
    requests_per_minute: 120,
    requests_per_day: 20_000,
  });
  // The first request after the change was rate-limited with the cached key's old windows
  // until c022a16 ("limits redone when a cached key's tier changed"): headers show the new tier.
  assertRateLimitHeaders(r, 120);
  assert.match(r.headers.get("ratelimit-policy") ?? "", /"minute";q=120;w=60/);
});

e2e("user tier: an upgrade applies to the user's existing keys on their next request", async () => {
  const { ip, user, keys } = await newKeysApi();
  const live = await created(keys, { name: "live", mode: "live" });
  const gone = await created(keys, { name: "gone", mode: "live" });
  assert.equal((await keys.revoke(gone.id)).status, 200);
  for (let i = 0; i < 3; i++) {
    assert.equal((await useKey(live.key, ip)).body.key_info.rate_limits.requests_per_minute, 10);
  }
  const tier = await newTier(77, 7777);
  const change = await setUserTier(db(), user.email, tier);
  assert.equal(change.keysMoved, 1);
  const r = await useKey(live.key, ip);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.key_info.rate_limits, {
    requests_per_minute: 77,
    requests_per_day: 7777,
  });
  assert.equal((await keys.get(live.id)).body.tier_id, change.id);
  assert.equal(
    (await keys.get(gone.id)).body.tier_id,
    TIERS.free,
    "revoked keys stay as they were",
  );
  const fresh = await created(keys, { name: "new" });
  assert.equal(fresh.tier_id, change.id, "new keys take the account's tier");
});

// --- IP allowlist -------------------------------------------------------------------------------

e2e(
  "IP allowlist (Enterprise): inside → 200, outside → 403 IP_NOT_ALLOWED; IPv4 and IPv6",
  async () => {
    const ip = uniqueIp();
    const user = await newUser();
    await setUserTier(db(), user.email, "enterprise");
    const keys = keysApi(user, ip);
    const v4 = await created(keys, { name: "v4", mode: "live", ip_allowlist: ["203.0.113.0/24"] });
    assert.deepEqual(v4.ip_allowlist, ["203.0.113.0/24"]);
    assert.equal(v4.tier_id, TIERS.enterprise);

    for (const from of ["203.0.113.7", "203.0.113.7, 10.0.0.1", "::ffff:203.0.113.9"]) {
      const r = await useKey(v4.key, from);
      assert.equal(r.status, 200, `${from}: ${r.text}`);
    }
    for (const from of [outsideIp(), `${outsideIp()}, 203.0.113.7`, "2001:db8::7"]) {
      const r = await useKey(v4.key, from);
      assertError(r, 403, "IP_NOT_ALLOWED");
      assert.equal(
        r.body.message,
        "Requests from this IP address are not allowed for this API key",
      );
    }
    // The allowlist guards every API-key route, not only the test endpoint.
    assertError(
      await api("/api/v1/vaults", { ip: outsideIp(), headers: { "X-API-Key": v4.key } }),
      403,
      "IP_NOT_ALLOWED",
    );

    const v6 = await created(keys, {
      name: "v6",
      mode: "test",
      ip_allowlist: ["2001:db8:abcd::/48", "192.0.2.1"],
    });
    assert.deepEqual(v6.ip_allowlist, ["2001:db8:abcd::/48", "192.0.2.1/32"]);
    for (const from of ["2001:db8:abcd::1", "2001:db8:abcd:ffff::2", "192.0.2.1"]) {
      assert.equal((await useKey(v6.key, from)).status, 200, from);
    }
    for (const from of ["2001:db8:abce::1", "192.0.2.2"]) {
      assertError(await useKey(v6.key, from), 403, "IP_NOT_ALLOWED");
    }
  },
);

e2e("IP allowlist on a non-Enterprise account: 403 IP_ALLOWLIST_REQUIRES_ENTERPRISE", async () => {
  const { user, keys } = await newKeysApi();
  const r = await keys.create({ name: "x", mode: "live", ip_allowlist: ["203.0.113.0/24"] });
  assertError(r, 403, "IP_ALLOWLIST_REQUIRES_ENTERPRISE");
  assert.equal(r.body.message, "IP allowlists are available on the Enterprise tier only");
  await setUserTier(db(), user.email, "professional");
  assertError(
    await keys.create({ name: "x", mode: "live", ip_allowlist: ["2001:db8::/32"] }),
    403,
    "IP_ALLOWLIST_REQUIRES_ENTERPRISE",
  );
  assert.equal((await keys.list()).body.pagination.total, 0, "no key was made");
});

closeDbLast("api keys");
