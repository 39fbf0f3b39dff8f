/**
 * The isolate's Redis requester (supabase/functions/_shared/redis.ts) against the test stack's
 * Redis bridge and Redis: commands issued together share one REST call, commands issued while a
 * call is out leave together the moment it returns, each command gets its own answer or error,
 * a failed or hung call fails only the commands it carried, and @upstash/ratelimit works over
 * it (its NOSCRIPT fallback included).
 *
 * A small HTTP relay in front of the bridge holds calls until a test releases them, so "while a
 * call is out" is a fact of the test, not a race.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Ratelimit } from "@upstash/ratelimit";
import { createRedis, RedisCallError } from "../supabase/functions/_shared/redis.ts";
import { createRateLimiter, type Window } from "../supabase/functions/_shared/ratelimit/limiter.ts";
import { rawServer, writeText } from "../supabase/functions/_shared/testing/raw_server.ts";
import { awayFromWindowEnd } from "./_harness.ts";
import { delay } from "../supabase/functions/_shared/deadline.ts";

const URL_ = Deno.env.get("UPSTASH_REDIS_REST_URL") ?? "";
const TOKEN = Deno.env.get("UPSTASH_REDIS_REST_TOKEN") ?? "";
const PREFIX = `torvus-test:requester:${crypto.randomUUID()}`;

/**
 * A relay to the bridge that records each call's commands and can hold or break calls; it lets
 * held calls go and stops at the end of an `await using`.
 */
function relay() {
  const calls: unknown[][] = [];
  const held: Array<() => void> = [];
  let hold = false;
  let mode: "pass" | "fail" | "hang" = "pass";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    const parsed = JSON.parse(body);
    calls.push(new URL(req.url).pathname === "/pipeline" ? parsed : [parsed]);
    if (mode === "fail") return Response.json({ error: "ERR relay refused" }, { status: 500 });
    if (mode === "hang") await new Promise<void>((resolve) => held.push(resolve));
    if (hold) await new Promise<void>((resolve) => held.push(resolve));
    const upstream = await fetch(`${URL_}${new URL(req.url).pathname}`, {
      method: "POST",
      headers: { authorization: req.headers.get("authorization") ?? "" },
      body,
    });
    return new Response(await upstream.text(), { status: upstream.status });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    calls,
    set hold(value: boolean) {
      hold = value;
    },
    set mode(value: "pass" | "fail" | "hang") {
      mode = value;
    },
    /**
     * Resolves once `n` calls have reached the relay; the request travels over a socket, so a
     * timer tick is not enough on a loaded machine (CI once saw 0 calls after one).
     */
    async arrived(n: number): Promise<void> {
      const until = performance.now() + 5000;
      while (calls.length < n) {
        if (performance.now() > until) {
          throw new Error(`${calls.length} of ${n} calls arrived in 5 s`);
        }
        await delay(1);
      }
    },
    /** The names of the commands the `n`th call carried, in order. */
    commands(n: number): string[] {
      return (calls[n] ?? []).map((c) => (c as string[])[0]!);
    },
    release() {
      for (const resume of held.splice(0)) resume();
    },
    async [Symbol.asyncDispose]() {
      this.release();
      await server.shutdown();
    },
  };
}

const tick = () => delay(0);

Deno.test("requester: the commands a request issues together share one REST call", async () => {
  await using r = relay();
  const { redis, requester } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 2000 });
  const [a, b, c] = await Promise.all([
    redis.incr(`${PREFIX}:a`),
    redis.incrby(`${PREFIX}:a`, 5),
    redis.mget<(number | null)[]>(`${PREFIX}:a`, `${PREFIX}:none`),
  ]);
  assert.deepEqual([a, b, c], [1, 6, [6, null]]);
  assert.equal(r.calls.length, 1);
  assert.deepEqual(requester.stats, { calls: 1, commands: 3, unsure: 0 });
});

