/**
 * Tests for tools/redis_bridge against the real redis-server on 127.0.0.1:6379 (DB 0).
 * Every key lives under a per-run prefix and is deleted afterwards; nothing is flushed
 * because other suites share this Redis.
 */

import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { Ratelimit } from "@upstash/ratelimit";
import { type BridgeOptions, createBridge } from "./bridge.ts";
import { RedisPool, RedisUnavailableError } from "./pool.ts";
import {
  encodeCommand,
  INCOMPLETE,
  RespError,
  RespParser,
  RespProtocolError,
  type RespReply,
  RespStatus,
  RespWriter,
} from "./resp.ts";
import { sha1Hex, stripUpstashFlags } from "./scripts.ts";

const TOKEN = `test-token-${crypto.randomUUID()}`;
const RUN = crypto.randomUUID().slice(0, 8);
const PREFIX = `bridge-test:${RUN}:`;
const REDIS_URL = "redis://127.0.0.1:6379";
const enc = new TextEncoder();
const b64 = (s: string) => enc.encode(s).toBase64();

interface CallOptions {
  token?: string | null;
  base64?: boolean;
  method?: string;
  rawBody?: BodyInit;
}

interface CallResult {
  status: number;
  text: string;
  // deno-lint-ignore no-explicit-any -- response shapes vary per test; asserted field by field
  json: any;
}

interface Harness {
  url: string;
  redis: Redis;
  call(path: string, body?: unknown, opts?: CallOptions): Promise<CallResult>;
}

async function rawCall(
  url: string,
  path: string,
  body: unknown,
  opts: CallOptions = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.base64) headers["upstash-encoding"] = "base64";
  const method = opts.method ?? "POST";
  const res = await fetch(url + path, {
    method,
    headers,
    ...(method !== "GET" && { body: opts.rawBody ?? JSON.stringify(body) }),
  });
  const text = await res.text();
  // Every response, errors included, must be JSON.
  return { status: res.status, text, json: JSON.parse(text) };
}

async function deletePrefixedKeys(url: string): Promise<void> {
  let cursor = "0";
  do {
    const { json } = await rawCall(url, "/", [
      "SCAN",
      cursor,
      "MATCH",
      `${PREFIX}*`,
      "COUNT",
      1000,
    ]);
    const [next, keys] = json.result as [string, string[]];
    if (keys.length > 0) await rawCall(url, "/", ["DEL", ...keys]);
    cursor = next;
  } while (cursor !== "0");
}

/** Runs `fn` against an in-process bridge on a random port; always tears everything down. */
async function withBridge(
  fn: (h: Harness) => Promise<void>,
  options: Partial<BridgeOptions> = {},
  cleanup = true,
): Promise<void> {
  const bridge = createBridge({ token: TOKEN, redisUrl: REDIS_URL, ...options });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, bridge.handler);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const redis = new Redis({ url, token: TOKEN, enableTelemetry: false, retry: false });
  try {
    await fn({ url, redis, call: (path, body, opts) => rawCall(url, path, body, opts) });
  } finally {
    try {
      if (cleanup) await deletePrefixedKeys(url);
    } finally {
      await server.shutdown();
      await bridge.close();
    }
  }
}

Deno.test("resp: parses replies split across reads and many replies per read", () => {
  const wire = "+OK\r\n-ERR bad thing\r\n:42\r\n:-9223372036854775808\r\n$5\r\nh\r\nlo\r\n" +
    "$-1\r\n*-1\r\n*0\r\n*3\r\n$1\r\na\r\n*2\r\n:1\r\n$0\r\n\r\n$-1\r\n";
  const expected: RespReply[] = [
    new RespStatus("OK"),
    new RespError("ERR bad thing"),
    42,
    -9223372036854775808n,
    enc.encode("h\r\nlo"),
    null,
    null,
    [],
    [enc.encode("a"), [1, new Uint8Array()], null],
  ];
  const bytes = enc.encode(wire);
  for (const chunk of [1, 2, 7, bytes.length]) {
    const parser = new RespParser();
    const got: RespReply[] = [];
    for (let i = 0; i < bytes.length; i += chunk) {
      parser.feed(bytes.subarray(i, i + chunk));
      for (let r = parser.next(); r !== INCOMPLETE; r = parser.next()) got.push(r);
    }
    assert.deepEqual(got, expected, `chunk size ${chunk}`);
    assert.equal(parser.pending, 0);
  }
  assert.equal(
    new TextDecoder().decode(encodeCommand(["SET", "k", "é"])),
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n",
  );
});

