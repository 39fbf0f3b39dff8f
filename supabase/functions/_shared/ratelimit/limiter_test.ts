import assert from "node:assert/strict";
import type { Redis } from "@upstash/redis";
import { createRateLimiter } from "./limiter.ts";
import { IP_WINDOWS, windowsOf } from "./policy.ts";
import { storedKey } from "../testing/fakes.ts";

/** A Redis whose every command answers with `answer()` (and that takes no telemetry). */
function redisAnswering(answer: () => Promise<unknown>): Redis {
  return new Proxy({}, {
    get: (_, name) => (name === "then" || name === "addTelemetry" ? undefined : () => answer()),
  }) as Redis;
}

const key = windowsOf({
  kind: "api_key",
  keyId: "01JBG7XKQM9F3Y8W2Z5N4P1R6T",
  keyName: "k",
  userId: storedKey().userId,
  mode: "test",
  scopes: ["read"],
  tierId: storedKey().tierId,
  tierName: "free",
  limits: { perMinute: 20, perDay: 2000 },
});

Deno.test("createRateLimiter() waits at most its timeout for Redis, then reports degraded", async () => {
  const errors: unknown[] = [];
  let t = 1_000_000;
  const limiter = createRateLimiter({
    redis: redisAnswering(() => new Promise(() => {})),
    prefix: "unit",
    timeoutMs: 30,
    onError: (e) => errors.push(e),
    now: () => t,
  });
  const started = performance.now();
  const d = await limiter.check(key.scope, key.identifier, key.windows);
  assert.ok(performance.now() - started < 500, "bounded by the timeout");
  assert.equal(d.degraded, true);
  assert.equal(d.allowed, true, "fail open: the decision allows");
  assert.equal(d.limit, 20);
  assert.equal(d.remaining, 20, "the full limit, as nothing was counted");
  assert.equal(d.reset, t + 60_000, "by the service clock");
  assert.equal(errors.length, 1);
  t += 1;
});

Deno.test("createRateLimiter() reports a failing Redis as degraded at once", async () => {
  const errors: unknown[] = [];
  const limiter = createRateLimiter({
    redis: redisAnswering(() => Promise.reject(new Error("ECONNREFUSED"))),
    prefix: "unit",
    timeoutMs: 5_000,
    onError: (e) => errors.push(e),
  });
  const started = performance.now();
  const d = await limiter.check("ip", "203.0.113.5", IP_WINDOWS);
  assert.ok(performance.now() - started < 1_000);
  assert.equal(d.degraded, true);
  assert.deepEqual(d.policies, [{ name: "hour", limit: 100, seconds: 3600 }]);
  assert.equal(errors.length, 1);
});

Deno.test("windowsOf() gives a key its minute and day, a user one hour", () => {
  assert.deepEqual(key.windows.map((w) => [w.name, w.limit, w.duration]), [
    ["minute", 20, "1 m"],
    ["day", 2000, "1 d"],
  ]);
  const user = windowsOf({
    kind: "user",
    userId: storedKey().userId,
    email: undefined,
    mode: "live",
    claims: {},
    exp: 0,
  });
  assert.deepEqual(user.windows.map((w) => [w.name, w.limit]), [["hour", 1000]]);
  assert.equal(user.scope, "user");
});
