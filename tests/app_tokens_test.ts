/**
 * Third-party apps' tokens at the API (issue 25, items 3 and 5): a token with a `client_id` acts
 * for its user only while the user's grant to that app is active, with the grant's scopes; a
 * revoked grant is refused on the very next request (on every instance: see also
 * tests/app_revocation_test.ts); each app has its own budget per user and a ceiling across its
 * users; the request log, the app's hourly usage and the grant's `last_used_at` record it.
 *
 * Apps and grants are made in SQL (tests/_support/apps.ts), not through the grants API.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  api,
  type ApiResponse,
  assertCommonHeaders,
  assertError,
  awayFromWindowEnd,
  e2e,
  uniqueIp,
} from "./_harness.ts";
import { closeDbLast, db, newTier, newUser } from "./_fixtures.ts";
import { appToken, grantApp, grantEpoch, newApp, revokeApp } from "./_support/apps.ts";
import { delay } from "../supabase/functions/_shared/deadline.ts";
import { APP_CEILING_FACTOR } from "../supabase/functions/_shared/ratelimit/policy.ts";

const bearer = (token: string, ip = uniqueIp()) => ({
  ip,
  headers: { Authorization: `Bearer ${token}` },
});
const post = (token: string, body: unknown) => ({
  ...bearer(token),
  method: "POST",
  headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

/** Asserts a JWT-family refusal: status, exact body, exact challenge. */
function assertRefused(r: ApiResponse, code: string, message: string, challenge: string): void {
  const status = code === "APP_GRANT_NOT_ACTIVE" ? 401 : 403;
  assertError(r, status, code);
  assert.deepEqual(r.body, {
    error: status === 401 ? "Unauthorized" : "Forbidden",
    message,
    statusCode: status,
    code,
    request_id: r.headers.get("x-request-id"),
  });
  assert.equal(r.headers.get("www-authenticate"), challenge);
}

/** Asserts the refusal of a token whose grant is not active: 401 with its challenge. */
function assertNoGrant(r: ApiResponse): void {
  assertRefused(
    r,
    "APP_GRANT_NOT_ACTIVE",
    "The user has not granted this app access, or revoked it",
    'Bearer realm="torvus", error="invalid_token", ' +
      `error_description="The user's grant to this app is not active"`,
  );
  // Counted against the client's address, as every failed authentication.
  assert.equal(r.headers.get("x-ratelimit-limit"), "100");
}

/** Asserts 403 INSUFFICIENT_SCOPE for an app's token lacking `scope`. */
function assertLacks(r: ApiResponse, scope: string): void {
  assertError(r, 403, "INSUFFICIENT_SCOPE");
  assert.deepEqual(r.body, {
    error: "forbidden",
    message: `The app's grant lacks the '${scope}' scope`,
    statusCode: 403,
    code: "INSUFFICIENT_SCOPE",
    required_scope: scope,
    request_id: r.headers.get("x-request-id"),
  });
  assert.equal(
    r.headers.get("www-authenticate"),
    `Bearer realm="torvus", error="insufficient_scope", scope="${scope}", ` +
      `error_description="The app's grant lacks the '${scope}' scope"`,
  );
}

e2e("an app's token with an active grant acts for its user, within its app's limits", async () => {
  const tier = await newTier(50, 5000);
  const app = await newApp({ tier });
  const user = await newUser();
  await grantApp(user, app);
  const token = await appToken(user, app.clientId);
  await awayFromWindowEnd(60, 5);

  const me = await api("/api/me", bearer(token));
  assert.equal(me.status, 200, me.text);
  assert.equal(me.body.id, user.userId);
  assertCommonHeaders(me);
  // The app's budget for this user: its tier's minute (the tightest window) and day, and its
  // ceiling across all its users.
  assert.equal(me.headers.get("x-ratelimit-limit"), "50");
  assert.equal(me.headers.get("x-ratelimit-remaining"), "49");
  assert.equal(
    me.headers.get("ratelimit-policy"),
    `"minute";q=50;w=60, "day";q=5000;w=86400, "appminute";q=${50 * APP_CEILING_FACTOR};w=60, ` +
      `"appday";q=${5000 * APP_CEILING_FACTOR};w=86400`,
  );

  const created = await api("/api/vaults", post(token, { name: "by app", tags: [] }));
  assert.equal(created.status, 201, created.text);
  // The user's own token sees what the app made for them.
  const seen = await api(`/api/vaults/${created.body.id}`, bearer(user.token));
  assert.equal(seen.status, 200, seen.text);
  assert.equal(seen.body.name, "by app");
  assert.equal(seen.headers.get("x-ratelimit-limit"), "1000", "the user's own hour, untouched");
  assert.equal(seen.headers.get("x-ratelimit-remaining"), "999");
  const listed = await api("/api/vaults", bearer(token));
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.body.data.length, 1);
  const gone = await api(`/api/vaults/${created.body.id}`, { ...bearer(token), method: "DELETE" });
  assert.equal(gone.status, 204, gone.text);
  assert.equal(gone.headers.get("x-ratelimit-remaining"), "46");
});