Deno.test("scripts: strips only Upstash-specific shebang flags", () => {
  assert.equal(stripUpstashFlags("#!lua flags=allow-key-locking\nreturn 1"), "\nreturn 1");
  assert.equal(stripUpstashFlags("#!lua flags=allow-key-locking"), "");
  assert.equal(
    stripUpstashFlags("#!lua flags=no-writes,allow-key-locking\nreturn 1"),
    "#!lua flags=no-writes\nreturn 1",
  );
  const untouched = ["return 1", "#!lua\nreturn 1", "#!lua flags=no-writes\nreturn 1"];
  for (const s of untouched) assert.equal(stripUpstashFlags(s), s);
});

Deno.test("client: single commands, pipeline and multi with and without base64", async () => {
  await withBridge(async ({ url }) => {
    // The client auto-pipelines by default (commands of one tick go to /pipeline); without
    // it every command is a `POST /`. Cover both, with and without base64 responses.
    const modes = [["base64", true], ["base64", false], [false, true], [false, false]] as const;
    for (const [responseEncoding, enableAutoPipelining] of modes) {
      const redis = new Redis({
        url,
        token: TOKEN,
        enableTelemetry: false,
        responseEncoding,
        enableAutoPipelining,
      });
      const k = (s: string) => `${PREFIX}${responseEncoding}:${enableAutoPipelining}:${s}`;
      const text = 'héllo wörld 😀 \u0000 \t\n "quoted" 日本語';
      assert.equal(await redis.set(k("s"), text), "OK");
      assert.equal(await redis.get(k("s")), text);
      assert.equal(await redis.get(k("missing")), null);
      assert.equal(await redis.incr(k("n")), 1);
      assert.equal(await redis.incrby(k("n"), 41), 42);
      assert.equal(await redis.hset(k("h"), { a: "1 ü", b: "🚀" }), 2);
      assert.deepEqual(await redis.hgetall(k("h")), { a: "1 ü", b: "🚀" });
      assert.equal(await redis.rpush(k("l"), "x", "ÿ", "z"), 3);
      assert.deepEqual(await redis.lrange(k("l"), 0, -1), ["x", "ÿ", "z"]);
      assert.deepEqual(
        await redis.eval("return {1, 'two', {3, 'vier 🍺'}, redis.status_reply('OK')}", [], []),
        [1, "two", [3, "vier 🍺"], "OK"],
      );
      assert.equal(await redis.ping(), "PONG");

      const piped = await redis.pipeline().set(k("p"), "v😀").incr(k("pn")).get(k("p"))
        .get(k("nope")).exec();
      assert.deepEqual(piped, ["OK", 1, "v😀", null]);
      const tx = await redis.multi().set(k("m"), "ü").incr(k("mn")).get(k("m")).hgetall(k("h"))
        .exec();
      assert.deepEqual(tx, ["OK", 1, "ü", { a: "1 ü", b: "🚀" }]);
    }
    // Values big enough to arrive in many TCP reads.
    const redis = new Redis({ url, token: TOKEN, enableTelemetry: false });
    const big = "€".repeat(1024 * 1024);
    await redis.set(`${PREFIX}big`, big);
    assert.equal(await redis.get(`${PREFIX}big`), big);
  });
});

