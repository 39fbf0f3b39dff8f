import assert from "node:assert/strict";
import { DeliveryError, MAX_RESPONSE_BYTES, postWebhook, type WebhookRequest } from "./http.ts";
import { serveLoopback } from "../testing/loopback.ts";
import { testCertificates } from "../testing/tls.ts";

/** A server on loopback for one test; `handler` answers, every request is recorded. */
function serve(
  handler: (req: Request) => Response | Promise<Response>,
  tls?: { cert: string; key: string },
) {
  const requests: Array<{ method: string; url: string; headers: Headers; body: string }> = [];
  const server = serveLoopback(async (req) => {
    requests.push({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: await req.text(),
    });
    return await handler(req);
  }, tls);
  return { ...server, requests };
}

function request(url: string, extra: Partial<WebhookRequest> = {}): WebhookRequest {
  return {
    url: new URL(url),
    address: "127.0.0.1",
    headers: { "webhook-id": "01JBG7XKQM9F3Y8W2Z5N4P1R6T" },
    body: '{"type":"webhook.test"}',
    signal: AbortSignal.timeout(5_000),
    ...extra,
  };
}

Deno.test("postWebhook() connects to the given address, never resolving the URL's host again", async () => {
  const s = serve(() => new Response("thanks", { status: 201 }));
  try {
    // The host cannot resolve (.invalid): only the vetted address is ever connected to.
    const r = await postWebhook(request(`http://rebind.invalid:${s.port}/in?x=1`));
    assert.deepEqual(r, { status: 201, body: "thanks" });
    const [got] = s.requests;
    assert.equal(got!.method, "POST");
    assert.equal(new URL(got!.url).pathname + new URL(got!.url).search, "/in?x=1");
    assert.equal(got!.headers.get("host"), `rebind.invalid:${s.port}`);
    assert.equal(got!.headers.get("content-type"), "application/json");
    assert.equal(got!.headers.get("webhook-id"), "01JBG7XKQM9F3Y8W2Z5N4P1R6T");
    assert.equal(got!.body, '{"type":"webhook.test"}');
  } finally {
    await s.close();
  }
});

Deno.test("postWebhook() never follows a redirect: a 3xx is the answer", async () => {
  const target = serve(() => new Response("should not be reached"));
  const s = serve(() =>
    new Response(null, { status: 302, headers: { Location: `http://127.0.0.1:${target.port}/` } })
  );
  try {
    const r = await postWebhook(request(`http://127.0.0.1:${s.port}/`));
    assert.equal(r.status, 302);
    assert.equal(target.requests.length, 0);
  } finally {
    await s.close();
    await target.close();
  }
});

Deno.test("postWebhook() reads at most 1 KiB of a body, plain or chunked", async () => {
  const big = "x".repeat(100_000);
  const plain = serve(() => new Response(big, { status: 500 }));
  const chunked = serve(() =>
    new Response(
      new ReadableStream({
        start(c) {
          for (let i = 0; i < 50; i++) c.enqueue(new TextEncoder().encode(`chunk ${i};`));
          c.close();
        },
      }),
    )
  );
  try {
    const r = await postWebhook(request(`http://127.0.0.1:${plain.port}/`));
    assert.equal(r.status, 500);
    assert.equal(r.body, "x".repeat(MAX_RESPONSE_BYTES));
    const c = await postWebhook(request(`http://127.0.0.1:${chunked.port}/`));
    assert.equal(c.status, 200);
    assert.ok(c.body.startsWith("chunk 0;chunk 1;chunk 2;"), c.body.slice(0, 40));
    assert.ok(!/\r\n/.test(c.body), "chunk framing is removed");
  } finally {
    await plain.close();
    await chunked.close();
  }
});

Deno.test("postWebhook() gives up at the deadline on a server that never answers", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const started = performance.now();
    await assert.rejects(
      () =>
        postWebhook(request(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`, {
          signal: AbortSignal.timeout(300),
        })),
      (e: Error) => e.name === "TimeoutError",
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 290 && elapsed < 1_500, `gave up after ${elapsed} ms`);
  } finally {
    listener.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
  }
});

Deno.test("postWebhook() reports a refused connection and a server that does not speak HTTP", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const answering = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(1024));
    await conn.write(new TextEncoder().encode("SSH-2.0-OpenSSH\r\n\r\n"));
    conn.close();
  })();
  try {
    await assert.rejects(
      () => postWebhook(request(`http://127.0.0.1:${port}/`)),
      (e: unknown) => e instanceof DeliveryError && e.code === "protocol",
    );
  } finally {
    await answering;
    listener.close();
  }
  await assert.rejects(
    () => postWebhook(request(`http://127.0.0.1:${port}/`)),
    (e: unknown) => e instanceof DeliveryError && e.code === "connect",
  );
});

Deno.test("postWebhook() speaks TLS to the address, verifying the certificate for the URL's host", async () => {
  const pem = await testCertificates("DNS:hooks.test");
  const s = serve(() => new Response("secure"), { cert: pem.cert, key: pem.key });
  try {
    const url = `https://hooks.test:${s.port}/in`;
    const r = await postWebhook(request(url, { caCerts: [pem.ca] }));
    assert.deepEqual(r, { status: 200, body: "secure" });
    // An untrusted certificate, or one for another name, is not spoken to.
    await assert.rejects(
      () => postWebhook(request(url)),
      (e: unknown) => e instanceof DeliveryError && e.code === "tls",
    );
    await assert.rejects(
      () => postWebhook(request(`https://other.test:${s.port}/in`, { caCerts: [pem.ca] })),
      (e: unknown) => e instanceof DeliveryError && e.code === "tls",
    );
    assert.equal(s.requests.length, 1);
  } finally {
    await s.close();
  }
});
