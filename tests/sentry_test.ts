/**
 * Error tracking with the real `@sentry/deno` SDK against a local HTTP endpoint that receives
 * its envelopes: an injected failure arrives with the request id of the response, the error
 * code, the severity, the key id or user id and the response time, and no credential anywhere
 * in the bytes sent (not the key, not the token, not their SHA-256). The SDK talks to nothing
 * but loopback, and patches nothing global (`Deno.serve`, `fetch`, `console`).
 *
 * The pipeline runs in-process with services built from the test stack's environment plus a
 * DSN pointing at the local endpoint, so authentication is real (database, Redis).
 */
import assert from "node:assert/strict";
import { createHandler } from "../supabase/functions/_shared/http/pipeline.ts";
import { buildServices, type Isolate } from "../supabase/functions/_shared/services.ts";
import { ConfigError, parseConfig } from "../supabase/functions/_shared/config.ts";
import { scrubEvent } from "../supabase/functions/_shared/observability/sentry.ts";
import { closeDb, newKey, newUser } from "./_fixtures.ts";

type Json = Record<string, unknown>;

interface Envelope {
  raw: Uint8Array;
  header: Json;
  items: Array<{ header: Json; payload: Json }>;
}

/** A stand-in for Sentry's ingestion: stores every envelope it is sent. */
function startIngest() {
  const envelopes: Envelope[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    let bytes = new Uint8Array(await req.arrayBuffer());
    if (req.headers.get("content-encoding") === "gzip") {
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    const lines = new TextDecoder().decode(bytes).split("\n").filter((l) => l !== "");
    const items: Envelope["items"] = [];
    for (let i = 1; i + 1 < lines.length; i += 2) {
      items.push({ header: JSON.parse(lines[i]!), payload: JSON.parse(lines[i + 1]!) });
    }
    envelopes.push({ raw: bytes, header: JSON.parse(lines[0] ?? "{}"), items });
    return Response.json({ id: crypto.randomUUID() });
  });
  const { port } = server.addr as Deno.NetAddr;
  return { envelopes, server, dsn: `http://public@127.0.0.1:${port}/1` };
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A function whose every route fails with a message quoting the caller's credentials. */
function failingFunction(isolate: Isolate) {
  const boom = (ctx: { req: Request }): Promise<Response> => {
    const key = ctx.req.headers.get("x-api-key");
    const auth = ctx.req.headers.get("authorization");
    throw new Error(`database said no for ${key} (${auth}) token=${auth?.slice(7)}`);
  };
  const op = (id: string) => ({
    id,
    tag: "Probe",
    summary: "Fails",
    success: { status: 200, description: "never" },
  });
  return createHandler({
    name: "sentry-probe",
    spec: {
      gateway: [],
      routes: [
        { path: "/", auth: "api_key", methods: { GET: op("keyed") } },
        { path: "/me", auth: "jwt", methods: { GET: op("signedIn") } },
      ],
    },
    implementations: { keyed: boom, signedIn: boom },
    boot: isolate,
  });
}

const eventsOf = (envelopes: Envelope[]) =>
  envelopes.flatMap((e) => e.items.filter((i) => i.header.type === "event").map((i) => i.payload));

Deno.test("SENTRY_* settings are parsed, and a DSN must name a key and a project", () => {
  const base = {
    SUPABASE_URL: "http://127.0.0.1:54321",
    SUPABASE_DB_URL: "postgresql://postgres@127.0.0.1:5432/x",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
    UPSTASH_REDIS_REST_TOKEN: "0123456789abcdef0123",
  };
  assert.equal(parseConfig(base).sentry, undefined);
  assert.deepEqual(
    parseConfig({
      ...base,
      SENTRY_DSN: "https://abc@o1.ingest.sentry.io/42",
      SENTRY_RELEASE: "torvus@1.2.3",
      SENTRY_TRACES_SAMPLE_RATE: "0.25",
    }).sentry,
    {
      dsn: "https://abc@o1.ingest.sentry.io/42",
      environment: "production",
      release: "torvus@1.2.3",
      tracesSampleRate: 0.25,
    },
  );
  for (const bad of ["not a url", "https://o1.ingest.sentry.io/42", "https://abc@sentry.io/"]) {
    assert.throws(() => parseConfig({ ...base, SENTRY_DSN: bad }), ConfigError, bad);
  }
  assert.throws(
    () => parseConfig({ ...base, SENTRY_DSN: "https://a@b.io/1", SENTRY_TRACES_SAMPLE_RATE: "2" }),
    ConfigError,
  );
});

Deno.test("scrubEvent() drops headers, cookies and the client address and redacts strings", () => {
  const key = "sk_live_zGgF9rvG-NO7POa46KdHH2r_BcIvet4c8YmrYgLpXnc";
  const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
  const event = scrubEvent({
    message: `failed for ${key}`,
    request: {
      url: `https://api.example/x?key=${key}`,
      headers: { "x-api-key": key },
      cookies: { session: jwt },
      data: { token: jwt },
    },
    user: { id: "u", ip_address: "203.0.113.9" },
    breadcrumbs: [{ message: `Authorization: Bearer ${jwt}` }],
    extra: { nested: [{ deep: `Bearer opaque-token-123` }] },
  });
  const text = JSON.stringify(event);
  assert.equal(event.request?.headers, undefined);
  assert.equal(event.request?.cookies, undefined);
  assert.equal(event.user?.ip_address, undefined);
  for (const secret of [key, jwt, "opaque-token-123", "203.0.113.9"]) {
    assert.ok(!text.includes(secret), `${secret} is gone`);
  }
  assert.match(event.message ?? "", /sk_live_\[redacted\]/);
});

Deno.test({
  name: "an injected failure reaches Sentry with its context and without a credential",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const ingest = startIngest();
    // Every request anyone makes in this process during the test: Sentry, Redis, JWKS.
    const contacted: URL[] = [];
    const originalFetch = globalThis.fetch;
    const recording: typeof fetch = (input, init) => {
      contacted.push(new URL(input instanceof Request ? input.url : String(input)));
      return originalFetch(input, init);
    };
    globalThis.fetch = recording;
    const globals = {
      serve: Deno.serve,
      fetch: globalThis.fetch,
      log: console.log,
      error: console.error,
      toString: Function.prototype.toString,
    };
    let isolate: Isolate | undefined;
    let appServer: Deno.HttpServer | undefined;
    try {
      const env = { ...Deno.env.toObject(), SENTRY_DSN: ingest.dsn, SENTRY_RELEASE: "test" };
      isolate = buildServices(parseConfig(env));
      const services = isolate.services;
      const handler = failingFunction(isolate);
      const key = await newKey({ scopes: ["read"] });
      const user = await newUser();

      // An API-key route, called in-process, with both credentials in the request.
      const keyed = await handler(
        new Request("http://localhost/functions/v1/sentry-probe", {
          headers: {
            "X-API-Key": key.key,
            Authorization: `Bearer ${user.token}`,
            "X-Forwarded-For": "198.51.100.7",
          },
        }),
      );
      assert.equal(keyed.status, 500);
      assert.equal((await keyed.json()).code, "INTERNAL_ERROR");
      const keyedId = keyed.headers.get("x-request-id")!;

      // A JWT route, through a real Deno.serve: the SDK must not have broken serving.
      appServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
      const { port } = appServer.addr as Deno.NetAddr;
      const viaServe = await fetch(`http://127.0.0.1:${port}/functions/v1/sentry-probe/me`, {
        headers: { Authorization: `Bearer ${user.token}` },
      });
      assert.equal(viaServe.status, 500);
      assert.equal((await viaServe.json()).code, "INTERNAL_ERROR");
      const servedId = viaServe.headers.get("x-request-id")!;

      assert.equal(await services.reporter.flush(5000), true, "the SDK flushed");
      const events = eventsOf(ingest.envelopes);
      assert.equal(events.length, 2, `two events arrived: ${JSON.stringify(events)}`);
      const byRequest = new Map(events.map((e) => [(e.tags as Json).request_id, e]));
      const keyedEvent = byRequest.get(keyedId);
      const servedEvent = byRequest.get(servedId);

      await t.step("no credential, in any form, is in any byte sent", async () => {
        const raw = ingest.envelopes.map((e) => new TextDecoder().decode(e.raw)).join("\n");
        const secrets = {
          key: key.key,
          "key secret": key.key.slice("sk_test_".length),
          token: user.token,
          "token signature": user.token.split(".")[2]!,
          "key SHA-256": await sha256Hex(key.key),
          "token SHA-256": await sha256Hex(user.token),
          "client address": "198.51.100.7",
        };
        for (const [what, secret] of Object.entries(secrets)) {
          assert.ok(!raw.toLowerCase().includes(secret.toLowerCase()), `the ${what} was sent`);
        }
      });

      await t.step("only loopback is contacted and nothing global is patched", () => {
        const elsewhere = contacted.filter((u) => u.hostname !== "127.0.0.1");
        assert.deepEqual(elsewhere.map(String), [], "only loopback was contacted");
        const ingestPort = String((ingest.server.addr as Deno.NetAddr).port);
        assert.ok(contacted.some((u) => u.port === ingestPort), "envelopes went through fetch");
        assert.equal(Deno.serve, globals.serve, "Deno.serve is not patched");
        assert.equal(globalThis.fetch, globals.fetch, "fetch is not patched");
        assert.equal(console.log, globals.log, "console.log is not patched");
        assert.equal(console.error, globals.error, "console.error is not patched");
        assert.equal(Function.prototype.toString, globals.toString, "toString is not patched");
      });

      await t.step("the event carries request id, code, level, timing and the error", () => {
        assert.ok(keyedEvent, "the event carries the response's X-Request-ID");
        assert.equal(keyedEvent.level, "error");
        assert.equal(keyedEvent.environment, "production");
        assert.equal(keyedEvent.release, "test");
        const tags = keyedEvent.tags as Json;
        assert.equal(tags.request_id, keyedId);
        assert.equal(tags.code, "INTERNAL_ERROR");
        assert.equal(tags.level, "error");
        assert.equal(tags.function, "sentry-probe");
        assert.equal(tags.route, "/functions/v1/sentry-probe");
        assert.equal(tags.method, "GET");
        const api = (keyedEvent.contexts as Json).api as Json;
        assert.equal(typeof api.response_time_ms, "number");
        const exception = (keyedEvent.exception as { values: Json[] }).values[0]!;
        assert.equal(exception.type, "Error");
        assert.match(String(exception.value), /sk_test_\[redacted\]/, "the message is scrubbed");
        assert.ok(Array.isArray((exception.stacktrace as Json)?.frames), "with a stack trace");
      });

      await t.step("the caller's key id (never the key) and user id are tagged", () => {
        const tags = keyedEvent?.tags as Json;
        // The key authenticated before the handler failed.
        assert.equal(tags.key_id, key.id, "key_id of the authenticated key");
        assert.equal(tags.user_id, key.userId, "user_id of the key's owner");
        assert.ok(servedEvent, "the JWT route's event arrived");
        assert.equal((servedEvent.tags as Json).user_id, user.userId, "user_id of the user");
        assert.equal((servedEvent.tags as Json).key_id, undefined);
      });
    } finally {
      globalThis.fetch = originalFetch;
      await appServer?.shutdown();
      await isolate?.shutdown();
      await ingest.server.shutdown();
      await closeDb();
    }
  },
});