e2e(
  "an app's token without a grant, or with another user's, is 401 APP_GRANT_NOT_ACTIVE",
  async () => {
    const app = await newApp();
    const [user, other] = await Promise.all([newUser(), newUser()]);
    await grantApp(other, app);
    assertNoGrant(await api("/api/me", bearer(await appToken(user, app.clientId))));
    assertNoGrant(await api("/api/vaults", bearer(await appToken(user, crypto.randomUUID()))));
    // A grant given after a refusal is seen at once (a cached refusal is confirmed too).
    const token = await appToken(user, app.clientId);
    assertNoGrant(await api("/api/vaults", bearer(token)));
    await grantApp(user, app);
    const r = await api("/api/vaults", bearer(token));
    assert.equal(r.status, 200, r.text);
  },
);

e2e("a revoked grant is refused on the very next request, though the token lives on", async () => {
  const app = await newApp();
  const user = await newUser();
  await grantApp(user, app);
  const token = await appToken(user, app.clientId);
  for (let i = 0; i < 3; i++) {
    const r = await api("/api/vaults", bearer(token));
    assert.equal(r.status, 200, r.text);
  }
  await revokeApp(user, app);
  assertNoGrant(await api("/api/vaults", bearer(token)));
  assertNoGrant(await api("/api/me", bearer(token)));
  // The user's own token is untouched.
  assert.equal((await api("/api/me", bearer(user.token))).status, 200);
});

e2e("an app's token is held to its grant's scopes: 403 insufficient_scope", async () => {
  const app = await newApp();
  const user = await newUser();
  await grantApp(user, app, ["vaults:read"]);
  const reader = await appToken(user, app.clientId);
  assertLacks(await api("/api/vaults", post(reader, { name: "x", tags: [] })), "vaults:write");
  assertLacks(await api("/api/me", bearer(reader)), "profile:read");
  const mine = await api("/api/vaults", post(user.token, { name: "mine", tags: [] }));
  assert.equal(mine.status, 201, mine.text);
  const id = mine.body.id;
  assertLacks(
    await api(`/api/vaults/${id}`, { ...bearer(reader), method: "DELETE" }),
    "vaults:delete",
  );
  assert.equal((await api(`/api/vaults/${id}`, bearer(reader))).status, 200);

  // Writing without deleting: a change is allowed, a deactivation (the API's delete) is not.
  const app2 = await newApp();
  await grantApp(user, app2, ["vaults:read", "vaults:write"]);
  const writer = await appToken(user, app2.clientId);
  const patch = (body: unknown) => ({
    ...post(writer, body),
    method: "PATCH",
  });
  const renamed = await api(`/api/vaults/${id}`, patch({ name: "renamed" }));
  assert.equal(renamed.status, 200, renamed.text);
  assertLacks(await api(`/api/vaults/${id}`, patch({ status: "inactive" })), "vaults:delete");
  const still = await api(`/api/vaults/${id}`, bearer(user.token));
  assert.equal(still.body.status, "active");

  // An app that no longer asks for a scope loses it, whatever the grant says.
  await db()`update public.oauth_apps set scopes = '{vaults:read}' where id = ${app2.appId}`;
  await grantEpoch().bump();
  assertLacks(await api(`/api/vaults/${id}`, patch({ name: "again" })), "vaults:write");
});

e2e(
  "a grant narrowed around the API: the database refuses, the answer is still a 403",
  async () => {
    const app = await newApp();
    const user = await newUser();
    await grantApp(user, app, ["vaults:read", "vaults:write", "vaults:delete"]);
    const token = await appToken(user, app.clientId);
    const made = await api("/api/vaults", post(token, { name: "app's", tags: [] }));
    assert.equal(made.status, 201, made.text);
    // Narrowed in SQL, as PostgREST or an operator would, without the epoch the API announces:
    // this isolate still holds the wider grant, the database holds the new one.
    const narrow = (scopes: string) =>
      db()`update public.oauth_grants set scopes = ${scopes}::text[]
        where user_id = ${user.userId} and client_id = ${app.clientId} and revoked_at is null`;
    const at = `/api/vaults/${made.body.id}`;
    await narrow("{vaults:read,vaults:write}");
    // The guard trigger refuses the deactivation (TV403).
    assertLacks(await api(at, { ...bearer(token), method: "DELETE" }), "vaults:delete");
    await narrow("{vaults:read}");
    // The insert policy refuses (42501); the change policies hide the row from the update.
    assertLacks(await api("/api/vaults", post(token, { name: "more", tags: [] })), "vaults:write");
    assertLacks(await api(at, { ...post(token, { name: "x" }), method: "PATCH" }), "vaults:write");
    assertLacks(await api(at, { ...bearer(token), method: "DELETE" }), "vaults:delete");
    const still = await api(`/api/vaults/${made.body.id}`, bearer(user.token));
    assert.equal(still.body.status, "active", "nothing changed");
  },
);