Deno.test("requester: commands issued while a call is out leave together when it returns", async () => {
  await using r = relay();
  const { redis, requester } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 5000 });
  r.hold = true;
  const first = redis.incr(`${PREFIX}:b`);
  await r.arrived(1);
  // 40 commands, each in a later task of its own, as concurrent requests issue them.
  const later: Promise<number>[] = [];
  for (let i = 0; i < 40; i++) {
    await tick();
    later.push(redis.incr(`${PREFIX}:b`));
  }
  assert.equal(r.calls.length, 1, "nothing else leaves while the call is out");
  r.hold = false;
  r.release();
  const answers = await Promise.all([first, ...later]);
  assert.deepEqual(
    answers,
    Array.from({ length: 41 }, (_, i) => i + 1),
    "in order, each its own",
  );
  assert.equal(r.calls.length, 2);
  assert.equal(r.calls[1]!.length, 40);
  assert.deepEqual(requester.stats, { calls: 2, commands: 41, unsure: 0 });
});

Deno.test("requester: identical reads queued together share one command, never across a write", async () => {
  await using r = relay();
  const { redis, requester } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 2000 });
  const [a, b] = [`${PREFIX}:shared:a`, `${PREFIX}:shared:b`];
  r.hold = true;
  const first = redis.incr(a);
  await r.arrived(1);
  const before = [redis.mget<(number | null)[]>(a, b), redis.mget<(number | null)[]>(a, b)];
  const otherRead = redis.mget<(number | null)[]>(b, a);
  const write = redis.incr(a);
  const after = [redis.mget<(number | null)[]>(a, b), redis.get<number>(a), redis.get<number>(a)];
  r.hold = false;
  r.release();
  assert.equal(await first, 1);
  assert.deepEqual(await Promise.all(before), [[1, null], [1, null]]);
  assert.deepEqual(await otherRead, [null, 1]);
  assert.equal(await write, 2);
  assert.deepEqual(await Promise.all(after), [[2, null], 2, 2]);
  // The second call carried one MGET for the two before the write, the other MGET, the write,
  // one MGET and one GET after it.
  assert.deepEqual(r.commands(1), [
    "mget",
    "mget",
    "incr",
    "mget",
    "get",
  ]);
  assert.deepEqual(requester.stats, { calls: 2, commands: 6, unsure: 0 });
});

Deno.test("requester: reads interleaved with writes of other keys still share (a key's limits, then its epoch)", async () => {
  await using r = relay();
  const { redis, requester } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 2000 });
  const [epoch, shard] = [`${PREFIX}:il:epoch`, `${PREFIX}:il:epoch:7`];
  const [minute, day] = [`${PREFIX}:il:minute`, `${PREFIX}:il:day`];
  r.hold = true;
  const first = redis.incr(epoch);
  await tick();
  // Three requests of one key, as admission issues them: its windows' writes, then its epoch.
  const reads = [];
  for (let i = 0; i < 3; i++) {
    void redis.incr(minute);
    void redis.eval("return redis.call('INCR', KEYS[1])", [day], []);
    reads.push(redis.mget<(number | null)[]>(epoch, shard));
  }
  // A write to a key a queued read reads is a barrier: the read after it is its own command.
  const bump = redis.incr(shard);
  const afterBump = redis.mget<(number | null)[]>(epoch, shard);
  r.hold = false;
  r.release();
  assert.equal(await first, 1);
  assert.deepEqual(await Promise.all(reads), [[1, null], [1, null], [1, null]]);
  assert.equal(await bump, 1);
  assert.deepEqual(await afterBump, [1, 1]);
  assert.deepEqual(r.commands(1), [
    "incr",
    "eval",
    "mget",
    "incr",
    "eval",
    "incr",
    "eval",
    "incr",
    "mget",
  ]);
  assert.deepEqual(requester.stats, { calls: 2, commands: 10, unsure: 0 });
});

Deno.test("requester: a command's error is its own; the others of its call succeed", async () => {
  await using r = relay();
  const { redis } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 2000 });
  await redis.set(`${PREFIX}:text`, "not a number");
  const [ok, wrongType, noScript] = await Promise.allSettled([
    redis.incr(`${PREFIX}:c`),
    redis.incr(`${PREFIX}:text`),
    redis.evalsha("0".repeat(40), [], []),
  ]);
  assert.deepEqual(ok, { status: "fulfilled", value: 1 });
  assert.equal(wrongType.status, "rejected");
  assert.match(String((wrongType as PromiseRejectedResult).reason), /not an integer/);
  assert.equal(noScript.status, "rejected");
  assert.match(String((noScript as PromiseRejectedResult).reason), /NOSCRIPT/);
  assert.equal(r.calls.length, 2, "the SET, then one call for the three");
});