Deno.test("raw protocol: plain and base64 encodings, exact bytes and integers", async () => {
  await withBridge(async ({ call }) => {
    const k = `${PREFIX}raw`;
    for (const base64 of [false, true]) {
      const set = await call("/", ["SET", k, "emoji 😀"], { base64 });
      assert.equal(set.status, 200);
      assert.deepEqual(set.json, { result: "OK" });
      const got = await call("/", ["GET", k], { base64 });
      assert.equal(got.json.result, base64 ? b64("emoji 😀") : "emoji 😀");
      assert.equal((await call("/", ["GET", `${k}:none`], { base64 })).json.result, null);
      assert.equal((await call("/", ["DEL", k], { base64 })).json.result, 1);
      assert.equal(
        (await call("/", ["PING"], { base64 })).json.result,
        base64 ? b64("PONG") : "PONG",
      );
    }
    // Non-UTF-8 bytes survive only in base64 mode, byte for byte.
    const bin = await call("/", ["EVAL", "return string.char(0, 255, 128)", 0], { base64: true });
    assert.equal(bin.json.result, "AP+A");
    const script = "return {1, 'a', {'b', false}, redis.status_reply('OK')}";
    assert.deepEqual((await call("/", ["EVAL", script, 0])).json.result, [
      1,
      "a",
      ["b", null],
      "OK",
    ]);
    assert.deepEqual((await call("/", ["EVAL", script, 0], { base64: true })).json.result, [
      1,
      b64("a"),
      [b64("b"), null],
      b64("OK"),
    ]);
    // 64-bit integers are written as exact JSON digits.
    await call("/", ["SET", k, "9007199254740993"]);
    const pipe = await call("/pipeline", [["INCR", k], ["GET", k], ["INCR", `${k}:s`]], {
      base64: true,
    });
    assert.equal(pipe.status, 200);
    assert.equal(
      pipe.text,
      `[{"result":9007199254740994},{"result":"${b64("9007199254740994")}"},{"result":1}]`,
    );
    await call("/", ["SET", k, "9223372036854775806"]);
    assert.equal((await call("/", ["INCR", k])).text, '{"result":9223372036854775807}');
    const tx = await call("/multi-exec", [["SET", `${k}:t`, "x"], ["INCR", `${k}:t`], [
      "GET",
      `${k}:t`,
    ]]);
    assert.equal(tx.status, 200);
    assert.equal(tx.json[0].result, "OK");
    assert.match(tx.json[1].error, /^ERR value is not an integer/);
    assert.equal(tx.json[2].result, "x");
    const aborted = await call("/multi-exec", [["SET", `${k}:u`, "1"], ["NOSUCHCOMMAND"]]);
    assert.equal(aborted.status, 400);
    assert.match(aborted.json.error, /^EXECABORT .*unknown command/);
    assert.equal((await call("/", ["EXISTS", `${k}:u`])).json.result, 0, "aborted tx wrote");
  });
});

