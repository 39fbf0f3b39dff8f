/**
 * Vaults over HTTP, against the running dev server: with a user's JWT at `/api/vaults…` and
 * with API keys at `/api/v1/vaults…`. Create, list (pagination, status filter), get, update and
 * soft delete; query and body validation; the scope each method needs; and isolation, checked
 * through every route: one user never sees or changes another's vaults, and data made with a
 * test key never meets live data (a JWT acts in live mode).
 */
import assert from "node:assert/strict";
import {
  api,
  type ApiResponse,
  assertError,
  assertInvalid,
  assertListRefuses,
  e2e,
  uniqueIp,
} from "./_harness.ts";
import { closeDbLast, newKey, newTier, newUser, type TestKey, type TestUser } from "./_fixtures.ts";
import type { KeyScope } from "../tools/admin/ops.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VAULT_FIELDS = [
  "created_at",
  "description",
  "id",
  "mode",
  "name",
  "status",
  "tags",
  "updated_at",
].sort();
const ALL: KeyScope[] = ["read", "write", "delete"];

/** A credential and the vault routes it reaches. */
interface Caller {
  label: string;
  base: "/api/vaults" | "/api/v1/vaults";
  headers: Record<string, string>;
}

const viaJwt = (user: TestUser): Caller => ({
  label: "jwt",
  base: "/api/vaults",
  headers: { Authorization: `Bearer ${user.token}` },
});
const viaKey = (key: TestKey, label = "key"): Caller => ({
  label,
  base: "/api/v1/vaults",
  headers: { "X-API-Key": key.key },
});

