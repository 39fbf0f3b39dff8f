/**
 * `GET /api/account` over real HTTP against the test stack: the signed-in user's profile (the
 * same as `/api/me`), the account's tier, and the tiers that name the user's keys, each with its
 * live and test limits, read under RLS; an operator's tier change shows on the next request; a
 * deleted user gets 404.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  api,
  assertCommonHeaders,
  assertError,
  assertRateLimitHeaders,
  closeDbLast,
  db,
  e2e,
  newKey,
  newTier,
  newUser,
  uniqueIp,
} from "./_harness.ts";
import { setKeyTier, setUserTier } from "../tools/admin/ops.ts";

const FREE = {
  id: "01JBG7XKQM9F3Y8W2Z5N4P1R6A",
  name: "free",
  requests_per_minute: 10,
  requests_per_day: 1000,
  test_requests_per_minute: 20,
  test_requests_per_day: 2000,
};
const PROFESSIONAL = {
  id: "01JBG7XKQM9F3Y8W2Z5N4P1R6B",
  name: "professional",
  requests_per_minute: 60,
  requests_per_day: 10000,
  test_requests_per_minute: 120,
  test_requests_per_day: 20000,
};

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

e2e("GET /api/account: the profile of /api/me, the free tier of a new account", async () => {
  const user = await newUser();
  const ip = uniqueIp();
  const r = await api("/api/account", { ip, headers: bearer(user.token) });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("content-type"), "application/json");
  assertCommonHeaders(r);
  assertRateLimitHeaders(r, 1000);
  const me = await api("/api/me", { ip, headers: bearer(user.token) });
  assert.equal(me.status, 200, me.text);
  assert.deepEqual(r.body, { ...me.body, tier: FREE, tiers: [FREE] });
  assert.equal(r.body.email, user.email);
});

e2e("GET /api/account: a tier change and the tiers of the user's keys", async () => {
  const key = await newKey({ mode: "live" });
  const token = (await newUser(3600, key.email)).token;
  const ip = uniqueIp();
  // An operator moves one key to a tier of its own, then the account to professional (which
  // moves the key too); a revoked key keeps its tier as a record, and names it still.
  const name = await newTier(7, 70);
  const [own] = await db()<{ id: string }[]>`select id from public.tiers where name = ${name}`;
  await setKeyTier(db(), key.id, name);
  let r = await api("/api/account", { ip, headers: bearer(token) });
  assert.equal(r.status, 200, r.text);
  const custom = {
    id: own!.id,
    name,
    requests_per_minute: 7,
    requests_per_day: 70,
    test_requests_per_minute: 7,
    test_requests_per_day: 70,
  };
  assert.deepEqual(r.body.tier, FREE);
  assert.deepEqual(r.body.tiers, [custom, FREE], "fewest requests first");

  await db()`update public.api_keys set status = 'revoked' where id = ${key.id}`;
  await setUserTier(db(), key.email, "professional");
  r = await api("/api/account", { ip, headers: bearer(token) });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.tier, PROFESSIONAL);
  assert.deepEqual(r.body.tiers, [custom, PROFESSIONAL]);
});

e2e("GET /api/account: no other account's tiers, credentials and methods", async () => {
  const other = await newKey({ mode: "live" });
  await setKeyTier(db(), other.id, "professional");
  const user = await newUser();
  const ip = uniqueIp();
  const r = await api("/api/account", { ip, headers: bearer(user.token) });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.tiers, [FREE], "another user's key does not name a tier here");

  assertError(await api("/api/account", { ip }), 401, "MISSING_AUTH_TOKEN");
  const expired = await newUser(-60);
  assertError(
    await api("/api/account", { ip, headers: bearer(expired.token) }),
    419,
    "TOKEN_EXPIRED",
  );
  const keyed = await api("/api/account", { ip, headers: { "X-API-Key": other.key } });
  assertError(keyed, 401, "MISSING_AUTH_TOKEN");
  const post = await api("/api/account", { ip, method: "POST", headers: bearer(user.token) });
  assert.equal(post.status, 405, post.text);
  assert.equal(post.headers.get("allow"), "GET, OPTIONS");
});

e2e("GET /api/account: 404 once the user is deleted", async () => {
  const user = await newUser();
  await db()`delete from auth.users where id = ${user.userId}`;
  const r = await api("/api/account", { ip: uniqueIp(), headers: bearer(user.token) });
  assertError(r, 404, "NOT_FOUND");
  assert.equal(r.body.message, "User not found");
});

closeDbLast("account");
