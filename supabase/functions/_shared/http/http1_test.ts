import assert from "node:assert/strict";
import { ConnectError, dechunk, KeepAliveClient, ProtocolError, requestBytes } from "./http1.ts";
import { serveLoopback } from "../testing/loopback.ts";
import { testCertificates } from "../testing/tls.ts";
import { delayProxy } from "../testing/delay_proxy.ts";
import { rawServer, writeText } from "../testing/raw_server.ts";
import { delay } from "../deadline.ts";

/** What the scripted server does with one request: the bytes it answers, then whether it closes. */
interface Step {
  chunks: string[];
  close?: boolean;
  /** Never answers (the client must give up). */
  hang?: boolean;
  /** Waits this long before answering. */
  delayMs?: number;
}

/**
 * A raw TCP server on 127.0.0.1 that answers each request with the next scripted step, byte for
 * byte, each chunk in its own write.
 */
function scripted(steps: Step[]) {
  const server = rawServer(async (_, conn) => {
    const step = steps.shift();
    if (!step || step.hang) return "hang";
    if (step.delayMs) await delay(step.delayMs);
    for (const chunk of step.chunks) {
      await writeText(conn, chunk);
      await delay(1);
    }
    return step.close ? "close" : "keep";
  });
  return {
    url: `http://127.0.0.1:${server.port}/base`,
    get requests() {
      return server.requests.map((r) => r.text);
    },
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}

const ok = (body: string, more = "") =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n${more}\r\n${body}`;
const post = (c: KeepAliveClient, body = '["ping"]', signal = AbortSignal.timeout(2000)) =>
  c.post("/base/pipeline", { authorization: "Bearer t" }, body, signal);

Deno.test("KeepAliveClient: answers framed by Content-Length share one connection", async () => {
  await using s = scripted([{ chunks: [ok('{"a":1}')] }, { chunks: [ok("[2]")] }, {
    chunks: ["HTTP/1.1 200 OK\r\ncontent-length: 3\r\nupstash-sync-token: x", "y\r\n\r\n[", "3]"],
  }]);
  const c = new KeepAliveClient(s.url);
  const answers = [await post(c), await post(c, "[]"), await post(c)];
  assert.deepEqual(answers.map((a) => [a.status, a.body]), [
    [200, '{"a":1}'],
    [200, "[2]"],
    [200, "[3]"],
  ]);
  assert.equal(answers[2]!.headers.get("upstash-sync-token"), "xy");
  assert.equal(c.connections, 1);
  assert.match(s.requests[0]!, /^POST \/base\/pipeline HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
  assert.match(
    s.requests[0]!,
    /\r\nauthorization: Bearer t\r\nContent-Length: 8\r\n\r\n\["ping"\]$/,
  );
  c.close();
});

Deno.test("KeepAliveClient: a chunked answer is read exactly, extensions and trailers included", async () => {
  const chunked = [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "4;ext=1\r\n[1,2\r\n",
    "3\r",
    "\n,3]\r\n0\r\ntrailer: x\r\n\r\n",
  ];
  await using s = scripted([{ chunks: chunked }, { chunks: [ok("[4]")] }]);
  const c = new KeepAliveClient(s.url);
  assert.equal((await post(c)).body, "[1,2,3]");
  assert.equal((await post(c)).body, "[4]");
  assert.equal(c.connections, 1);
  c.close();
});

Deno.test("KeepAliveClient: Connection: close, HTTP/1.0 and a body ending with the connection are not reused", async () => {
  await using s = scripted([
    { chunks: [ok("[1]", "connection: close\r\n")], close: true },
    { chunks: ["HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\n[2]"], close: true },
    { chunks: ["HTTP/1.1 200 OK\r\n\r\n", "[3", "]"], close: true },
    { chunks: [ok("[4]")] },
  ]);
  const c = new KeepAliveClient(s.url);
  const bodies = [];
  for (let i = 0; i < 4; i++) bodies.push((await post(c)).body);
  assert.deepEqual(bodies, ["[1]", "[2]", "[3]", "[4]"]);
  assert.equal(c.connections, 4);
  c.close();
});

Deno.test("KeepAliveClient: a broken answer is a ProtocolError, and the next request reconnects", async () => {
  const broken: Array<[string, Step]> = [
    ["closed mid-body", {
      chunks: ["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n[1,"],
      close: true,
    }],
    ["not HTTP", { chunks: ["SSH-2.0-OpenSSH\r\n\r\n"], close: true }],
    ["bad length", { chunks: ["HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"], close: true }],
    ["bad chunk size", {
      chunks: ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"],
      close: true,
    }],
    ["unterminated chunk", {
      chunks: ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"],
      close: true,
    }],
    ["other coding", {
      chunks: ["HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"],
      close: true,
    }],
    ["huge head", { chunks: [`HTTP/1.1 200 OK\r\nx: ${"a".repeat(20_000)}\r\n\r\n`], close: true }],
    ["no answer", { chunks: [], close: true }],
  ];
  await using s = scripted([...broken.map(([, step]) => step), { chunks: [ok("[1]")] }]);
  const c = new KeepAliveClient(s.url);
  for (const [what] of broken) {
    await assert.rejects(post(c), ProtocolError, what);
  }
  assert.equal((await post(c)).body, "[1]");
  assert.equal(c.connections, broken.length + 1);
  c.close();
});

Deno.test("KeepAliveClient: an answer over the size bound is refused", async () => {
  await using s = scripted([
    { chunks: [ok("x".repeat(100))] },
    { chunks: ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40\r\n" + "y".repeat(64)] },
    { chunks: [ok("[1]")] },
  ]);
  const c = new KeepAliveClient(s.url, { maxBodyBytes: 50 });
  await assert.rejects(post(c), /larger than 50 bytes/);
  await assert.rejects(post(c), /larger than 50 bytes/);
  assert.equal((await post(c)).body, "[1]");
  c.close();
});

Deno.test("KeepAliveClient: an abort gives up at once; an answer that never comes ends the connection", async () => {
  await using s = scripted([{ chunks: [], hang: true }, { chunks: [ok("[1]")] }]);
  const c = new KeepAliveClient(s.url, { connectTimeoutMs: 300 });
  const started = performance.now();
  const reason = new DOMException("deadline", "TimeoutError");
  const abort = new AbortController();
  setTimeout(() => abort.abort(reason), 100);
  await assert.rejects(post(c, "[]", abort.signal), (e) => e === reason);
  assert.ok(performance.now() - started < 200, "the caller is free at its deadline");
  assert.equal(c.busy, true, "the answer is still awaited, within the connection's bound");
  // The next request waits for that, then gets a new connection.
  assert.equal((await post(c)).body, "[1]");
  assert.equal(c.connections, 2);
  c.close();
});

Deno.test("KeepAliveClient: an answer its caller gave up on is read to the end, and the connection kept", async () => {
  await using s = scripted([{ chunks: [ok("[1]")], delayMs: 150 }, { chunks: [ok("[2]")] }]);
  const c = new KeepAliveClient(s.url);
  await assert.rejects(
    post(c, "[]", AbortSignal.timeout(50)),
    (e) => (e as Error).name === "TimeoutError",
  );
  assert.equal((await post(c)).body, "[2]");
  assert.equal(c.connections, 1, "no connection lost to a deadline");
  c.close();
});

Deno.test("KeepAliveClient: bytes beyond the answer, or a long idle, end the connection", async () => {
  await using s = scripted([
    { chunks: [ok("[1]") + "HTTP/1.1 200 OK\r\n"] },
    { chunks: [ok("[2]")] },
    { chunks: [ok("[3]")] },
  ]);
  const c = new KeepAliveClient(s.url, { idleMs: 50 });
  assert.equal((await post(c)).body, "[1]");
  assert.equal((await post(c)).body, "[2]");
  await delay(100);
  assert.equal((await post(c)).body, "[3]");
  assert.equal(c.connections, 3);
  c.close();
});

Deno.test("KeepAliveClient: requests go one at a time, in order; other schemes are refused", async () => {
  await using s = scripted([{ chunks: [ok("[1]")] }, { chunks: [ok("[2]")] }]);
  const c = new KeepAliveClient(s.url);
  const [a, b] = await Promise.all([post(c, "[1]"), post(c, "[2]")]);
  assert.deepEqual([a.body, b.body], ["[1]", "[2]"]);
  assert.equal(c.connections, 1);
  c.close();
  assert.throws(() => new KeepAliveClient("ftp://127.0.0.1/"), TypeError);
});

Deno.test("KeepAliveClient: https verifies the certificate and keeps the TLS session for the next request", async () => {
  const pem = await testCertificates("IP:127.0.0.1");
  await using server = serveLoopback(async (req) => {
    return new Response(`[${JSON.stringify(await req.text())}]`);
  }, { cert: pem.cert, key: pem.key });
  const trusted = new KeepAliveClient(server.url, { caCerts: [pem.ca] });
  const bodies = [];
  for (const body of ["a", "b", "c"]) bodies.push((await post(trusted, body)).body);
  assert.deepEqual(bodies, ['["a"]', '["b"]', '["c"]']);
  assert.equal(trusted.connections, 1);
  trusted.close();
  // A certificate that chains to no trusted root is not spoken to.
  const untrusted = new KeepAliveClient(server.url);
  await assert.rejects(post(untrusted), (e) => e instanceof ConnectError && e.stage === "tls");
  untrusted.close();
});

Deno.test("KeepAliveClient: a kept-alive connection the server closed is replaced once, unanswered idempotent requests only", async () => {
  await using s = scripted([
    { chunks: [ok("[1]")], close: true }, // closes without saying so (an idle timeout)
    { chunks: [ok("[2]")] },
    { chunks: ["HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n[3"], close: true }, // answered in part
    { chunks: [ok("[4]")] },
  ]);
  const c = new KeepAliveClient(s.url);
  const idempotent = (body: string) =>
    c.post("/base/pipeline", {}, body, AbortSignal.timeout(2000), { idempotent: true });
  assert.equal((await idempotent("[1]")).body, "[1]");
  assert.equal((await idempotent("[2]")).body, "[2]");
  assert.equal(c.connections, 2);
  assert.equal(s.requests.length, 2, "the request on the closed connection reached nobody");
  // A connection that ends after part of an answer is not retried: the request was taken.
  await assert.rejects(idempotent("[3]"), ProtocolError);
  assert.equal((await idempotent("[4]")).body, "[4]");
  assert.deepEqual(s.requests.map((r) => r.slice(-3)), ["[1]", "[2]", "[3]", "[4]"]);
  c.close();
});

Deno.test("KeepAliveClient: a request that may write is never sent twice, even unanswered", async () => {
  // The server reads the second request and closes without a byte of answer: it may have run it.
  await using s = scripted([{ chunks: [ok("[1]")] }, { chunks: [], close: true }, {
    chunks: [ok("[3]")],
  }]);
  const c = new KeepAliveClient(s.url);
  assert.equal((await post(c, '["incr"]')).body, "[1]");
  // The caller learns that its request left: its outcome is unknown, not "not sent".
  let told = 0;
  const unsure = c.post("/base/pipeline", {}, '["incr"]', AbortSignal.timeout(2000), {
    onSent: () => told++,
  });
  await assert.rejects(unsure, (e) => e instanceof ProtocolError && e.unanswered);
  assert.equal(told, 1);
  assert.equal(s.requests.length, 2, "sent once");
  assert.equal(c.sent, 2);
  assert.equal((await post(c, '["incr"]')).body, "[3]");
  c.close();
});

Deno.test("KeepAliveClient: a connection far away opens though the request that started it gave up", async () => {
  const pem = await testCertificates("IP:127.0.0.1");
  await using server = serveLoopback(() => new Response("[1]"), { cert: pem.cert, key: pem.key });
  // TCP's and TLS's round trips take 300 ms, more than the first request waits.
  await using far = delayProxy({ hostname: "127.0.0.1", port: server.port }, 150);
  const c = new KeepAliveClient(`https://127.0.0.1:${far.port}`, {
    caCerts: [pem.ca],
    connectTimeoutMs: 5000,
  });
  const started = performance.now();
  await assert.rejects(
    post(c, "[]", AbortSignal.timeout(100)),
    (e) => (e as Error).name === "TimeoutError",
  );
  assert.ok(performance.now() - started < 200, "the request gave up at its own deadline");
  await c.warm();
  const opened = performance.now() - started;
  assert.ok(opened >= 250, `the connection took its round trips (${Math.round(opened)} ms)`);
  // Open now: a request costs one round trip.
  const before = performance.now();
  assert.equal((await post(c, "[]", AbortSignal.timeout(280))).body, "[1]");
  assert.ok(performance.now() - before < 280);
  assert.equal(c.connections, 1);
  assert.equal(far.accepted, 1, "one connection attempt, not one per request");
  c.close();
});

