import assert from "node:assert/strict";
import { ConnectError, KeepAliveClient, ProtocolError } from "./http1.ts";
import { serveLoopback } from "../testing/loopback.ts";
import { testCertificates } from "../testing/tls.ts";

/** What the scripted server does with one request: the bytes it answers, then whether it closes. */
interface Step {
  chunks: string[];
  close?: boolean;
  /** Never answers (the client must give up). */
  hang?: boolean;
}

/**
 * A raw TCP server on 127.0.0.1 that reads each request (head and `Content-Length` body) and
 * answers with the next scripted step, byte for byte, each chunk in its own write.
 */
function scripted(steps: Step[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  const conns = new Set<Deno.Conn>();
  const decoder = new TextDecoder();
  const serve = async (conn: Deno.Conn): Promise<void> => {
    conns.add(conn);
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    try {
      while (true) {
        let end = text.indexOf("\r\n\r\n");
        while (end < 0 || text.length < end + 4 + contentLength(text.slice(0, end))) {
          const n = await conn.read(buf);
          if (n === null) return;
          text += decoder.decode(buf.subarray(0, n));
          end = text.indexOf("\r\n\r\n");
        }
        const total = end + 4 + contentLength(text.slice(0, end));
        requests.push(text.slice(0, total));
        text = text.slice(total);
        const step = steps.shift();
        if (!step || step.hang) return await new Promise<void>(() => {});
        for (const chunk of step.chunks) {
          await conn.write(new TextEncoder().encode(chunk));
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        if (step.close) return;
      }
    } catch {
      // closed by the client
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) void serve(conn);
    } catch {
      // listener closed
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}/base`,
    requests,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await accepting;
    },
  };
}

function contentLength(head: string): number {
  return Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
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

Deno.test("KeepAliveClient: an abort gives up at once; the next request gets a new connection", async () => {
  await using s = scripted([{ chunks: [], hang: true }, { chunks: [ok("[1]")] }]);
  const c = new KeepAliveClient(s.url);
  const started = performance.now();
  const reason = new DOMException("deadline", "TimeoutError");
  const abort = new AbortController();
  setTimeout(() => abort.abort(reason), 100);
  await assert.rejects(post(c, "[]", abort.signal), (e) => e === reason);
  assert.ok(performance.now() - started < 1000);
  assert.equal(c.busy, false);
  assert.equal((await post(c)).body, "[1]");
  assert.equal(c.connections, 2);
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
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal((await post(c)).body, "[3]");
  assert.equal(c.connections, 3);
  c.close();
});

Deno.test("KeepAliveClient: one request at a time; other schemes are refused", async () => {
  await using s = scripted([{ chunks: [ok("[1]")] }]);
  const c = new KeepAliveClient(s.url);
  const first = post(c);
  await assert.rejects(post(c), /one request at a time/);
  assert.equal((await first).body, "[1]");
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

Deno.test("KeepAliveClient: a kept-alive connection the server closed is replaced once, unanswered requests only", async () => {
  await using s = scripted([
    { chunks: [ok("[1]")], close: true }, // closes without saying so (an idle timeout)
    { chunks: [ok("[2]")] },
    { chunks: ["HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n[3"], close: true }, // answered in part
    { chunks: [ok("[4]")] },
  ]);
  const c = new KeepAliveClient(s.url);
  assert.equal((await post(c, "[1]")).body, "[1]");
  assert.equal((await post(c, "[2]")).body, "[2]");
  assert.equal(c.connections, 2);
  assert.equal(s.requests.length, 2, "the request on the closed connection reached nobody");
  // A connection that ends after part of an answer is not retried: the request was taken.
  await assert.rejects(post(c, "[3]"), ProtocolError);
  assert.equal((await post(c, "[4]")).body, "[4]");
  assert.deepEqual(s.requests.map((r) => r.slice(-3)), ["[1]", "[2]", "[3]", "[4]"]);
  c.close();
});
