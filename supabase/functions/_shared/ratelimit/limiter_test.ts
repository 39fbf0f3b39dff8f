import assert from "node:assert/strict";
import type { Redis } from "@upstash/redis";
import { createRateLimiter, type LimiterFailure, limiterWarnings } from "./limiter.ts";
import { createLogger, setLogSink } from "../log.ts";
import { createRedis } from "../redis.ts";
import { IP_WINDOWS, windowsOf } from "./policy.ts";
import { storedKey } from "../testing/fakes.ts";

/**
 * A Redis REST endpoint that accepts connections and never answers: the isolate's real client
 * (redis.ts) in front of it, so its bound is the one tested.
 */
function silentRedis(timeoutMs: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  void (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const { port } = listener.addr as Deno.NetAddr;
  const { redis } = createRedis({ url: `http://127.0.0.1:${port}`, token: "t", timeoutMs });
  return {
    redis,
    close() {
      for (const c of held) c.close();
      listener.close();
    },
  };
}

/** A Redis REST endpoint where nothing listens. */
function refusingRedis(): Redis {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return createRedis({ url: `http://127.0.0.1:${port}`, token: "t", timeoutMs: 5_000 }).redis;
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

Deno.test({
  name: "createRateLimiter() waits at most the Redis timeout, then reports degraded",
  // The client's abandoned fetch may leave its socket to the runtime.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const errors: unknown[] = [];
    let t = 1_000_000;
    const silent = silentRedis(50);
    const limiter = createRateLimiter({
      redis: silent.redis,
      prefix: "unit",
      onError: (e, failed) => errors.push(failed === "limits" && e),
      now: () => t,
    });
    const started = performance.now();
    const d = await limiter.check(key.scope, key.identifier, key.windows);
    silent.close();
    assert.ok(performance.now() - started < 500, "bounded by the timeout");
    assert.equal(d.degraded, true);
    assert.equal(d.allowed, true, "fail open: the decision allows");
    assert.equal(d.limit, 20);
    assert.equal(d.remaining, 20, "the full limit, as nothing was counted");
    assert.equal(d.reset, t + 60_000, "by the service clock");
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).name, "TimeoutError");
    t += 1;
  },
});

Deno.test("createRateLimiter() reports a failing Redis as degraded at once", async () => {
  const errors: unknown[] = [];
  const limiter = createRateLimiter({
    redis: refusingRedis(),
    prefix: "unit",
    onError: (e, failed) => errors.push(failed === "limits" && e),
  });
  const started = performance.now();
  const d = await limiter.check("ip", "203.0.113.5", IP_WINDOWS);
  assert.ok(performance.now() - started < 1_000);
  assert.equal(d.degraded, true);
  assert.deepEqual(d.policies, [{ name: "hour", limit: 100, seconds: 3600 }]);
  assert.equal(errors.length, 1);
});

Deno.test("createRateLimiter() tells a failed read of a subject refused from memory apart", async () => {
  const failures: LimiterFailure[] = [];
  // Redis denies the key's minute once, then fails: the refusal stands from memory, its read not.
  const redis = {
    evalsha: () => Promise.resolve([1, 0, 1999, "epoch-1"]),
    mget: () => Promise.reject(new Error("connection reset")),
  } as unknown as Redis;
  const limiter = createRateLimiter({
    redis,
    prefix: "unit",
    onError: (_, failed) => failures.push(failed),
    now: () => 1_000_000,
  });
  const first = await limiter.check(key.scope, key.identifier, key.windows, ["epoch"]);
  assert.equal(first.allowed, false);
  assert.deepEqual(first.reads, ["epoch-1"]);
  const held = await limiter.check(key.scope, key.identifier, key.windows, ["epoch"]);
  assert.equal(held.allowed, false, "still refused, from memory");
  assert.equal(held.degraded, false, "the limits were decided");
  assert.equal(held.reads, undefined, "so a cached key is looked up again");
  assert.deepEqual(failures, ["reads"]);
});

Deno.test("limiterWarnings() says what failed: the limits, or only a refused key's state", () => {
  const lines: string[] = [];
  const previous = setLogSink((line) => lines.push(line));
  try {
    const warn = limiterWarnings(createLogger(), () => 0);
    warn(new Error("down"), "reads");
    warn(new Error("down"), "limits");
    warn(new Error("down"), "reads"); // throttled: one line per kind per interval
  } finally {
    setLogSink(previous);
  }
  const messages = lines.map((l) => JSON.parse(l).msg);
  assert.deepEqual(messages, [
    "key state not read (the rate limit refused from memory); key looked up again",
    "rate limiter unavailable; requests pass (fail mode open) or get 503",
  ]);
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
