/**
 * Webhooks end to end, against the dev server and real receivers on loopback (the test profile
 * allows loopback targets): events of vaults and keys delivered within seconds and accepted by
 * the reference verifiers (`standardwebhooks`, svix), event data equal to the API's answers,
 * test-mode isolation, rotation with both signatures, `rate_limit.exceeded` once per window,
 * expiring and expired keys found by the sweep, and the API's validation and ownership rules.
 */
import assert from "node:assert/strict";
import {
  api,
  assertError,
  assertInvalid,
  assertListRefuses,
  closeDb,
  createVaultByKey,
  db,
  e2e,
  newKey,
  newTier,
  newUser,
  type TestUser,
  uniqueIp,
} from "./_harness.ts";
import { setKeyExpiry } from "../tools/admin/ops.ts";
import { startReceiver } from "./_support/receiver.ts";
import {
  asUser,
  createEndpoint,
  deliveries,
  deliveriesWhen,
  refusedBy,
  succeeded,
  verified,
} from "./_support/webhooks.ts";
import { MAX_WEBHOOK_ENDPOINTS } from "../supabase/functions/_shared/schemas/webhooks.ts";
import { delay } from "../supabase/functions/_shared/deadline.ts";

/** Every secret this file saw: none may appear in the server's log. */
const secrets: string[] = [];
const remember = <T extends { secret: string }>(e: T) => (secrets.push(e.secret), e);

/** A test-mode endpoint of `user` that sends `events` to `receiver`, its secret remembered. */
async function endpointTo(receiver: { url: string }, user: TestUser, events: string[]) {
  return remember(await createEndpoint(user, { url: receiver.url, events, mode: "test" }));
}

/** The owner of a test key, signed in. */
async function keyOwner(scopes: Array<"read" | "write" | "delete"> = ["read", "write"]) {
  const key = await newKey({ scopes, mode: "test" });
  const user = await newUser(3600, key.email);
  return { key, user };
}