Deno.test("KeepAliveClient: a connection lost to an unanswered request is opened again before the next request", async () => {
  await using s = scripted([{ chunks: [], hang: true }, { chunks: [ok("[2]")] }]);
  const c = new KeepAliveClient(s.url, { connectTimeoutMs: 100 });
  await assert.rejects(
    post(c, "[]", AbortSignal.timeout(50)),
    (e) => (e as Error).name === "TimeoutError",
  );
  // The answer is awaited 100 ms; then the connection goes, and the next opens at once.
  await delay(200);
  await c.warm();
  assert.equal(c.connections, 2, "the next connection opened without waiting for a request");
  assert.equal((await post(c)).body, "[2]");
  c.close();
});

Deno.test("KeepAliveClient: a connection that cannot open within its own timeout fails the waiting request", async () => {
  // A TLS server that never answers the handshake.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  const c = new KeepAliveClient(`https://127.0.0.1:${port}`, { connectTimeoutMs: 100 });
  const started = performance.now();
  await assert.rejects(post(c, "[]", AbortSignal.timeout(2000)), ConnectError);
  assert.ok(performance.now() - started < 1000);
  c.close();
  listener.close();
  for (const conn of held) conn.close();
  await accepting;
});

Deno.test("requestBytes() refuses CR, LF and NUL in header names and values, and a broken request line", () => {
  const url = new URL("http://127.0.0.1/");
  const ok = requestBytes("POST", url, "/pipeline?x=1", { authorization: "Bearer t\tx" }, "[]");
  assert.match(
    new TextDecoder().decode(ok),
    /^POST \/pipeline\?x=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1\r\n/,
  );
  for (
    const [name, value] of [
      ["x-a", "1\r\nx-injected: 1"],
      ["x-a", "1\nx-injected: 1"],
      ["x-a", "1\r"],
      ["x-a", "a\u0000b"],
      ["x-a\r\nx-b", "1"],
      ["x a", "1"],
      ["", "1"],
    ]
  ) {
    assert.throws(
      () => requestBytes("POST", url, "/", { [name!]: value! }, ""),
      TypeError,
      JSON.stringify(name),
    );
  }
  assert.throws(() => requestBytes("POST", url, "/a b", {}, ""), TypeError);
  assert.throws(() => requestBytes("POST", url, "/\r\nGET /", {}, ""), TypeError);
  assert.throws(() => requestBytes("PO ST", url, "/", {}, ""), TypeError);
});

Deno.test("dechunk() decodes a whole body exactly, a partial one as far as it came, and names what is wrong", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const text = (d: { payload: Uint8Array }) => new TextDecoder().decode(d.payload);
  const whole = dechunk(bytes("3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\nNEXT"), 100);
  assert.deepEqual([text(whole), whole.done, whole.consumed, whole.error], [
    "abcde",
    true,
    34,
    undefined,
  ]);
  // As far as it came: the second chunk in part, no error.
  const part = dechunk(bytes("3\r\nabc\r\n5\r\nde"), 100);
  assert.deepEqual([text(part), part.done, part.error], ["abcde", false, undefined]);
  // Over the bound: what fits, and why it stopped.
  const over = dechunk(bytes("3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"), 5);
  assert.deepEqual([text(over), over.done, over.error], [
    "abcde",
    false,
    "the response is larger than 5 bytes",
  ]);
  assert.equal(dechunk(bytes("zz\r\nabc\r\n"), 100).error, "a chunk size is not hexadecimal");
  assert.equal(dechunk(bytes("3\r\nabcX\r\n"), 100).error, "a chunk is not terminated");
});