/** The vault operations of one caller, from one client address. */
function vaults(caller: Caller, ip: string) {
  const send = (method: string, path: string, body?: unknown) =>
    api(`${caller.base}${path}`, {
      method,
      ip,
      headers: body === undefined
        ? caller.headers
        : { ...caller.headers, "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return {
    list: (query = "") => send("GET", query),
    create: (body: unknown) => send("POST", "", body),
    get: (id: string) => send("GET", `/${id}`),
    update: (id: string, body: unknown) => send("PATCH", `/${id}`, body),
    remove: (id: string) => send("DELETE", `/${id}`),
    /** A body as it is, JSON unless `type` says otherwise. */
    raw: (method: string, path: string, body: BodyInit, type = "application/json") =>
      api(`${caller.base}${path}`, {
        method,
        ip,
        headers: { ...caller.headers, "Content-Type": type },
        body,
      }),
  };
}

let tier: string | undefined;
/** A key with generous limits (a tier of this file's own), for the user of `email`. */
async function key(email: string, mode: "live" | "test", scopes: KeyScope[] = ALL) {
  tier ??= await newTier(1000, 100_000);
  return await newKey({ email, mode, scopes, tier });
}

async function made(v: ReturnType<typeof vaults>, body: Record<string, unknown>) {
  const r = await v.create(body);
  assert.equal(r.status, 201, r.text);
  return r.body as { id: string } & Record<string, unknown>;
}

const ids = (r: ApiResponse): string[] => {
  assert.equal(r.status, 200, r.text);
  return r.body.data.map((v: { id: string }) => v.id);
};

// --- CRUD ---------------------------------------------------------------------------------------

e2e(
  "CRUD with a JWT and with a key: create, get, update, soft delete (204 → inactive)",
  async () => {
    const ip = uniqueIp();
    // Two users: a live key and the JWT of one user would share their (live) vaults.
    const user = await newUser();
    const live = await key((await newUser()).email, "live");
    for (const caller of [viaJwt(user), viaKey(live)]) {
      const v = vaults(caller, ip);
      const name = `enc:v1:${btoa(caller.label)}`;
      const created = await v.create({ name, description: "enc:desc", tags: ["estate", "2026"] });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual(Object.keys(created.body).sort(), VAULT_FIELDS);
      assert.match(created.body.id, UUID);
      assert.equal(created.body.name, name, "stored as given");
      assert.equal(created.body.description, "enc:desc");
      assert.deepEqual(created.body.tags, ["estate", "2026"]);
      assert.equal(created.body.status, "active");
      assert.equal(created.body.mode, "live", `${caller.label} acts in live mode`);
      const id: string = created.body.id;

      const minimal = await made(v, { name: "n" });
      assert.equal(minimal.description, null);
      assert.deepEqual(minimal.tags, []);

      const got = await v.get(id);
      assert.equal(got.status, 200, got.text);
      assert.deepEqual(got.body, created.body);

      const updated = await v.update(id, { name: "renamed", tags: [], description: null });
      assert.equal(updated.status, 200, updated.text);
      assert.equal(updated.body.name, "renamed");
      assert.deepEqual(updated.body.tags, []);
      assert.equal(updated.body.description, null);
      assert.equal(updated.body.created_at, created.body.created_at);
      assert.ok(updated.body.updated_at >= created.body.updated_at, "updated_at moves");

      const deleted = await v.remove(id);
      assert.equal(deleted.status, 204, deleted.text);
      assert.equal(deleted.text, "");
      const after = await v.get(id);
      assert.equal(after.status, 200, "a soft-deleted vault is still there");
      assert.equal(after.body.status, "inactive");
      assert.equal(after.body.name, "renamed");
      assert.equal((await v.remove(id)).status, 204, "deleting again is harmless");

      assert.deepEqual(ids(await v.list("?status=inactive")), [id]);
      assert.deepEqual(ids(await v.list("?status=active")), [minimal.id]);
      assert.deepEqual(ids(await v.list()), [minimal.id, id], "newest first, both statuses");

      // A soft-deleted vault can be brought back.
      const restored = await v.update(id, { status: "active" });
      assert.equal(restored.body.status, "active");
    }
  },
);

e2e("list: limit ≤ 100, offset and total; bad limit/offset/params → 400 naming them", async () => {
  const ip = uniqueIp();
  const user = await newUser();
  const live = await key(user.email, "live");
  const jwt = vaults(viaJwt(user), ip);
  const created: string[] = [];
  for (let i = 0; i < 5; i++) created.push((await made(jwt, { name: `v${i}` })).id);
  const newestFirst = created.reverse();

  for (const caller of [viaJwt(user), viaKey(live)]) {
    const v = vaults(caller, ip);
    const first = await v.list("?limit=2");
    assert.deepEqual(ids(first), newestFirst.slice(0, 2), caller.label);
    assert.deepEqual(first.body.pagination, { limit: 2, offset: 0, total: 5 });
    const second = await v.list("?limit=2&offset=2");
    assert.deepEqual(ids(second), newestFirst.slice(2, 4));
    assert.deepEqual(second.body.pagination, { limit: 2, offset: 2, total: 5 });
    const last = await v.list("?offset=4&limit=100");
    assert.deepEqual(ids(last), newestFirst.slice(4));
    const beyond = await v.list("?offset=50");
    assert.deepEqual(ids(beyond), []);
    assert.deepEqual(beyond.body.pagination, { limit: 20, offset: 50, total: 5 });
    assert.deepEqual((await v.list()).body.pagination, { limit: 20, offset: 0, total: 5 });

    await assertListRefuses(v.list, [
      ["?status=deleted", "status"],
      ["?sort=name", "sort"],
      ["?user_id=00000000-0000-4000-8000-000000000000", "user_id"],
      ["?mode=test", "mode"],
      ["?status=active&status=inactive", "status"],
    ]);
  }
});

e2e("validation: bodies and ids (400/404/413/415, never a 500)", async () => {
  const ip = uniqueIp();
  const user = await newUser();
  const live = await key((await newUser()).email, "live");
  for (const caller of [viaJwt(user), viaKey(live)]) {
    const v = vaults(caller, ip);
    const { id } = await made(v, { name: "target" });

    for (
      const [body, path] of [
        [{}, "name"],
        [{ name: "" }, "name"],
        [{ name: 7 }, "name"],
        [{ name: "n", tags: "estate" }, "tags"],
        [{ name: "n", tags: [""] }, "tags.0"],
        [{ name: "n", tags: Array(51).fill("t") }, "tags"],
        // One past each bound: a name of 10,001 characters, a tag of 65.
        [{ name: "n".repeat(10_001) }, "name"],
        [{ name: "n", tags: ["t".repeat(65)] }, "tags.0"],
        [{ name: "n", description: 5 }, "description"],
        [{ name: "n", status: "inactive" }, "status"],
        [{ name: "n", user_id: user.userId }, "user_id"],
        [{ name: "n", mode: "test" }, "mode"],
        [null, "(root)"],
        [["n"], "(root)"],
      ] as const
    ) {
      assertInvalid(await v.create(body), path);
    }
    for (
      const [body, path] of [
        [{}, "(root)"],
        [{ owner: "me" }, "owner"],
        [{ mode: "test" }, "mode"],
        [{ id: crypto.randomUUID() }, "id"],
        [{ status: "deleted" }, "status"],
        [{ name: "" }, "name"],
        [{ tags: [1] }, "tags.0"],
        [{ name: "n".repeat(10_001) }, "name"],
        [{ tags: Array(51).fill("t") }, "tags"],
        [{ tags: ["t".repeat(65)] }, "tags.0"],
      ] as const
    ) {
      assertInvalid(await v.update(id, body), path);
    }
    // A 400 names at most 100 offending fields, however many the body holds.
    const extra = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`x${i}`, 1]));
    const many = await v.create({ name: "n", ...extra });
    assertInvalid(many, "x0");
    assert.equal(many.body.details.length, 100);
    assertError(await v.raw("POST", "", "{"), 400, "INVALID_JSON");
    assertError(await v.raw("PATCH", `/${id}`, ""), 400, "INVALID_JSON");
    assertError(
      await v.raw("POST", "", '{"name":"n"}', "text/plain"),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    assertError(
      await v.raw("POST", "", JSON.stringify({ name: "x".repeat(65 * 1024) })),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    // Deeply nested bodies within the 64 KiB limit are a validation matter, not a crash.
    const deepArray = "[".repeat(32_000) + "]".repeat(32_000);
    const deepObject = '{"name":'.repeat(7000) + '"x"' + "}".repeat(7000);
    assertInvalid(await v.raw("POST", "", deepArray), "(root)");
    assertInvalid(await v.raw("POST", "", deepObject), "name");
    assertInvalid(await v.raw("PATCH", `/${id}`, deepArray), "(root)");
    for (const bad of ["not-a-uuid", "123", id.slice(0, -1), `${id}x`]) {
      assertError(await v.get(bad), 404, "NOT_FOUND");
      assertError(await v.update(bad, { name: "x" }), 404, "NOT_FOUND");
      assertError(await v.remove(bad), 404, "NOT_FOUND");
    }
    const unknown = crypto.randomUUID();
    assertError(await v.get(unknown), 404, "NOT_FOUND");
    assertError(await v.update(unknown, { name: "x" }), 404, "NOT_FOUND");
    assertError(await v.remove(unknown), 404, "NOT_FOUND");

    const untouched = await v.get(id);
    assert.equal(untouched.body.name, "target", "no failed request changed the vault");
    assert.equal(untouched.body.status, "active");
    assert.equal((await v.list()).body.pagination.total, 1, "no failed request made a vault");
  }
  // At the bounds (a caller of its own): a 10,000-character name (ciphertext), 50 tags of 64.
  const atBounds = await vaults(viaJwt(await newUser()), ip).create({
    name: "n".repeat(10_000),
    tags: Array(50).fill("t".repeat(64)),
  });
  assert.equal(atBounds.status, 201, atBounds.text.slice(0, 300));
});

// PostgreSQL text cannot hold U+0000: such a string is refused up front, 400 naming the field.
e2e("validation: a NUL character in any string field is 400 naming it, not a 500", async () => {
  const ip = uniqueIp();
  const user = await newUser();
  for (const caller of [viaJwt(user), viaKey(await key((await newUser()).email, "test"))]) {
    const v = vaults(caller, ip);
    const { id } = await made(v, { name: "clean" });
    assertInvalid(await v.create({ name: "a\u0000b" }), "name");
    assertInvalid(await v.create({ name: "n", description: "\u0000" }), "description");
    assertInvalid(await v.create({ name: "n", tags: ["ok", "t\u0000"] }), "tags.1");
    assertInvalid(await v.update(id, { name: "\u0000" }), "name");
    assert.equal((await v.get(id)).body.name, "clean");
  }
});

// --- scopes -------------------------------------------------------------------------------------

e2e(
  "scopes: read-only and write-without-delete keys get 403 INSUFFICIENT_SCOPE naming it",
  async () => {
    const ip = uniqueIp();
    const user = await newUser();
    const full = vaults(viaKey(await key(user.email, "test")), ip);
    const { id } = await made(full, { name: "scoped" });

    const reader = vaults(viaKey(await key(user.email, "test", ["read"])), ip);
    assert.deepEqual(ids(await reader.list()), [id]);
    assert.equal((await reader.get(id)).status, 200);
    const refusals: Array<[Promise<ApiResponse>, string]> = [
      [reader.create({ name: "no" }), "write"],
      [reader.update(id, { name: "no" }), "write"],
      [reader.remove(id), "delete"],
    ];
    const writer = vaults(viaKey(await key(user.email, "test", ["read", "write"])), ip);
    refusals.push([writer.remove(id), "delete"]);
    const writeOnly = vaults(viaKey(await key(user.email, "test", ["write"])), ip);
    refusals.push([writeOnly.list(), "read"], [writeOnly.get(id), "read"]);
    const deleteOnly = vaults(viaKey(await key(user.email, "test", ["delete"])), ip);
    refusals.push([deleteOnly.update(id, { name: "no" }), "write"]);
    for (const [pending, scope] of refusals) {
      const r = await pending;
      assertError(r, 403, "INSUFFICIENT_SCOPE");
      assert.equal(r.body.message, `API key lacks the '${scope}' scope`);
      assert.equal(r.body.required_scope, scope);
      assert.equal(r.body.error, "forbidden");
    }
    // Checked before the body or the id: no scope, no information.
    assertError(await reader.create("not json at all"), 403, "INSUFFICIENT_SCOPE");
    assertError(await reader.remove("not-a-uuid"), 403, "INSUFFICIENT_SCOPE");

    const renamed = await writer.update(id, { name: "by writer" });
    assert.equal(renamed.status, 200, "write allows PATCH");
    assert.equal((await writer.create({ name: "by writer" })).status, 201, "write allows POST");
    assert.equal((await deleteOnly.remove(id)).status, 204, "delete allows DELETE");
    const state = await full.get(id);
    assert.equal(state.body.name, "by writer", "refused requests changed nothing");
    assert.equal(state.body.status, "inactive");
  },
);

// --- isolation ----------------------------------------------------------------------------------

e2e("isolation: user B cannot see or change user A's vaults, by JWT or by key", async () => {
  const ip = uniqueIp();
  const alice = await newUser();
  const bob = await newUser();
  const aliceJwt = vaults(viaJwt(alice), ip);
  const aliceLive = vaults(viaKey(await key(alice.email, "live")), ip);
  const aliceTest = vaults(viaKey(await key(alice.email, "test")), ip);
  const liveVault = await made(aliceJwt, { name: "alice live" });
  const testVault = await made(aliceTest, { name: "alice test" });
  const bobCallers = [
    viaJwt(bob),
    viaKey(await key(bob.email, "live"), "bob live key"),
    viaKey(await key(bob.email, "test"), "bob test key"),
  ];
  for (const caller of bobCallers) {
    const v = vaults(caller, ip);
    const own = await made(v, { name: `bob ${caller.label}` });
    // Bob's JWT and live key share Bob's live vaults; none of Alice's ever shows.
    for (const listed of [await v.list(), await v.list("?status=active&limit=100")]) {
      const seen = ids(listed);
      assert.ok(seen.includes(own.id), caller.label);
      assert.ok(!seen.includes(liveVault.id) && !seen.includes(testVault.id), caller.label);
      assert.equal(listed.body.pagination.total, seen.length);
    }
    for (const target of [liveVault, testVault]) {
      assertError(await v.get(target.id), 404, "NOT_FOUND");
      assertError(await v.update(target.id, { name: "pwned" }), 404, "NOT_FOUND");
      assertError(await v.update(target.id, { status: "inactive" }), 404, "NOT_FOUND");
      assertError(await v.remove(target.id), 404, "NOT_FOUND");
    }
  }
  // Alice's vaults are untouched, and Alice sees none of Bob's.
  const live = await aliceLive.get(liveVault.id);
  assert.equal(live.body.name, "alice live");
  assert.equal(live.body.status, "active");
  const test = await aliceTest.get(testVault.id);
  assert.equal(test.body.name, "alice test");
  assert.equal(test.body.status, "active");
  assert.deepEqual(ids(await aliceJwt.list()), [liveVault.id]);
  assert.deepEqual(ids(await aliceTest.list()), [testVault.id]);
});

e2e("test/live: a test key's vaults are invisible to live keys and the JWT, and back", async () => {
  const ip = uniqueIp();
  const user = await newUser();
  const jwt = vaults(viaJwt(user), ip);
  const live = vaults(viaKey(await key(user.email, "live")), ip);
  const test = vaults(viaKey(await key(user.email, "test")), ip);
  const otherTest = vaults(viaKey(await key(user.email, "test", ["read"])), ip);

  const testVault = await made(test, { name: "sandbox" });
  assert.equal(testVault.mode, "test");
  const liveVault = await made(live, { name: "production" });
  assert.equal(liveVault.mode, "live");
  const jwtVault = await made(jwt, { name: "from the app" });
  assert.equal(jwtVault.mode, "live", "a JWT user acts in live mode");

  // Live data: the live key and the JWT see each other's vaults, not the test one.
  for (const v of [live, jwt]) {
    assert.deepEqual(ids(await v.list()), [jwtVault.id, liveVault.id]);
    assert.equal((await v.get(liveVault.id)).status, 200);
    assert.equal((await v.get(jwtVault.id)).status, 200);
    assertError(await v.get(testVault.id), 404, "NOT_FOUND");
    assertError(await v.update(testVault.id, { name: "crossed" }), 404, "NOT_FOUND");
    assertError(await v.remove(testVault.id), 404, "NOT_FOUND");
  }
  // Test data: every test key of the user sees it, and nothing live.
  assert.deepEqual(ids(await otherTest.list()), [testVault.id]);
  assert.deepEqual(ids(await test.list()), [testVault.id]);
  for (const target of [liveVault, jwtVault]) {
    assertError(await test.get(target.id), 404, "NOT_FOUND");
    assertError(await test.update(target.id, { name: "crossed" }), 404, "NOT_FOUND");
    assertError(await test.remove(target.id), 404, "NOT_FOUND");
  }
  assert.equal((await test.list("?status=inactive")).body.pagination.total, 0);

  // Nothing crossed over.
  const sandbox = await test.get(testVault.id);
  assert.equal(sandbox.body.name, "sandbox");
  assert.equal(sandbox.body.status, "active");
  for (const id of [liveVault.id, jwtVault.id]) {
    const r = await jwt.get(id);
    assert.notEqual(r.body.name, "crossed");
    assert.equal(r.body.status, "active");
  }
});

e2e(
  "a string that is not valid Unicode is refused with 400 naming its field, never changed",
  async () => {
    const user = await newUser();
    const key = await newKey({ mode: "test", scopes: ALL });
    for (const caller of [viaJwt(user), viaKey(key)]) {
      const v = vaults(caller, uniqueIp());
      const before = (await v.list()).body.pagination.total;
      // Raw bodies: the lone surrogates are JSON escapes, which JSON.parse turns into
      // UTF-16 code units that no UTF-8 encoding (PostgreSQL's) can hold.
      const cases: Array<[string, string]> = [
        ['{"name":"\\ud800"}', "name"],
        ['{"name":"enc:\\udc00:x"}', "name"],
        ['{"name":"ok","description":"a\\ud83d"}', "description"],
        ['{"name":"ok","tags":["fine","\\udfff"]}', "tags.1"],
        ['{"name":"ok","\\ud800":1}', "(a key)"],
      ];
      for (const [body, field] of cases) {
        const r = await v.raw("POST", "", body);
        assertError(r, 400, "VALIDATION_FAILED");
        assert.equal(r.body.details?.[0]?.path, field, `${caller.label} ${body}: ${r.text}`);
        assert.match(r.body.details[0].message, /valid Unicode/);
      }
      const created = await v.create({ name: "enc:v1:ok" });
      assert.equal(created.status, 201, created.text);
      const patched = await v.raw("PATCH", `/${created.body.id}`, '{"name":"\\ud800"}');
      assertError(patched, 400, "VALIDATION_FAILED");
      assert.equal((await v.get(created.body.id)).body.name, "enc:v1:ok", "nothing was changed");
      // A well-formed pair (an emoji) is stored exactly.
      const pair = await v.create({ name: "enc:\ud83d\ude00:x", tags: ["\ud83d\udd12"] });
      assert.equal(pair.status, 201, pair.text);
      const stored = await v.get(pair.body.id);
      assert.equal(stored.body.name, "enc:\u{1F600}:x");
      assert.deepEqual(stored.body.tags, ["\u{1F512}"]);
      assert.equal(
        (await v.list()).body.pagination.total,
        before + 2,
        "only the valid ones stored",
      );
    }
  },
);

closeDbLast("vaults");