Deno.test("errors: Redis error text is passed through verbatim", async () => {
  await withBridge(async ({ url, call, redis }) => {
    const k = `${PREFIX}err`;
    await redis.set(k, "not a number");
    await assert.rejects(redis.incr(k), /ERR value is not an integer or out of range/);
    await assert.rejects(redis.lpush(k, "x"), /WRONGTYPE/);
    const direct = new Redis({
      url,
      token: TOKEN,
      enableTelemetry: false,
      enableAutoPipelining: false,
    });
    await assert.rejects(direct.incr(k), /^UpstashError: ERR value is not an integer/);
    const incr = await call("/", ["INCR", k]);
    assert.equal(incr.status, 400);
    assert.equal(incr.json.error, "ERR value is not an integer or out of range");
    const noscript = await call("/", ["EVALSHA", "0".repeat(40), 0]);
    assert.equal(noscript.status, 400);
    assert.match(noscript.json.error, /^NOSCRIPT /);
    await assert.rejects(redis.evalsha("0".repeat(40), [], []), /NOSCRIPT/);
    // Pipelines report errors per entry with HTTP 200; the client raises on exec().
    await assert.rejects(
      redis.pipeline().get(k).incr(k).exec(),
      /Command 2 \[ incr \] failed: ERR/,
    );
    const kept = await redis.pipeline().get(k).incr(k).exec({ keepErrors: true });
    assert.equal(kept[0]?.result, "not a number");
    assert.match(String(kept[1]?.error), /^ERR value is not an integer/);
    // Connection-state commands would poison shared connections, so they are refused.
    for (
      const cmd of [["MULTI"], ["SELECT", "1"], ["SUBSCRIBE", "x"], ["CLIENT", "REPLY", "OFF"]]
    ) {
      const res = await call("/", cmd);
      assert.equal(res.status, 400, cmd.join(" "));
      assert.match(res.json.error, /not supported by the REST bridge/);
    }
    const mixed = await call("/pipeline", [["WATCH", k], ["GET", k]]);
    assert.equal(mixed.status, 200);
    assert.match(mixed.json[0].error, /not supported/);
    assert.equal(mixed.json[1].result, "not a number");
  });
});