e2e("account routes never take an app's token: 403 APP_TOKEN_NOT_ACCEPTED", async () => {
  const app = await newApp();
  const user = await newUser();
  await grantApp(user, app);
  const token = await appToken(user, app.clientId);
  for (const path of ["/api/keys", "/api/webhooks", "/api/usage", "/api/apps", "/api/account"]) {
    const message = "This route does not accept tokens issued to third-party apps";
    assertRefused(
      await api(path, bearer(token)),
      "APP_TOKEN_NOT_ACCEPTED",
      message,
      `Bearer realm="torvus", error="insufficient_scope", error_description="${message}"`,
    );
  }
});

e2e("each app has its own minute per user, and a ceiling across all its users", async () => {
  const perMinute = 3;
  const tier = await newTier(perMinute, 1000);
  const app = await newApp({ tier });
  const users = await Promise.all(
    Array.from({ length: APP_CEILING_FACTOR + 1 }, () => newUser()),
  );
  await Promise.all(users.map((u) => grantApp(u, app)));
  const tokens = await Promise.all(users.map((u) => appToken(u, app.clientId)));
  await awayFromWindowEnd(60, 15);
  // Each of the first ten users: three requests, then 429 on their own minute.
  for (const [i, token] of tokens.slice(0, APP_CEILING_FACTOR).entries()) {
    for (let n = 1; n <= perMinute; n++) {
      const r = await api("/api/vaults", bearer(token));
      assert.equal(r.status, 200, `user ${i}, request ${n}: ${r.text}`);
      assert.equal(r.headers.get("x-ratelimit-remaining"), String(perMinute - n));
    }
    if (i === 0) {
      const r = await api("/api/vaults", bearer(token));
      assertError(r, 429, "RATE_LIMIT_EXCEEDED");
      assert.match(r.headers.get("ratelimit") ?? "", /^"minute";r=0;t=\d+$/);
    }
  }
  // The app has spent its ceiling (10 × 3 this minute): its eleventh user is refused at once.
  const r = await api("/api/vaults", bearer(tokens[APP_CEILING_FACTOR]!));
  assertError(r, 429, "RATE_LIMIT_EXCEEDED");
  assert.equal(r.headers.get("x-ratelimit-limit"), String(perMinute * APP_CEILING_FACTOR));
  assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
  assert.match(r.headers.get("ratelimit") ?? "", /^"appminute";r=0;t=\d+$/);
  assert.ok(Number(r.headers.get("retry-after")) >= 1);
  // Another app of the same user is not affected.
  const other = await newApp({ tier });
  await grantApp(users[APP_CEILING_FACTOR]!, other);
  const fine = await api(
    "/api/vaults",
    bearer(await appToken(users[APP_CEILING_FACTOR]!, other.clientId)),
  );
  assert.equal(fine.status, 200, fine.text);
});

e2e("the request log, the app's hourly usage and the grant's last use record the app", async () => {
  const app = await newApp();
  const user = await newUser();
  const grantId = await grantApp(user, app);
  const token = await appToken(user, app.clientId);
  const ok = await api("/api/vaults", bearer(token));
  assert.equal(ok.status, 200, ok.text);
  const refused = await api("/api/keys", bearer(token));
  assert.equal(refused.status, 403, refused.text);
  const ids = [ok, refused].map((r) => r.headers.get("x-request-id")!);
  const sql = db();
  let rows: { request_id: string; status: number; client_id: string | null }[] = [];
  for (let i = 0; i < 40 && rows.length < 2; i++) {
    await delay(200);
    rows = await sql`select request_id::text, status, client_id from public.api_request_log_entries
      where request_id = any (${ids}::uuid[]) order by status`;
  }
  assert.deepEqual(rows.map((r) => [r.request_id, r.status, r.client_id]), [
    [ids[0], 200, app.clientId],
    [ids[1], 403, app.clientId],
  ]);
  const [usage] = await sql<{ requests: number; success: number; client_errors: number }[]>`
    select sum(requests)::int as requests, sum(success)::int as success,
      sum(client_errors)::int as client_errors
    from public.api_app_usage_hourly where client_id = ${app.clientId}`;
  assert.deepEqual({ ...usage }, { requests: 2, success: 1, client_errors: 1 });
  const [grant] = await sql<{ last_used_at: Date | null }[]>`
    select last_used_at from public.oauth_grants where id = ${grantId}`;
  assert.ok(grant?.last_used_at instanceof Date, "the grant's last use moved");
  // At most once a minute: a second request does not move it again.
  const again = await api("/api/vaults", bearer(token));
  assert.equal(again.status, 200);
  await delay(500);
  const [after] = await sql<{ last_used_at: Date | null }[]>`
    select last_used_at from public.oauth_grants where id = ${grantId}`;
  assert.equal(after?.last_used_at?.getTime(), grant!.last_used_at!.getTime());
});

closeDbLast("app tokens");