e2e(
  "webhooks: vault.created reaches a loopback receiver within seconds, signed for both verifiers",
  async () => {
    await using receiver = startReceiver();
    const { key, user } = await keyOwner();
    const endpoint = remember(
      await createEndpoint(user, {
        url: `${receiver.url}/hooks?source=torvus`,
        events: ["vault.created"],
        mode: "test",
      }),
    );
    assert.match(endpoint.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    const sent = performance.now();
    const created = await createVaultByKey(key.key, { name: "enc:v1:aGVsbG8", tags: ["hooks"] });
    const [request] = await receiver.waitFor(1, 5_000);
    const latencyMs = request!.at - sent;
    console.log(`vault.created delivered ${latencyMs.toFixed(0)} ms after the request`);
    assert.equal(request!.path, "/hooks");
    assert.equal(request!.headers["content-type"], "application/json");
    const event = verified(endpoint.secret, request!);
    assert.equal(event.type, "vault.created");
    assert.deepEqual(event.data, created.body, "data is the vault as the API answered it");
    assert.ok(Math.abs(Date.parse(event.timestamp) - Date.now()) < 60_000);
    assert.ok(!refusedBy(endpoint.secret, request!));
    const other = "whsec_" + btoa(String.fromCharCode(...new Uint8Array(32)));
    assert.ok(refusedBy(other, request!), "another secret's verifier refuses it");
    const tampered = { ...request!, body: request!.body.replace("hooks", "hookz") };
    assert.ok(refusedBy(endpoint.secret, tampered), "a changed body is refused");

    const delivery = await succeeded(user, endpoint.id);
    assert.equal(delivery.event_id, request!.headers["webhook-id"]);
    assert.equal(delivery.event_type, "vault.created");
    assert.equal(delivery.attempts, 1);
    assert.equal(delivery.response_status, 204);
    assert.equal(delivery.next_attempt_at, null);
    assert.equal(delivery.last_error, null);
    assert.equal(receiver.received.length, 1, "delivered once");
  },
);

e2e("webhooks: vault and key events carry the resource exactly as the API returns it", async () => {
  await using receiver = startReceiver();
  const user = await newUser();
  const endpoint = await endpointTo(receiver, user, [
    "api_key.created",
    "api_key.revoked",
    "api_key.rolled",
    "vault.created",
    "vault.updated",
    "vault.deleted",
  ]);
  const ip = uniqueIp();
  const created = await asUser(user, "POST", "/api/keys", {
    name: "hooked",
    mode: "test",
    scopes: ["read", "write", "delete"],
    expires_in: "90d",
  }, ip);
  assert.equal(created.status, 201, created.text);
  const rolled = await asUser(user, "POST", `/api/keys/${created.body.id}/roll`, {
    grace_period_seconds: 3600,
  }, ip);
  assert.equal(rolled.status, 201, rolled.text);
  const revoked = await asUser(user, "POST", `/api/keys/${rolled.body.id}/revoke`, {}, ip);
  assert.equal(revoked.status, 200, revoked.text);
  // Vaults of the new (test) key: test events.
  const headers = { "X-API-Key": rolled.body.key, "Content-Type": "application/json" };
  const previous = { "X-API-Key": created.body.key, "Content-Type": "application/json" };
  const vault = await api("/api/v1/vaults", {
    method: "POST",
    headers: previous,
    body: JSON.stringify({ name: "enc:v1:dmF1bHQ", description: "d" }),
    ip,
  });
  assert.equal(vault.status, 201, vault.text);
  const updated = await api(`/api/v1/vaults/${vault.body.id}`, {
    method: "PATCH",
    headers: previous,
    body: JSON.stringify({ tags: ["a", "b"] }),
    ip,
  });
  assert.equal(updated.status, 200, updated.text);
  const deleted = await api(`/api/v1/vaults/${vault.body.id}`, {
    method: "DELETE",
    headers: previous,
    ip,
  });
  assert.equal(deleted.status, 204);
  const afterDelete = await asUser(user, "GET", `/api/keys/${created.body.id}`);
  void headers;

  await receiver.waitFor(6, 10_000);
  const events = new Map(
    receiver.received.map((r) => verified(endpoint.secret, r)).map((e) => [e.type, e.data]),
  );
  const { key: _key, ...createdShown } = created.body;
  assert.deepEqual(events.get("api_key.created"), createdShown);
  const { key: _rolledKey, ...rolledShown } = rolled.body;
  assert.deepEqual(events.get("api_key.rolled"), rolledShown);
  assert.deepEqual(events.get("api_key.revoked"), revoked.body);
  assert.deepEqual(events.get("vault.created"), vault.body);
  assert.deepEqual(events.get("vault.updated"), updated.body);
  assert.equal(events.get("vault.deleted")?.status, "inactive");
  assert.equal(events.get("vault.deleted")?.id, vault.body.id);
  assert.equal(afterDelete.status, 200);
  for (const r of receiver.received) {
    assert.ok(!r.body.includes(created.body.key) && !r.body.includes(rolled.body.key));
    assert.ok(!/sk_(live|test)_[A-Za-z0-9_-]{20,}/.test(r.body), "no key in an event");
  }
});

e2e(
  "webhooks: test-mode events reach test endpoints only, live events live endpoints only",
  async () => {
    await using receiver = startReceiver();
    const { key, user } = await keyOwner();
    const test = await endpointTo(receiver, user, ["vault.created"]);
    // Live endpoints are https; this one refuses connections (a local port nobody serves).
    const live = remember(
      await createEndpoint(user, { url: "https://127.0.0.1:9/live", events: ["vault.created"] }),
    );
    assert.equal(live.body.mode, "live");
    const byKey = await createVaultByKey(key.key, { name: "enc:v1:dGVzdA" });
    assert.equal(byKey.body.mode, "test");
    const byToken = await asUser(user, "POST", "/api/vaults", { name: "enc:v1:bGl2ZQ" });
    assert.equal(byToken.status, 201);
    assert.equal(byToken.body.mode, "live");

    const [request] = await receiver.waitFor(1, 5_000);
    assert.equal(verified(test.secret, request!).data.id, byKey.body.id);
    const liveDeliveries = await deliveriesWhen(user, live.id, (l) => l.length === 1, 5_000);
    const testDeliveries = await deliveries(user, test.id);
    assert.equal(testDeliveries.length, 1);
    assert.notEqual(liveDeliveries[0].event_id, testDeliveries[0].event_id);
    await delay(1_000);
    assert.equal(receiver.received.length, 1, "the live vault never reached the test endpoint");
  },
);

e2e(
  "webhooks: a rotation signs with both secrets during its grace period, then the new one",
  async () => {
    await using receiver = startReceiver();
    const user = await newUser();
    const endpoint = await endpointTo(receiver, user, ["vault.created"]);
    const rotated = remember(
      (await asUser(user, "POST", `/api/webhooks/${endpoint.id}/rotate`, {
        grace_period_seconds: 3600,
      })).body,
    );
    assert.match(rotated.secret, /^whsec_/);
    assert.notEqual(rotated.secret, endpoint.secret);
    assert.ok(Date.parse(rotated.previous_secret_expires_at) > Date.now() + 3500_000);
    const sent = await asUser(user, "POST", `/api/webhooks/${endpoint.id}/test`);
    assert.equal(sent.status, 202, sent.text);
    assert.equal(sent.body.event_type, "webhook.test");
    const [during] = await receiver.waitFor(1, 5_000);
    assert.equal(during!.headers["webhook-signature"]!.split(" ").length, 2, "two signatures");
    assert.equal(verified(rotated.secret, during!).type, "webhook.test");
    assert.equal(verified(endpoint.secret, during!).type, "webhook.test");

    // Rotating again without grace: only the newest secret signs.
    const last = remember(
      (await asUser(user, "POST", `/api/webhooks/${endpoint.id}/rotate`, {
        grace_period_seconds: 0,
      })).body,
    );
    assert.equal(last.previous_secret_expires_at, null);
    await asUser(user, "POST", `/api/webhooks/${endpoint.id}/test`);
    const [, after] = await receiver.waitFor(2, 5_000);
    assert.equal(after!.headers["webhook-signature"]!.split(" ").length, 1);
    assert.equal(verified(last.secret, after!).type, "webhook.test");
    assert.ok(refusedBy(rotated.secret, after!) && refusedBy(endpoint.secret, after!));
    // The secret is never shown again.
    const shown = await asUser(user, "GET", `/api/webhooks/${endpoint.id}`);
    assert.equal(shown.body.secret, undefined);
    const listed = await asUser(user, "GET", "/api/webhooks");
    for (const s of [endpoint.secret, rotated.secret, last.secret]) {
      assert.ok(!shown.text.includes(s) && !listed.text.includes(s));
    }
  },
);

e2e("webhooks: rate_limit.exceeded is sent once per key and window", async () => {
  await using receiver = startReceiver();
  const tier = await newTier(3, 1000);
  const key = await newKey({ tier, mode: "test" });
  const user = await newUser(3600, key.email);
  const endpoint = await endpointTo(receiver, user, ["rate_limit.exceeded"]);
  const ip = uniqueIp();
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await api("/api/v1/test", { headers: { "X-API-Key": key.key }, ip });
    statuses.push(r.status);
  }
  assert.equal(statuses.filter((s) => s === 429).length, 7, statuses.join(","));
  const [request] = await receiver.waitFor(1, 5_000);
  const event = verified(endpoint.secret, request!);
  assert.equal(event.type, "rate_limit.exceeded");
  assert.equal(event.data.key_id, key.id);
  assert.equal(event.data.window, "minute");
  assert.equal(event.data.limit, 3);
  assert.equal(event.data.mode, "test");
  assert.ok(Date.parse(event.data.reset_at) > Date.now() - 1000);
  await delay(1_500);
  assert.equal(receiver.received.length, 1, "one event for the window, not one per refusal");
});

