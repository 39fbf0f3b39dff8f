/**
 * The multi-window rate-limit script (supabase/functions/_shared/ratelimit/windows_script.ts)
 * against the test stack's Redis, through the bridge: its decisions equal a reference model of
 * @upstash/ratelimit's sliding window at random arrival times across window boundaries; several
 * windows take a token only if all allow; concurrent callers get exactly the limit; it reads the
 * keys it is given in the same command; and the limiter over it costs one command a request.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Redis } from "@upstash/redis";
import { createRedis } from "../supabase/functions/_shared/redis.ts";
import {
  runWindows,
  type ScriptWindow,
} from "../supabase/functions/_shared/ratelimit/windows_script.ts";
import { createRateLimiter, type Window } from "../supabase/functions/_shared/ratelimit/limiter.ts";
import { awayFromWindowEnd } from "./_harness.ts";

const URL_ = Deno.env.get("UPSTASH_REDIS_REST_URL") ?? "";
const TOKEN = Deno.env.get("UPSTASH_REDIS_REST_TOKEN") ?? "";
const redis = new Redis({ url: URL_, token: TOKEN, enableAutoPipelining: false });
const run = () => `torvus-test:windows:${crypto.randomUUID()}`;

/**
 * The reference: @upstash/ratelimit 2.2.0's sliding window, one window and one bucket map per
 * window, applied to several windows as the script promises (all or nothing).
 */
class Model {
  readonly buckets: Map<number, number>[];
  constructor(readonly windows: readonly { limit: number; ms: number }[]) {
    this.buckets = windows.map(() => new Map());
  }
  take(now: number): { denied: number; remaining: number[] } {
    const used = this.windows.map((w, i) => {
      const bucket = Math.floor(now / w.ms);
      const current = this.buckets[i]!.get(bucket) ?? 0;
      const previous = this.buckets[i]!.get(bucket - 1) ?? 0;
      return current + Math.floor((1 - (now % w.ms) / w.ms) * previous);
    });
    const denied = this.windows.findIndex((w, i) => used[i]! >= w.limit);
    if (denied < 0) {
      this.windows.forEach((w, i) => {
        const bucket = Math.floor(now / w.ms);
        this.buckets[i]!.set(bucket, (this.buckets[i]!.get(bucket) ?? 0) + 1);
        used[i]!++;
      });
    }
    return { denied, remaining: this.windows.map((w, i) => w.limit - used[i]!) };
  }
}

Deno.test("windows script: decisions equal the sliding-window model at random times across boundaries", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          limit: fc.integer({ min: 1, max: 6 }),
          ms: fc.constantFrom(1000, 3000, 10_000),
        }),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
      // Steps between arrivals: often none (a burst), sometimes past a window's end.
      fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4000 })), {
        minLength: 1,
        maxLength: 40,
      }),
      fc.integer({ min: 0, max: 10_000 }),
      async (specs, steps, offset) => {
        const prefix = run();
        const windows: ScriptWindow[] = specs.map((w, i) => ({ ...w, prefix: `${prefix}:${i}` }));
        const model = new Model(specs);
        let now = 1_800_000_000_000 + offset;
        for (const step of steps) {
          now += step;
          const got = await runWindows(redis, "k", windows, now, 1);
          const want = model.take(now);
          assert.deepEqual({ denied: got.denied, remaining: got.remaining }, want, `at ${now}`);
        }
      },
    ),
    { numRuns: 25 },
  );
});

Deno.test("windows script: the same keys as @upstash/ratelimit, so a deploy keeps counting", async () => {
  const prefix = run();
  const now = 1_800_000_000_000 + 30_000;
  // The library's buckets: <prefix>:<identifier>:<floor(now / window)>.
  await redis.set(`${prefix}:m:k:${Math.floor(now / 60_000)}`, 7);
  const got = await runWindows(
    redis,
    "k",
    [{ prefix: `${prefix}:m`, limit: 10, ms: 60_000 }],
    now,
    1,
  );
  assert.deepEqual(got.remaining, [2]);
});

