/**
 * Rate limits against the real limiter (Redis through the bridge): exact counts under
 * concurrency, the day window, windows that do not consume each other, the user's hour, the
 * per-IP hour of unauthenticated and failed requests, and preflights that count for nothing.
 *
 * Every test uses keys of a tier of its own and client addresses of its own (`freshIp`).
 *
 * Changing a key's tier: there is no admin operation for it, so the tests update
 * `api_keys.tier_id` in SQL and then bump the key-state epoch (which makes every instance drop
 * its cached copy of the key; see {@link bumpKeyEpoch}).
 */
import assert from "node:assert/strict";
import { api, type ApiResponse, assertCommonHeaders, awayFromWindowEnd, e2e } from "./_harness.ts";
import { closeDbLast, db, newKey, newTier, newUser } from "./_fixtures.ts";
import { fixtures, freshIp, trusted } from "./_matrix.ts";
import { announceKeyChange } from "../tools/admin/epoch.ts";
import { delay as sleep } from "../supabase/functions/_shared/deadline.ts";

const header = (r: ApiResponse, name: string) => r.headers.get(name);

/**
 * Bumps the key-state epoch so that every instance drops its cached keys: directly in Redis
 * when the API's Redis settings are in the environment (as `scripts/test` exports them), else
 * through the API itself, whose revocation of a throwaway key bumps it.
 */
async function bumpKeyEpoch(): Promise<void> {
  const direct = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "TORVUS_REDIS_PREFIX"]
    .every((name) => Deno.env.get(name));
  if (direct && await announceKeyChange()) return;
  const user = await newUser();
  const ip = freshIp();
  const headers = { Authorization: `Bearer ${user.token}`, "content-type": "application/json" };
  const created = await api("/api/keys", {
    method: "POST",
    ip,
    headers,
    body: JSON.stringify({ name: "epoch bump", mode: "test" }),
  });
  assert.equal(created.status, 201, `POST /api/keys: ${created.text}`);
  const revoked = await api(`/api/keys/${created.body.id}/revoke`, {
    method: "POST",
    ip,
    headers,
    body: "{}",
  });
  assert.equal(revoked.status, 200, `POST /api/keys/{id}/revoke: ${revoked.text}`);
}

/** Points a key at another tier and tells the running API (see {@link bumpKeyEpoch}). */
async function moveKeyToTier(keyId: string, tier: string): Promise<void> {
  const rows = await db()`
    update public.api_keys set tier_id = (select id from public.tiers where name = ${tier})
    where id = ${keyId} returning id`;
  assert.equal(rows.length, 1);
  await bumpKeyEpoch();
}

/**
 * The first answer judged by the key's new limits (`X-RateLimit-Limit` equal to `newLimit`).
 *
 * The request right after a change may still be judged by the key's cached, old limits:
 * app.ts checks the rate limit in the same Redis round trip that confirms the cached key, and
 * keeps that decision when the re-lookup succeeds. The tests call this only when the old
 * limits are exhausted, so such a request is refused (429) and consumes nothing; it is skipped.
 */
async function firstUnderNewLimits(
  request: () => Promise<ApiResponse>,
  newLimit: number,
): Promise<ApiResponse> {
  let r = await request();
  if (header(r, "x-ratelimit-limit") !== String(newLimit)) {
    assert.equal(r.status, 429, `a request judged by the old limits is refused: ${r.text}`);
    r = await request();
  }
  return r;
}

/**
 * Moves the key to a new tier of `perMinute` and `perDay` once the refused requests are done
 * with, and returns the first answer judged by the new `limit` (the window the test reads),
 * asserting that it passes.
 */
async function passUnderNewTier(
  keyId: string,
  request: () => Promise<ApiResponse>,
  tier: { perMinute: number; perDay: number },
  limit: number,
): Promise<ApiResponse> {
  await sleep(300); // refunds run after the responses
  await moveKeyToTier(keyId, await newTier(tier.perMinute, tier.perDay));
  const after = await firstUnderNewLimits(request, limit);
  assert.equal(after.status, 200, after.text);
  return after;
}

/**
 * A live key on a tier of its own (`perMinute`, `perDay`), and `get`: `GET /api/v1/test` with
 * that key from an address of its own.
 */
async function keyOnNewTier(perMinute: number, perDay: number) {
  const tier = await newTier(perMinute, perDay);
  const key = await newKey({ mode: "live", tier });
  const ip = freshIp();
  const get = () => api("/api/v1/test", { ip, headers: { "X-API-Key": key.key } });
  return { key, ip, get };
}

function nextUtcMidnight(): number {
  const now = new Date();
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) / 1000;
}