Deno.test("requester: a failed call fails its commands only; the next call goes out", async () => {
  await using r = relay();
  const { redis } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 2000 });
  r.mode = "fail";
  const failed = await Promise.allSettled([redis.incr(`${PREFIX}:d`), redis.get(`${PREFIX}:d`)]);
  for (const f of failed) {
    assert.equal(f.status, "rejected");
    const reason = (f as PromiseRejectedResult).reason;
    assert.ok(reason instanceof RedisCallError);
    assert.equal(reason.message, "Redis answered HTTP 500: ERR relay refused");
    assert.ok(!reason.message.includes(TOKEN));
  }
  r.mode = "pass";
  assert.equal(await redis.incr(`${PREFIX}:d`), 1, "the failed INCR never ran");
});

Deno.test("requester: a hung call times out, and no command waits longer than the timeout", async () => {
  await using r = relay();
  const { redis } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 300 });
  r.mode = "hang";
  const started = performance.now();
  const hung = redis.incr(`${PREFIX}:e`);
  await r.arrived(1);
  // Queued behind the hung call: its own deadline runs from now, not from when it leaves.
  // Its call hangs too: with the relay passing it, a hung call that was slow to reach the
  // relay (a loaded machine) left the queued one time enough to succeed.
  const queuedAt = performance.now();
  const queued = redis.incr(`${PREFIX}:f`);
  await assert.rejects(hung, (e: Error) => e.name === "TimeoutError");
  const gaveUp = performance.now() - started;
  assert.ok(gaveUp >= 290 && gaveUp < 2000, `gave up after ${gaveUp.toFixed(0)} ms`);
  await assert.rejects(queued, (e: Error) => e.name === "TimeoutError");
  const waited = performance.now() - queuedAt;
  assert.ok(waited < 300 + 100, `the queued command waited ${waited.toFixed(0)} ms`);
  r.mode = "pass";
  // Nothing is left hanging: the aborted fetch took its connection with it, and a command
  // issued now goes out at once on another one and succeeds.
  const next = performance.now();
  assert.equal(await redis.incr(`${PREFIX}:g`), 1);
  assert.ok(performance.now() - next < 250, "sent at once");
});

Deno.test("requester: warm() sends one PING bounded by the connect timeout alone, and never rejects", async () => {
  await using r = relay();
  const options = { url: r.url, token: TOKEN, timeoutMs: 100, connectTimeoutMs: 400 };
  const { requester } = createRedis(options);
  await requester.warm();
  assert.deepEqual(r.calls, [[["ping"]]]);
  assert.deepEqual(requester.stats, { calls: 1, commands: 1, unsure: 0 });
  // A Redis that never answers: the warm-up waits its own 400 ms, not a call's 100, and settles.
  r.mode = "hang";
  const started = performance.now();
  await requester.warm();
  const waited = performance.now() - started;
  assert.ok(waited >= 390 && waited < 2000, `waited ${waited.toFixed(0)} ms`);
});

Deno.test("requester: @upstash/ratelimit counts exactly over it, NOSCRIPT fallback included", async () => {
  await using r = relay();
  const { redis, requester } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 2000 });
  // Scripts unknown to Redis: the first EVALSHAs answer NOSCRIPT and the library sends EVAL.
  await redis.scriptFlush();
  const limiter = new Ratelimit({
    redis,
    prefix: `${PREFIX}:rl`,
    limiter: Ratelimit.slidingWindow(20, "1 m"),
    analytics: false,
  });
  const results = await Promise.all(
    Array.from({ length: 60 }, async (_, i) => {
      for (let t = 0; t < i % 7; t++) await tick();
      return (await limiter.limit("subject")).success;
    }),
  );
  assert.equal(results.filter(Boolean).length, 20, "exactly the limit passes");
  const names = r.calls.flat().map((c) => String((c as unknown[])[0]).toLowerCase());
  assert.ok(names.includes("eval"), "the script was loaded after NOSCRIPT");
  assert.ok(requester.stats.calls < 30, `${requester.stats.calls} calls for 60 checks`);
});