e2e("webhooks: the sweep announces a key expiring within 7 days, then its expiry", async () => {
  await using receiver = startReceiver();
  const user = await newUser();
  const endpoint = await endpointTo(receiver, user, ["api_key.expiring", "api_key.expired"]);
  const key = await newKey({
    email: user.email,
    mode: "test",
    expiresAt: new Date(Date.now() + 3 * 86_400_000),
  });
  const [first] = await receiver.waitFor(1, 8_000);
  const expiring = verified(endpoint.secret, first!);
  assert.equal(expiring.type, "api_key.expiring");
  assert.equal(expiring.data.id, key.id);
  assert.equal(expiring.data.status, "active");
  await setKeyExpiry(db(), key.id, new Date(Date.now() - 1000));
  const [, second] = await receiver.waitFor(2, 8_000);
  const expired = verified(endpoint.secret, second!);
  assert.equal(expired.type, "api_key.expired");
  assert.equal(expired.data.id, key.id);
  assert.equal(expired.data.status, "expired");
  await delay(2_000);
  assert.equal(receiver.received.length, 2, "each announced once");
});

/** Sends `body` as `user` and asserts a 400 whose details and message name `field`. */
async function refusesInput(
  user: TestUser,
  method: string,
  path: string,
  body: unknown,
  field: string,
) {
  const r = await asUser(user, method, path, body);
  assertInvalid(r, field);
  assert.match(r.body.message, new RegExp(field.replace(".", "\\.")));
}