e2e(
  "key limit under concurrency: 60 requests at 20/minute give exactly 20 × 200 and 40 × 429",
  async () => {
    const { key, get } = await keyOnNewTier(20, 1000);
    await awayFromWindowEnd(60, 5);
    const responses = await Promise.all(Array.from({ length: 60 }, get));
    const ok = responses.filter((r) => r.status === 200);
    const limited = responses.filter((r) => r.status === 429);
    assert.equal(ok.length, 20, `statuses: ${responses.map((r) => r.status).join(",")}`);
    assert.equal(limited.length, 40);
    const remaining = ok.map((r) => Number(header(r, "x-ratelimit-remaining"))).sort((a, b) =>
      a - b
    );
    assert.deepEqual(remaining, Array.from({ length: 20 }, (_, i) => i), "each of 0..19 once");
    for (const r of ok) assert.equal(header(r, "x-ratelimit-limit"), "20");
    for (const r of limited) {
      const retryAfter = Number(header(r, "retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} in [1, 60]`);
      assert.equal(r.body.code, "RATE_LIMIT_EXCEEDED");
      assert.equal(r.body.retry_after, retryAfter);
      assert.equal(header(r, "x-ratelimit-limit"), "20");
      assert.equal(header(r, "x-ratelimit-remaining"), "0");
      assertCommonHeaders(r);
    }

    // The 40 refusals consumed nothing of the day window: exactly 20 of it are used.
    const after = await passUnderNewTier(key.id, get, { perMinute: 1000, perDay: 25 }, 25);
    assert.equal(header(after, "x-ratelimit-remaining"), "4", "25 - (20 + this one)");
  },
);

e2e(
  "day window: 5/day gives 5 × 200 then 429 with X-RateLimit-Limit 5 until the next UTC midnight",
  async () => {
    const { key, get } = await keyOnNewTier(50, 5);
    await awayFromWindowEnd(86_400, 15);
    await awayFromWindowEnd(60, 10);
    const midnight = nextUtcMidnight();
    for (let i = 1; i <= 5; i++) {
      const r = await get();
      assert.equal(r.status, 200, r.text);
      // The day window is the tighter one, so the headers report it.
      assert.equal(header(r, "x-ratelimit-limit"), "5");
      assert.equal(header(r, "x-ratelimit-remaining"), String(5 - i));
      assert.equal(Number(header(r, "x-ratelimit-reset")), midnight);
    }
    for (let i = 0; i < 3; i++) {
      const r = await get();
      assert.equal(r.status, 429, r.text);
      assert.equal(header(r, "x-ratelimit-limit"), "5");
      assert.equal(header(r, "x-ratelimit-remaining"), "0");
      assert.equal(Number(header(r, "x-ratelimit-reset")), midnight);
      const retryAfter = Number(header(r, "retry-after"));
      const untilMidnight = midnight - Date.now() / 1000;
      assert.ok(
        Math.abs(retryAfter - untilMidnight) <= 2,
        `Retry-After ${retryAfter} ≈ ${untilMidnight}`,
      );
      assert.equal(r.body.retry_after, retryAfter);
      assert.equal(r.body.message, `Rate limit exceeded. Try again in ${retryAfter} seconds.`);
    }

    // The refusals by the day window consumed nothing of the minute window: with 7/minute now,
    // the minute holds exactly the 5 allowed requests, so the next one leaves 7 - 6 = 1.
    const after = await passUnderNewTier(key.id, get, { perMinute: 7, perDay: 1000 }, 7);
    assert.equal(header(after, "x-ratelimit-remaining"), "1", "7 - (5 + this one)");
  },
);

e2e("minute window refusals consume nothing of the day window", async () => {
  // 3/minute, 100/day: 3 allowed, then 10 refused by the minute window. Moving the key to a
  // tier of 1,000/minute and 5/day then shows the day's count: 3 + this request = 4, so one is
  // left. Had the refusals counted, the day (13 + 1 > 5) would refuse it.
  const { key, get } = await keyOnNewTier(3, 100);
  await awayFromWindowEnd(86_400, 15);
  await awayFromWindowEnd(60, 10);
  for (let i = 0; i < 3; i++) assert.equal((await get()).status, 200);
  for (let i = 0; i < 10; i++) {
    const r = await get();
    assert.equal(r.status, 429, r.text);
    assert.equal(header(r, "x-ratelimit-limit"), "3");
  }
  const after = await passUnderNewTier(key.id, get, { perMinute: 1000, perDay: 5 }, 5);
  assert.equal(header(after, "x-ratelimit-remaining"), "1", "5 - (3 + this one)");
});

e2e("a signed-in user has 1,000 requests per hour, counted down one by one", async () => {
  const user = await newUser();
  const ip = freshIp();
  await awayFromWindowEnd(3600, 10);
  const hourEnd = Math.ceil(Date.now() / 3_600_000) * 3600;
  for (let i = 1; i <= 5; i++) {
    const path = i % 2 === 0 ? "/api/vaults" : "/api/me";
    const r = await api(path, { ip, headers: { Authorization: `Bearer ${user.token}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal(header(r, "x-ratelimit-limit"), "1000");
    assert.equal(header(r, "x-ratelimit-remaining"), String(1000 - i));
    assert.equal(Number(header(r, "x-ratelimit-reset")), hourEnd);
  }
  // The count is the user's, not the address's: another address continues it.
  const r = await api("/api/me", {
    ip: freshIp(),
    headers: { Authorization: `Bearer ${user.token}` },
  });
  assert.equal(header(r, "x-ratelimit-remaining"), "994");
});

e2e(
  "unauthenticated: 100 failed requests per hour per IP, then 429; valid credentials still pass",
  async () => {
    await awayFromWindowEnd(3600, 20);
    const f = await fixtures();
    const ip = freshIp();
    const bad = [
      () => api("/api/v1/test", { ip, headers: { "X-API-Key": "sk_live_wrong" } }),
      () => api("/api/me", { ip, headers: { Authorization: "Bearer not.a.token" } }),
      () => api("/api/vaults", { ip }),
      () => api("/api/v1/vaults", { ip }),
    ];
    for (let i = 1; i <= 100; i++) {
      const r = await bad[i % bad.length]!();
      assert.equal(r.status, 401, `request ${i}: ${r.text}`);
      assert.equal(header(r, "x-ratelimit-limit"), "100");
      assert.equal(header(r, "x-ratelimit-remaining"), String(100 - i));
    }
    for (const request of bad) {
      const r = await request();
      assert.equal(r.status, 429, r.text);
      assert.equal(r.body.code, "RATE_LIMIT_EXCEEDED");
      assert.equal(r.body.error, "rate_limit_exceeded");
      assert.ok(r.body.retry_after >= 1 && r.body.retry_after <= 3600);
      assert.equal(header(r, "retry-after"), String(r.body.retry_after));
      assert.equal(header(r, "x-ratelimit-remaining"), "0");
      assertCommonHeaders(r);
    }
    const unknown = await api("/api/vaults/no/such/route", { ip });
    assert.equal(unknown.status, 429, "unauthenticated requests share the address's hour");
    // What monitors poll is not: health and the reference count against no budget.
    const health = await api("/api/v1/health", { ip });
    assert.equal(health.status, 200, health.text);
    assert.equal(header(health, "x-ratelimit-limit"), null);

    // Valid credentials are never blocked by the address's limit: they count on their own.
    const keyed = await api("/api/v1/test", { ip, headers: { "X-API-Key": f.keys.live.key } });
    assert.equal(keyed.status, 200, keyed.text);
    const token = await trusted(f);
    const signedIn = await api("/api/me", { ip, headers: { Authorization: `Bearer ${token}` } });
    assert.equal(signedIn.status, 200, signedIn.text);
    assert.equal(header(signedIn, "x-ratelimit-limit"), "1000");

    // Another address is unaffected.
    const other = await api("/api/v1/test", {
      ip: freshIp(),
      headers: { "X-API-Key": "sk_live_wrong" },
    });
    assert.equal(other.status, 401, other.text);
    assert.equal(header(other, "x-ratelimit-remaining"), "99");
  },
);

e2e("OPTIONS preflights count against no window: key, user or address", async () => {
  const { key, ip, get: keyed } = await keyOnNewTier(5, 100);
  const user = await newUser();
  await awayFromWindowEnd(60, 10);
  const preflight = async (path: string, headers: Record<string, string>) => {
    for (let i = 0; i < 10; i++) {
      const r = await api(path, { method: "OPTIONS", ip, headers });
      assert.equal(r.status, 204, r.text);
      assert.equal(header(r, "x-ratelimit-remaining"), null);
    }
  };
  assert.equal(header(await keyed(), "x-ratelimit-remaining"), "4");
  await preflight("/api/v1/test", { "X-API-Key": key.key, "Access-Control-Request-Method": "GET" });
  assert.equal(header(await keyed(), "x-ratelimit-remaining"), "3");

  const auth = { Authorization: `Bearer ${user.token}` };
  assert.equal(header(await api("/api/me", { ip, headers: auth }), "x-ratelimit-remaining"), "999");
  await preflight("/api/me", { ...auth, "Access-Control-Request-Method": "GET" });
  assert.equal(header(await api("/api/me", { ip, headers: auth }), "x-ratelimit-remaining"), "998");

  const anonymous = () => api("/api/v1/vaults", { ip });
  assert.equal(header(await anonymous(), "x-ratelimit-remaining"), "99");
  await preflight("/api/vaults", { "Access-Control-Request-Method": "POST" });
  assert.equal(header(await anonymous(), "x-ratelimit-remaining"), "98");
});

closeDbLast("ratelimit");