Deno.test("limiter: a subject a window denied is refused from memory, asking no window of Redis", async () => {
  await using r = relay();
  const { redis } = createRedis({ url: r.url, token: TOKEN, timeoutMs: 2000 });
  const limiter = createRateLimiter({ redis, prefix: `${PREFIX}:limiter` });
  const windows: Window[] = [
    { name: "minute", limit: 2, duration: "1 m" },
    { name: "day", limit: 100, duration: "1 d" },
  ];
  const first = [];
  for (let i = 0; i < 3; i++) first.push(await limiter.check("key", "k1", windows));
  assert.deepEqual(first.map((d) => [d.allowed, d.window, d.remaining]), [
    [true, "minute", 1],
    [true, "minute", 0],
    [false, "minute", 0],
  ]);
  await delay(50); // any call still out settles before counting (the script needs no refund)
  const calls = r.calls.length;
  const later = await Promise.all(
    Array.from({ length: 20 }, () => limiter.check("key", "k1", windows)),
  );
  assert.equal(r.calls.length, calls, "no Redis call while the subject is blocked");
  const minuteEnd = (Math.floor(Date.now() / 60_000) + 1) * 60_000;
  for (const d of later) {
    assert.deepEqual(
      { ...d, reset: d.reset === minuteEnd || d.reset === minuteEnd - 60_000 },
      {
        allowed: false,
        limit: 2,
        remaining: 0,
        reset: true,
        window: "minute",
        policies: [
          { name: "minute", limit: 2, seconds: 60 },
          { name: "day", limit: 100, seconds: 86_400 },
        ],
        degraded: false,
      },
    );
  }
  // The day window counted the two requests let through and gave back the refused one's token;
  // none of the blocked ones reached it.
  const day = await limiter.check("key", "k1", windows.slice(1));
  assert.deepEqual([day.allowed, day.remaining], [true, 97]);
});

/**
 * A raw relay to the bridge that runs each call upstream and, when told, closes the client's
 * connection instead of answering: the call was applied, and the client cannot know it.
 */
function dropper() {
  let dropNext = false;
  let forwarded = 0;
  const server = rawServer(async (request, conn) => {
    const upstream = await fetch(`${URL_}${request.path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: request.body,
    });
    const answer = await upstream.text();
    forwarded++;
    if (dropNext) {
      dropNext = false;
      return "close"; // applied upstream; the client gets no byte of it
    }
    const length = new TextEncoder().encode(answer).length;
    await writeText(
      conn,
      `HTTP/1.1 ${upstream.status} OK\r\ncontent-type: application/json\r\n` +
        `content-length: ${length}\r\n\r\n${answer}`,
    );
    return "keep";
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    get forwarded() {
      return forwarded;
    },
    dropNext() {
      dropNext = true;
    },
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}

Deno.test("requester: a limiter call applied upstream but unanswered is never sent again: the count moves by one", async () => {
  // Exact counts on the wall clock: never across a minute's end (the window slides there).
  await awayFromWindowEnd(60, 5);
  await using relay = dropper();
  const { redis, requester } = createRedis({ url: relay.url, token: TOKEN, timeoutMs: 2000 });
  const errors: unknown[] = [];
  const limiter = createRateLimiter({
    redis,
    prefix: `${PREFIX}:unsure`,
    onError: (e) => errors.push(e),
  });
  const windows: Window[] = [{ name: "minute", limit: 10, duration: "1 m" }];
  const first = await limiter.check("key", "k-unsure", windows);
  assert.deepEqual([first.allowed, first.remaining, first.degraded], [true, 9, false]);
  const before = relay.forwarded;
  relay.dropNext();
  // The script runs upstream and the connection then closes before a byte of answer: fetch
  // cannot tell whether the request left, so it counts as sent.
  const lost = await limiter.check("key", "k-unsure", windows);
  assert.equal(lost.degraded, true, "an unknown outcome is a degraded decision");
  assert.equal(relay.forwarded - before, 1, "sent once, not again on a new connection");
  assert.equal(requester.stats.unsure, 1);
  assert.equal(errors.length, 1);
  assert.match(
    String((errors[0] as Error).message),
    /may have been applied and is not sent again/,
  );
  // The lost call counted once: 10 - 3 after three calls reached Redis.
  const third = await limiter.check("key", "k-unsure", windows);
  assert.deepEqual([third.allowed, third.remaining, third.degraded], [true, 7, false]);
});