e2e("webhooks API: every bad input is a 400 naming its field", async () => {
  const user = await newUser();
  const ok = { url: "https://hooks.example.com/x", events: ["vault.created"] };
  const bad: Array<[unknown, string]> = [
    [{ events: ["vault.created"] }, "url"],
    [{ ...ok, url: "" }, "url"],
    [{ ...ok, url: "not a url" }, "url"],
    [{ ...ok, url: "ftp://hooks.example.com/" }, "url"],
    [{ ...ok, url: "http://hooks.example.com/" }, "url"],
    [{ ...ok, url: "https://user:pw@hooks.example.com/" }, "url"],
    [{ ...ok, url: "https://hooks.example.com/#frag" }, "url"],
    [{ ...ok, url: "https://10.1.2.3/" }, "url"],
    [{ ...ok, url: "https://192.168.0.10/" }, "url"],
    [{ ...ok, url: "https://169.254.169.254/latest/meta-data" }, "url"],
    [{ ...ok, url: "https://[fd00:ec2::254]/" }, "url"],
    [{ ...ok, url: "https://[::ffff:10.0.0.1]/" }, "url"],
    [{ ...ok, url: "https://0.0.0.0/" }, "url"],
    [{ ...ok, url: `https://h.example.com/${"x".repeat(2050)}` }, "url"],
    [{ ...ok, events: [] }, "events"],
    [{ ...ok, events: ["vault.exploded"] }, "events.0"],
    [{ ...ok, events: "vault.created" }, "events"],
    [{ ...ok, mode: "prod" }, "mode"],
    [{ ...ok, description: "d".repeat(501) }, "description"],
    [{ ...ok, secret: "whsec_mine" }, "secret"],
  ];
  for (const [body, field] of bad) await refusesInput(user, "POST", "/api/webhooks", body, field);

  const endpoint = remember(await createEndpoint(user, ok));
  const at = `/api/webhooks/${endpoint.id}`;
  await refusesInput(user, "PATCH", at, {}, "(root)");
  await refusesInput(user, "PATCH", at, { url: "http://hooks.example.com/" }, "url");
  await refusesInput(user, "PATCH", at, { status: "paused" }, "status");
  await refusesInput(user, "PATCH", at, { events: ["nope"] }, "events.0");
  await refusesInput(
    user,
    "POST",
    `${at}/rotate`,
    { grace_period_seconds: -1 },
    "grace_period_seconds",
  );
  await refusesInput(
    user,
    "POST",
    `${at}/rotate`,
    { grace_period_seconds: 8 * 86_400 },
    "grace_period_seconds",
  );
  await assertListRefuses((query) => asUser(user, "GET", `/api/webhooks${query}`), [
    ["?mode=prod", "mode"],
    ["?status=gone", "status"],
    ["?x=1", "x"],
  ]);
  assertInvalid(await asUser(user, "GET", `${at}/deliveries?status=lost`), "status");
  // Test endpoints may use http; a live one's URL stays https.
  const local = remember(
    await createEndpoint(user, { ...ok, url: "http://127.0.0.1:9/x", mode: "test" }),
  );
  assert.equal(local.body.url, "http://127.0.0.1:9/x");
  const moved = await asUser(user, "PATCH", at, {
    url: "https://other.example.com/y",
    events: ["vault.updated", "vault.updated"],
  });
  assert.equal(moved.status, 200, moved.text);
  assert.equal(moved.body.url, "https://other.example.com/y");
  assert.deepEqual(moved.body.events, ["vault.updated"]);
});

e2e("webhooks API: another user's endpoints and deliveries are 404, never shown", async () => {
  await using receiver = startReceiver();
  const owner = await newUser();
  const stranger = await newUser();
  const endpoint = await endpointTo(receiver, owner, ["vault.created"]);
  const sent = await asUser(owner, "POST", `/api/webhooks/${endpoint.id}/test`);
  assert.equal(sent.status, 202);
  await receiver.waitFor(1, 5_000);
  const at = `/api/webhooks/${endpoint.id}`;
  const delivery = `${at}/deliveries/${sent.body.id}/retry`;
  const calls: Array<[string, string, unknown?]> = [
    ["GET", at],
    ["PATCH", at, { description: "mine now" }],
    ["DELETE", at],
    ["POST", `${at}/rotate`, {}],
    ["POST", `${at}/test`],
    ["GET", `${at}/deliveries`],
    ["GET", `${at}/deliveries?offset=5`],
    ["POST", delivery],
  ];
  for (const [method, path, body] of calls) {
    const r = await asUser(stranger, method, path, body);
    assertError(r, 404, "NOT_FOUND");
    assert.ok(!r.text.includes(receiver.url), "nothing of the endpoint is shown");
  }
  const list = await asUser(stranger, "GET", "/api/webhooks");
  assert.deepEqual(list.body.data, []);
  // Still the owner's, unchanged, and only one delivery was made.
  const mine = await asUser(owner, "GET", at);
  assert.equal(mine.status, 200);
  assert.equal(mine.body.description, null);
  assert.equal(receiver.received.length, 1);
  // Malformed ids are not found either.
  assertError(await asUser(owner, "GET", "/api/webhooks/not-an-id"), 404, "NOT_FOUND");
  assertError(await asUser(owner, "POST", `${at}/deliveries/nope/retry`), 404, "NOT_FOUND");
});