Deno.test("windows script: a day window exhausted refuses without taking the minute's token", async () => {
  const prefix = run();
  const minute: ScriptWindow = { prefix: `${prefix}:minute`, limit: 10, ms: 60_000 };
  const day: ScriptWindow = { prefix: `${prefix}:day`, limit: 3, ms: 86_400_000 };
  const now = 1_800_000_000_000;
  for (let i = 0; i < 3; i++) {
    assert.equal((await runWindows(redis, "k", [minute, day], now + i, 1)).denied, -1);
  }
  const refused = await runWindows(redis, "k", [minute, day], now + 10, 1);
  assert.deepEqual([refused.denied, refused.remaining], [1, [7, 0]]);
  // The minute window still holds 3: the refused request took nothing of it.
  const minuteAlone = await runWindows(redis, "k", [minute], now + 20, 1);
  assert.deepEqual(minuteAlone.remaining, [6]);
});

Deno.test("windows script: 60 concurrent requests at 20 a minute, exactly 20 pass", async () => {
  const prefix = run();
  const { redis: batched } = createRedis({ url: URL_, token: TOKEN, timeoutMs: 5000 });
  const windows: ScriptWindow[] = [
    { prefix: `${prefix}:minute`, limit: 20, ms: 60_000 },
    { prefix: `${prefix}:day`, limit: 1000, ms: 86_400_000 },
  ];
  const now = 1_800_000_000_000 + 5_000;
  const answers = await Promise.all(
    Array.from({ length: 60 }, () => runWindows(batched, "k", windows, now, 1)),
  );
  assert.equal(answers.filter((a) => a.denied < 0).length, 20);
  const day = await runWindows(batched, "k", [windows[1]!], now, 1);
  assert.equal(
    day.remaining[0],
    1000 - 21,
    "the day window counted only the 20 allowed (and this)",
  );
});

Deno.test("windows script: the keys to read come back with the decision; a refund gives tokens back", async () => {
  const prefix = run();
  await redis.set(`${prefix}:epoch`, 5);
  const w: ScriptWindow = { prefix: `${prefix}:minute`, limit: 2, ms: 60_000 };
  const now = 1_800_000_000_000;
  const got = await runWindows(redis, "k", [w], now, 1, [`${prefix}:epoch`, `${prefix}:none`]);
  assert.deepEqual(got, { denied: -1, remaining: [1], reads: [5, null] });
  await runWindows(redis, "k", [w], now, -1);
  assert.deepEqual((await runWindows(redis, "k", [w], now, 1)).remaining, [1]);
});

Deno.test("limiter: an API key's two windows and its epoch cost one Redis command a request", async () => {
  // Counts on the wall clock: never across a minute's end (the window slides there).
  await awayFromWindowEnd(60, 5);
  const { redis: batched, requester } = createRedis({ url: URL_, token: TOKEN, timeoutMs: 5000 });
  const limiter = createRateLimiter({ redis: batched, prefix: run() });
  const windows: Window[] = [
    { name: "minute", limit: 5, duration: "1 m" },
    { name: "day", limit: 100, duration: "1 d" },
  ];
  const epochKeys = ["torvus-test:windows:none:a", "torvus-test:windows:none:b"];
  // The script is loaded by the first call (NOSCRIPT, then EVAL): count after it.
  await limiter.check("key", "k1", windows, epochKeys);
  const before = requester.stats.commands;
  const decisions = [];
  for (let i = 0; i < 6; i++) decisions.push(await limiter.check("key", "k1", windows, epochKeys));
  assert.deepEqual(decisions.map((d) => d.allowed), [true, true, true, true, false, false]);
  assert.deepEqual(decisions[0]!.reads, [null, null]);
  // 5 scripts; the sixth is refused from memory and reads only the epoch (one MGET).
  assert.equal(requester.stats.commands - before, 6);
  // Without reads, a subject refused from memory costs nothing.
  const quiet = await limiter.check("key", "k1", windows);
  assert.equal(quiet.allowed, false);
  assert.equal(requester.stats.commands - before, 6);
});