Deno.test("http: auth, validation, routing and body limits", async () => {
  await withBridge(async ({ call }) => {
    const get = ["GET", `${PREFIX}x`];
    for (const token of [null, "wrong", `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const res = await call("/", get, { token });
      assert.equal(res.status, 401);
      assert.deepEqual(res.json, { error: "Unauthorized" });
    }
    assert.equal((await call("/pipeline", [get], { token: "nope" })).status, 401);
    const invalid: [string, BodyInit, RegExp][] = [
      ["/", "not json", /not valid JSON/],
      ["/", "", /not valid JSON/],
      ["/", '{"cmd":"GET"}', /must be a JSON array/],
      ["/", "[]", /must not be an empty array/],
      ["/", '["SET","k",{"a":1}]', /argument 2 must be a string or number/],
      ["/", '["SET","k",["v"]]', /argument 2 must be a string or number/],
      ["/", '["SET","k",null]', /argument 2 must be a string or number/],
      ["/pipeline", "[]", /non-empty JSON array of commands/],
      ["/pipeline", '["GET","k"]', /Command 0 must be a JSON array/],
      ["/pipeline", '[["GET","k"],[]]', /Command 1 must not be an empty array/],
      ["/multi-exec", '[["GET","k"],"x"]', /Command 1 must be a JSON array/],
    ];
    for (const [path, rawBody, message] of invalid) {
      const res = await call(path, undefined, { rawBody });
      assert.equal(res.status, 400, `${path} ${rawBody}`);
      assert.match(res.json.error, message);
    }
    const tooBig = await call("/", undefined, {
      rawBody: JSON.stringify(["SET", `${PREFIX}big`, "x".repeat(10 * 1024 * 1024)]),
    });
    assert.equal(tooBig.status, 413);
    assert.match(tooBig.json.error, /exceeds the limit/);
    assert.equal((await call("/pipeline", undefined, { method: "GET" })).status, 405);
    assert.equal((await call("/", undefined, { method: "GET" })).status, 405);
    const missing = await call("/nope", get);
    assert.equal(missing.status, 404);
    assert.match(missing.json.error, /Not found/);
    assert.deepEqual((await call("/health", undefined, { token: null, method: "GET" })).json, {
      ok: true,
    });
    // Numbers and booleans are sent as their decimal/string form.
    assert.equal((await call("/", ["SET", `${PREFIX}num`, 12.5])).json.result, "OK");
    assert.equal((await call("/", ["INCRBYFLOAT", `${PREFIX}num`, 1])).json.result, "13.5");
  }, { maxBodyBytes: 10 * 1024 * 1024 });
});

Deno.test("scripts: allow-key-locking scripts work via EVAL, SCRIPT LOAD and EVALSHA", async () => {
  // Unique per run so earlier runs' script cache cannot help.
  const script = `#!lua flags=allow-key-locking\n-- ${RUN}\nreturn {KEYS[1], ARGV[1], 7}`;
  const originalSha = await sha1Hex(script);
  const key = `${PREFIX}script`;
  await withBridge(async ({ call, redis }) => {
    const evaluated = await call("/", ["EVAL", script, 1, key, "arg"]);
    assert.equal(evaluated.status, 200, evaluated.text);
    assert.deepEqual(evaluated.json.result, [key, "arg", 7]);
    assert.equal((await call("/", ["SCRIPT", "LOAD", script])).json.result, originalSha);
    assert.equal(await redis.scriptLoad(script), originalSha);
    assert.deepEqual(await redis.evalsha(originalSha, [key], ["x"]), [key, "x", 7]);
    assert.deepEqual(await redis.evalshaRo(originalSha, [key], ["y"]), [key, "y", 7]);
    assert.deepEqual(await redis.scriptExists(originalSha, "0".repeat(40)), [1, 0]);
    // Other flags survive: no-writes still forbids writes.
    const readOnly =
      "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('SET', KEYS[1], 1)";
    const denied = await call("/", ["EVAL", readOnly, 1, key]);
    assert.equal(denied.status, 400);
    assert.match(denied.json.error, /Write commands are not allowed from read-only scripts/);
  });
  // A fresh bridge has an empty map: the original SHA is unknown to Redis, so NOSCRIPT, and
  // the client's EVALSHA -> EVAL fallback (Script.exec) re-creates the mapping.
  await withBridge(async ({ call, redis }) => {
    const unknown = await call("/", ["EVALSHA", originalSha, 1, key, "z"]);
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error, /^NOSCRIPT/);
    const s = redis.createScript<[string, string, number]>(script);
    assert.deepEqual(await s.exec([key], ["fallback"]), [key, "fallback", 7]);
    assert.equal(s.sha1, originalSha, "client-side SHA is the original script's");
    assert.deepEqual((await call("/", ["EVALSHA", originalSha, 1, key, "z"])).json.result, [
      key,
      "z",
      7,
    ]);
  });
});

/** Waits out the end of a window if it is near, so one burst stays inside one window. */
async function avoidWindowEdge(windowMs: number, marginMs = 5000): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}

Deno.test("ratelimit: 500 concurrent limit() calls allow exactly 100", async () => {
  await withBridge(async ({ url, redis }) => {
    const limiters = {
      sliding: Ratelimit.slidingWindow(100, "60 s"),
      fixed: Ratelimit.fixedWindow(100, "60 s"),
    };
    const direct = new Redis({
      url,
      token: TOKEN,
      enableTelemetry: false,
      enableAutoPipelining: false,
    });
    const clients = { autopipelined: redis, direct };
    for (const [name, limiter] of Object.entries(limiters)) {
      for (const [mode, client] of Object.entries(clients)) {
        const ratelimit = new Ratelimit({
          redis: client,
          limiter,
          prefix: `${PREFIX}rl-${name}-${mode}`,
          ephemeralCache: false,
          // No fail-open timeout: every answer must come from Redis (and no stray timers).
          timeout: 0,
          analytics: false,
        });
        await avoidWindowEdge(60_000);
        const results = await Promise.all(
          Array.from({ length: 500 }, () => ratelimit.limit("user-1")),
        );
        const ok = results.filter((r) => r.success);
        assert.equal(ok.length, 100, `${name}/${mode}: successes`);
        const remaining = ok.map((r) => r.remaining).sort((a, b) => a - b);
        assert.deepEqual(
          remaining,
          Array.from({ length: 100 }, (_, i) => i),
          `${name}/${mode}: remaining`,
        );
        assert.ok(results.every((r) => r.limit === 100));
      }
    }
  });
});

Deno.test("multi-exec is atomic under concurrent load", async () => {
  await withBridge(async ({ redis }) => {
    const k = `${PREFIX}atomic`;
    const txs = Array.from({ length: 100 }, () => redis.multi().incr(k).get(k).incr(k).exec());
    const noise = Array.from({ length: 200 }, () => redis.incr(k));
    const [results] = await Promise.all([Promise.all(txs), Promise.all(noise)]);
    for (const [a, b, c] of results as [number, number, number][]) {
      // Interleaving would let a noise INCR land between the commands of a transaction.
      assert.equal(b, a);
      assert.equal(c, a + 1);
    }
    assert.equal(await redis.get(k), 400);
  });
});

Deno.test("pool: reconnects after a dropped connection and enforces timeouts", async () => {
  const pool = new RedisPool({ url: REDIS_URL, size: 1, commandTimeoutMs: 3000 });
  const killer = new RedisPool({ url: REDIS_URL, size: 1 });
  try {
    const id = await pool.command(["CLIENT", "ID"]);
    assert.equal(typeof id, "number");
    // A command stuck on the connection when it dies fails promptly with a clear error.
    const started = Date.now();
    // Attach the rejection handler right away: the kill may land before the next await.
    const blocked = assert.rejects(
      pool.command(["BLPOP", `${PREFIX}never`, "5"]),
      (e) => e instanceof RedisUnavailableError && /closed/.test(e.message),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await killer.command(["CLIENT", "KILL", "ID", String(id)]), 1);
    await blocked;
    assert.ok(Date.now() - started < 2000);
    // The next command transparently opens a new connection.
    const newId = await pool.command(["CLIENT", "ID"]);
    assert.notEqual(newId, id);
    assert.deepEqual(await pool.command(["PING"]), new RespStatus("PONG"));
  } finally {
    await pool.close();
    await killer.close();
  }
  const slow = new RedisPool({ url: REDIS_URL, size: 2, commandTimeoutMs: 300 });
  try {
    const started = Date.now();
    await assert.rejects(slow.command(["BLPOP", `${PREFIX}never`, "5"]), /timed out after 300 ms/);
    assert.ok(Date.now() - started < 1500);
    assert.deepEqual(await slow.command(["PING"]), new RespStatus("PONG"));
  } finally {
    await slow.close();
  }
  await assert.rejects(slow.command(["PING"]), /pool is closed/);
});

Deno.test("unreachable Redis: 503 JSON quickly", async () => {
  await withBridge(
    async ({ call, redis }) => {
      for (const [path, body] of [["/", ["GET", "k"]], ["/pipeline", [["GET", "k"]]]] as const) {
        const started = Date.now();
        const res = await call(path, body);
        assert.ok(Date.now() - started < 3000, "answered within 3 s");
        assert.equal(res.status, 503);
        assert.match(res.json.error, /^Redis unavailable: /);
      }
      const health = await call("/health", undefined, { token: null, method: "GET" });
      assert.equal(health.status, 503);
      assert.equal(health.json.ok, false);
      await assert.rejects(redis.get("k"), /Redis unavailable/);
    },
    { redisUrl: "redis://127.0.0.1:1" },
    false,
  );
});

/** The encoder the bridge used before RespWriter: TextEncoder per argument, then concatenate. */
function referenceEncode(args: readonly (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [enc.encode(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? enc.encode(arg) : arg;
    parts.push(enc.encode(`$${bytes.length}\r\n`), bytes, enc.encode("\r\n"));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}

Deno.test("resp: RespWriter writes the same bytes as TextEncoder, for any text", () => {
  const pieces = ["", "a", "key:1", "é", "日本", "😀", "\ud800", "\udc00x", "\u0000", "\r\n", "~"];
  let seed = 42;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const randomText = () => {
    const repeat = [1, 2, 9, 10, 99, 100, 300][random(7)] as number;
    return Array.from({ length: repeat }, () => pieces[random(pieces.length)]).join("");
  };
  const writer = new RespWriter(64); // tiny, so growth is exercised too
  const expected: Uint8Array[] = [];
  for (let i = 0; i < 500; i++) {
    const args: (string | Uint8Array)[] = Array.from({ length: 1 + random(12) }, randomText);
    if (i % 7 === 0) args.push(new Uint8Array([0, 255, 13, 10]));
    writer.command(args);
    expected.push(referenceEncode(args));
    assert.deepEqual(encodeCommand(args), referenceEncode(args), JSON.stringify(args));
  }
  const all = new Uint8Array(expected.reduce((n, p) => n + p.length, 0));
  expected.reduce((offset, p) => (all.set(p, offset), offset + p.length), 0);
  assert.deepEqual(writer.bytes(), all);
  const big = "€".repeat(1024 * 1024);
  writer.command(["SET", "k", big]);
  writer.reset();
  assert.equal(writer.length, 0);
  writer.command(["GET", "k"]);
  assert.deepEqual(writer.bytes(), referenceEncode(["GET", "k"]));
});

Deno.test("resp: integers, lengths and status lines parse exactly; bad ones are refused", () => {
  const wire = ":0\r\n:00012\r\n:-7\r\n:123456789012345\r\n:9007199254740991\r\n" +
    ":9007199254740992\r\n:-9007199254740993\r\n:9223372036854775807\r\n" +
    "+h\u00e9llo\r\n-ERR a rather long error message with \u00fc in it, past 32 bytes\r\n";
  const parser = new RespParser();
  parser.feed(enc.encode(wire));
  const got: RespReply[] = [];
  for (let r = parser.next(); r !== INCOMPLETE; r = parser.next()) got.push(r);
  assert.deepEqual(got, [
    0,
    12,
    -7,
    123456789012345,
    9007199254740991,
    9007199254740992n,
    -9007199254740993n,
    9223372036854775807n,
    new RespStatus("h\u00e9llo"),
    new RespError("ERR a rather long error message with \u00fc in it, past 32 bytes"),
  ]);
  for (const bad of [":12a\r\n", ":\r\n", ":-\r\n", ":+5\r\n", "$x\r\n", "$-2\r\n", "*1.5\r\n"]) {
    const p = new RespParser();
    p.feed(enc.encode(bad));
    assert.throws(() => p.next(), RespProtocolError, bad);
  }
});

Deno.test("scripts: sha1Hex is the SHA-1 of the UTF-8 text", async () => {
  for (const text of ["", "return 1", "#!lua flags=allow-key-locking\nreturn '😀 é'"]) {
    const digest = await crypto.subtle.digest("SHA-1", enc.encode(text));
    assert.equal(sha1Hex(text), new Uint8Array(digest).toHex());
  }
});

Deno.test("http: bearer token, paths and streamed bodies", async () => {
  await withBridge(async ({ url, call }) => {
    const ping = async (authorization: string) =>
      (await fetch(`${url}/`, { method: "POST", headers: { authorization }, body: '["PING"]' }))
        .text();
    const last = TOKEN.at(-1) === "a" ? "b" : "a";
    for (const header of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `Bearer   ${TOKEN}  `]) {
      assert.equal(await ping(header), '{"result":"PONG"}', header);
    }
    for (
      const header of [
        `Bearer ${TOKEN}${TOKEN}`, // matches position by position modulo the length
        `Bearer ${TOKEN.slice(0, -1)}${last}`,
        `Basic ${TOKEN}`,
        `Bearer ${TOKEN} x`,
        `Bearer`,
      ]
    ) {
      assert.equal(await ping(header), '{"error":"Unauthorized"}', header);
    }
    for (const path of ["/pipeline/", "/pipeline?x=1", "/pipeline//"]) {
      const res = await call(path, [["PING"]]);
      assert.equal(res.text, '[{"result":"PONG"}]', path);
    }
    assert.equal((await call("/pipe%6Cine", [["PING"]])).status, 404);
    // Bodies without Content-Length (chunked) are read in chunks and capped while streaming.
    const streamed = (text: string) =>
      fetch(`${url}/pipeline`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: ReadableStream.from([enc.encode(text.slice(0, 5)), enc.encode(text.slice(5))]),
      });
    const ok = await streamed('\ufeff[["ECHO","é"]]');
    assert.equal(await ok.text(), '[{"result":"é"}]');
    const big = await streamed(JSON.stringify([["ECHO", "x".repeat(2000)]]));
    assert.equal(big.status, 413);
    assert.match((await big.json()).error, /exceeds the limit of 1024 bytes/);
    // The same BOM-prefixed body with a Content-Length takes the one-piece path.
    const withLength = await call("/pipeline", undefined, { rawBody: '\ufeff[["ECHO","é"]]' });
    assert.equal(withLength.text, '[{"result":"é"}]');
  }, { maxBodyBytes: 1024 });
});

Deno.test("pool: one turn's calls share a connection until a blocking one", async () => {
  const pool = new RedisPool({ url: REDIS_URL, size: 4 });
  try {
    const [a, b, blocked, c] = [
      pool.command(["CLIENT", "ID"]),
      pool.command(["CLIENT", "ID"]),
      pool.command(["BLPOP", `${PREFIX}none`, "0.5"]),
      pool.command(["CLIENT", "ID"]),
    ];
    const started = Date.now();
    assert.equal(await a, await b);
    assert.notEqual(await c, await a, "a call after BLPOP must not queue behind it");
    assert.ok(Date.now() - started < 400, "answered while BLPOP still blocks");
    assert.equal(await blocked, null);
    // A batch with a bad argument is refused whole; the connection's stream stays in step.
    const k = `${PREFIX}partial`;
    const bad = ["GET", 5] as unknown as string[];
    await assert.rejects(pool.pipeline([["SET", k, "v"], bad]), TypeError);
    assert.equal(await pool.command(["GET", k]), null, "nothing of the bad batch was sent");
    assert.deepEqual(await pool.command(["PING"]), new RespStatus("PONG"));
    // Many calls of one turn: replies line up with their calls.
    const n = `${PREFIX}turn`;
    const incrs = Array.from({ length: 300 }, () => pool.command(["INCR", n]));
    assert.deepEqual(await Promise.all(incrs), Array.from({ length: 300 }, (_, i) => i + 1));
    await pool.command(["DEL", n]);
  } finally {
    await pool.close();
  }
});

Deno.test("pool: the deadline timer follows the oldest call", async () => {
  // Margins wide enough for a busy machine: the first call needs 200 ms of its 800.
  const pool = new RedisPool({ url: REDIS_URL, size: 1, commandTimeoutMs: 800 });
  try {
    const first = pool.command(["BLPOP", `${PREFIX}none1`, "0.2"]);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const second = assert.rejects(
      pool.command(["BLPOP", `${PREFIX}none2`, "3"]),
      /timed out after 800 ms/,
    );
    assert.equal(await first, null, "the first call ends in time");
    await second;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 750 && elapsed < 2500, `second call timed out after ${elapsed} ms`);
  } finally {
    await pool.close();
  }
});

Deno.test("bridge: concurrent pipelines each get their own replies", async () => {
  await withBridge(async ({ call }) => {
    const results = await Promise.all(Array.from({ length: 60 }, async (_, i) => {
      const k = `${PREFIX}c${i}`;
      const body = [["SET", k, `v${i}`], ["GET", k], ["INCRBY", `${k}:n`, i], ["DEL", k]];
      return [i, await call("/pipeline", body, { base64: i % 2 === 0 })] as const;
    }));
    for (const [i, res] of results) {
      const value = i % 2 === 0 ? b64(`v${i}`) : `v${i}`;
      assert.equal(
        res.text,
        `[{"result":"OK"},{"result":"${value}"},{"result":${i}},{"result":1}]`,
      );
    }
  });
});