e2e("webhooks API: disabling, retrying, deleting and the endpoint limit", async () => {
  await using receiver = startReceiver();
  const user = await newUser();
  const endpoint = await endpointTo(receiver, user, ["vault.created"]);
  const at = `/api/webhooks/${endpoint.id}`;
  const sent = await asUser(user, "POST", `${at}/test`);
  await receiver.waitFor(1, 5_000);
  await succeeded(user, endpoint.id);
  // A retry sends it again, with the same id.
  const retried = await asUser(user, "POST", `${at}/deliveries/${sent.body.id}/retry`);
  assert.equal(retried.status, 202, retried.text);
  assert.equal(retried.body.status, "pending");
  const [first, second] = await receiver.waitFor(2, 5_000);
  assert.equal(second!.headers["webhook-id"], first!.headers["webhook-id"]);
  const [done] = await deliveriesWhen(
    user,
    endpoint.id,
    (l) => l[0]?.attempts === 2 && l[0]?.status === "succeeded",
    5_000,
  );
  assert.equal(done.id, sent.body.id);
  const pastEnd = await asUser(user, "GET", `${at}/deliveries?offset=5`);
  assert.deepEqual(pastEnd.body.data, []);
  assert.deepEqual(pastEnd.body.pagination, { limit: 20, offset: 5, total: 1 });

  const disabled = await asUser(user, "PATCH", at, { status: "disabled" });
  assert.equal(disabled.body.status, "disabled");
  assert.equal(disabled.body.disabled_reason, "Disabled by its owner");
  assertError(await asUser(user, "POST", `${at}/test`), 409, "WEBHOOK_DISABLED");
  assertError(
    await asUser(user, "POST", `${at}/deliveries/${sent.body.id}/retry`),
    409,
    "WEBHOOK_DISABLED",
  );
  const enabled = await asUser(user, "PATCH", at, { status: "enabled" });
  assert.equal(enabled.body.disabled_reason, null);
  assert.equal(enabled.body.disabled_at, null);

  const gone = await asUser(user, "DELETE", at);
  assert.equal(gone.status, 204);
  assertError(await asUser(user, "GET", at), 404, "NOT_FOUND");

  const many = await newUser();
  for (let i = 0; i < MAX_WEBHOOK_ENDPOINTS; i++) {
    remember(
      await createEndpoint(many, {
        url: `https://h${i}.example.com/`,
        events: ["vault.created"],
      }),
    );
  }
  const over = await asUser(many, "POST", "/api/webhooks", {
    url: "https://over.example.com/",
    events: ["vault.created"],
  });
  assertError(over, 409, "WEBHOOK_LIMIT_REACHED");
  const page = await asUser(many, "GET", "/api/webhooks?limit=5&mode=live&status=enabled");
  assert.equal(page.body.data.length, 5);
  assert.equal(page.body.pagination.total, MAX_WEBHOOK_ENDPOINTS);
  const beyond = await asUser(many, "GET", "/api/webhooks?offset=50");
  assert.deepEqual(beyond.body.data, []);
  assert.deepEqual(beyond.body.pagination, {
    limit: 20,
    offset: 50,
    total: MAX_WEBHOOK_ENDPOINTS,
  });
});

e2e("webhooks: no secret ever reaches the server's log", async () => {
  try {
    const log = Deno.env.get("TORVUS_SERVER_LOG");
    if (!log) return;
    const text = await Deno.readTextFile(log);
    assert.ok(secrets.length > 5);
    for (const secret of secrets) {
      assert.ok(!text.includes(secret.slice(6)), "a webhook secret is in the server log");
    }
  } finally {
    await closeDb();
  }
});
