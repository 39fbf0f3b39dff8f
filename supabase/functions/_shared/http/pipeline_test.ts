import assert from "node:assert/strict";
import { createHandler, type Handler } from "./pipeline.ts";
import { MANIFEST } from "../manifest.ts";
import { operations as v1Test } from "../../v1-test/handler.ts";
import { operations as openapi } from "../../openapi/handler.ts";
import { fakeServices, storedKey } from "../testing/fakes.ts";
import { generateApiKey } from "../auth/key_format.ts";
import { ApiError } from "../errors.ts";
import { ConfigError } from "../config.ts";
import type { AnyHandler } from "./spec.ts";
import { probeHandler } from "../testing/run_case.ts";
import { setLogSink } from "../log.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
type Fake = Awaited<ReturnType<typeof fakeServices>>;

function v1TestHandler(f: Fake): Handler {
  return createHandler({
    name: "v1-test",
    spec: MANIFEST["v1-test"],
    implementations: v1Test as unknown as Record<string, AnyHandler>,
    boot: { services: f.services, shutdown: () => Promise.resolve() },
  });
}

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  new Request(`http://localhost/functions/v1${path}`, { method, headers });

function withKey(f: Fake, overrides: Parameters<typeof storedKey>[0] = {}) {
  const { key } = generateApiKey("test");
  f.store.add(key, storedKey(overrides));
  return key;
}

function quiet<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const previous = setLogSink((line) => lines.push(line));
  return fn().then((value) => ({ value, lines })).finally(() => setLogSink(previous));
}

Deno.test("pipeline: a valid key reaches its handler; every answer carries the common headers", async () => {
  const f = await fakeServices();
  const key = await withKey(f);
  const r = await v1TestHandler(f)(get("/v1-test", { "x-api-key": key }));
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.key_info.key_id, storedKey().id);
  assert.equal(body.timestamp, new Date(f.clock.now()).toISOString(), "the service clock");
  assert.match(r.headers.get("x-request-id") ?? "", UUID);
  assert.match(r.headers.get("x-response-time") ?? "", /^\d+\.\d\d$/);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  // The tightest window of a key: its minute (20 for a free test key), one used.
  assert.equal(r.headers.get("x-ratelimit-limit"), "20");
  assert.equal(r.headers.get("x-ratelimit-remaining"), "19");
  assert.equal(f.recorded.audit.length, 1);
  assert.equal(f.recorded.audit[0]!.keyId, storedKey().id);
});

Deno.test("pipeline: a missing key is 401 MISSING_API_KEY, counted against the address", async () => {
  const f = await fakeServices();
  const r = await v1TestHandler(f)(get("/v1-test"));
  assert.equal(r.status, 401);
  const body = await r.json();
  assert.deepEqual(body, {
    error: "unauthorized",
    message: "Missing X-API-Key header",
    code: "MISSING_API_KEY",
    request_id: r.headers.get("x-request-id"),
  });
  assert.equal(r.headers.get("www-authenticate"), 'ApiKey realm="torvus", header="X-API-Key"');
  assert.equal(r.headers.get("x-ratelimit-limit"), "100");
  assert.equal(r.headers.get("x-ratelimit-remaining"), "99");
});

Deno.test("pipeline: an unknown route is a counted 404, a missing method a 405 with Allow", async () => {
  const f = await fakeServices();
  const handler = v1TestHandler(f);
  const missing = await handler(get("/v1-test/nope"));
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).message, "Route not found");
  assert.equal(missing.headers.get("x-ratelimit-remaining"), "99");
  // A method named like an Object.prototype member is no operation either.
  for (const method of ["POST", "PUT", "constructor", "toString"]) {
    const r = await handler(get("/v1-test", {}, method));
    assert.equal(r.status, 405, method);
    assert.deepEqual(Object.keys(await r.json()).sort(), ["error", "request_id"]);
    assert.equal(r.headers.get("allow"), "GET, OPTIONS");
  }
});

Deno.test("pipeline: OPTIONS is answered without credentials and counted against nothing", async () => {
  const f = await fakeServices();
  const r = await v1TestHandler(f)(get("/v1-test", { origin: "https://app.example" }, "OPTIONS"));
  assert.equal(r.status, 204);
  assert.equal(r.headers.get("access-control-allow-methods"), "GET, OPTIONS");
  assert.equal(r.headers.get("x-ratelimit-limit"), null);
  assert.equal(f.limiter.counts.size, 0);
  assert.equal(f.recorded.audit.length, 0, "preflights are not request-log rows");
});

Deno.test("pipeline: over the key's minute, 429 with Retry-After equal to retry_after", async () => {
  const f = await fakeServices();
  const key = await withKey(f, { perMinute: 2 });
  const handler = v1TestHandler(f);
  for (let i = 0; i < 2; i++) {
    assert.equal((await handler(get("/v1-test", { "x-api-key": key }))).status, 200);
  }
  const r = await handler(get("/v1-test", { "x-api-key": key }));
  assert.equal(r.status, 429);
  const body = await r.json();
  assert.equal(body.code, "RATE_LIMIT_EXCEEDED");
  assert.equal(String(body.retry_after), r.headers.get("retry-after"));
  assert.equal(body.message, `Rate limit exceeded. Try again in ${body.retry_after} seconds.`);
  assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
  assert.equal(f.recorded.webhooks.limited.length, 1, "the refusal raises rate_limit.exceeded");
  assert.equal(f.recorded.webhooks.limited[0]!.window, "minute");
});

Deno.test("pipeline: with fail mode closed, an unreachable limiter is 503", async () => {
  const f = await fakeServices({ env: { TORVUS_RATELIMIT_FAIL_MODE: "closed" } });
  f.limiter.degraded = true;
  const key = await withKey(f);
  const r = await v1TestHandler(f)(get("/v1-test", { "x-api-key": key }));
  assert.equal(r.status, 503);
  assert.equal((await r.json()).code, "SERVICE_UNAVAILABLE");
  assert.equal(r.headers.get("retry-after"), "1");
});

Deno.test("pipeline: with fail mode open, an unreachable limiter lets the request through", async () => {
  const f = await fakeServices();
  f.limiter.degraded = true;
  const key = await withKey(f);
  const r = await v1TestHandler(f)(get("/v1-test", { "x-api-key": key }));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-ratelimit-remaining"), "20", "the full limit is reported");
});

Deno.test("pipeline: a key store outage is 503 SERVICE_UNAVAILABLE, not 401", async () => {
  const f = await fakeServices();
  const key = await withKey(f);
  f.store.failing = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  const { value: r } = await quiet(() => v1TestHandler(f)(get("/v1-test", { "x-api-key": key })));
  assert.equal(r.status, 503);
  assert.equal((await r.json()).code, "SERVICE_UNAVAILABLE");
});

Deno.test("pipeline: a direct request where only the gateway may call is 403, with no I/O", async () => {
  const secret = "g".repeat(40);
  const f = await fakeServices({ env: { TORVUS_GATEWAY_SECRET: secret } });
  const handler = v1TestHandler(f);
  const r = await handler(get("/v1-test", { "x-forwarded-for": "198.51.100.7" }));
  assert.equal(r.status, 403);
  assert.equal((await r.json()).code, "GATEWAY_REQUIRED");
  assert.equal(r.headers.get("x-ratelimit-limit"), null);
  assert.equal(f.limiter.counts.size, 0, "nothing was counted");
  assert.equal(f.recorded.audit.length, 0, "nothing was written");
  const viaGateway = await handler(get("/v1-test", {
    "x-torvus-gateway-secret": secret,
    "x-torvus-client-ip": "198.51.100.7",
  }));
  assert.equal(viaGateway.status, 401, "the gateway's request goes on to authentication");
  assert.equal(f.recorded.audit[0]!.ip, "198.51.100.7");
});

Deno.test("pipeline: an invalid configuration answers every request 503 CONFIGURATION_INVALID", async () => {
  const handler = createHandler({
    name: "v1-test",
    spec: MANIFEST["v1-test"],
    implementations: v1Test as unknown as Record<string, AnyHandler>,
    boot: new ConfigError("Invalid configuration: UPSTASH_REDIS_REST_URL: Required"),
  });
  const r = await handler(get("/v1-test"));
  assert.equal(r.status, 503);
  const body = await r.json();
  assert.equal(body.code, "CONFIGURATION_INVALID");
  assert.equal(body.request_id, r.headers.get("x-request-id"));
  assert.ok(!JSON.stringify(body).includes("UPSTASH"), "the problem stays in the log");
});

Deno.test("pipeline: an unexpected error is a logged 500 saying nothing of its cause", async () => {
  const f = await fakeServices();
  const { key } = generateApiKey("live");
  const handler = probeHandler(
    f.services,
    () => Promise.reject(new Error(`upstream refused ${key} hash ${"ab".repeat(32)}`)),
  );
  const { value: r, lines } = await quiet(() => handler(get("/probe", { "x-forwarded-for": "a" })));
  assert.equal(r.status, 500);
  const text = await r.text();
  assert.deepEqual(JSON.parse(text), {
    error: "internal_error",
    message: "An unexpected error occurred",
    code: "INTERNAL_ERROR",
    request_id: r.headers.get("x-request-id"),
  });
  assert.ok(!text.includes("upstream"), "the error's message stays out of the body");
  // A failure after the rate limit still says where the caller stands.
  assert.equal(r.headers.get("x-ratelimit-limit"), "100");
  const entries = lines.map((l) => JSON.parse(l));
  const error = entries.find((e) => e.msg === "unhandled error");
  assert.ok(error, lines.join("\n"));
  assert.equal(error.request_id, r.headers.get("x-request-id"));
  assert.match(error.err.message, /^upstream refused sk_live_\[redacted\] hash \[redacted-hash\]/);
  assert.ok(!lines.join("\n").includes(key.slice(8)), "no key in any log line");
  assert.equal(f.recorded.reports.length, 1, "reported once");
  assert.equal(f.recorded.reports[0]!.context.code, "INTERNAL_ERROR");
  assert.equal(f.recorded.audit[0]!.status, 500);
});

Deno.test("pipeline: an ApiError a handler throws is its catalogued answer, without an error line", async () => {
  const f = await fakeServices();
  const handler = probeHandler(
    f.services,
    () => Promise.reject(new ApiError("NOT_FOUND", { message: "Vault not found" })),
  );
  const { value: r, lines } = await quiet(() => handler(get("/probe")));
  assert.equal(r.status, 404);
  assert.equal((await r.json()).message, "Vault not found");
  assert.ok(lines.every((l) => !l.includes('"level":"error"')), lines.join("\n"));
  assert.equal(f.recorded.reports.length, 0);
});

Deno.test("pipeline: JWT routes add statusCode to every error body", async () => {
  const f = await fakeServices();
  const handler = probeHandler(f.services, () => new Response("never"), "jwt");
  const r = await handler(get("/probe"));
  assert.equal(r.status, 401);
  const body = await r.json();
  assert.equal(body.statusCode, 401);
  assert.equal(body.code, "MISSING_AUTH_TOKEN");
  assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="torvus"');
});

Deno.test("pipeline: the reference is never rate limited, whatever the address has spent", async () => {
  const f = await fakeServices();
  const handler = createHandler({
    name: "openapi",
    spec: MANIFEST.openapi,
    implementations: openapi as unknown as Record<string, AnyHandler>,
    boot: { services: f.services, shutdown: () => Promise.resolve() },
  });
  for (let i = 0; i < 150; i++) {
    const r = await handler(get("/openapi"));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-ratelimit-limit"), null);
    await r.body?.cancel();
  }
  assert.equal(f.limiter.counts.size, 0);
  const post = await handler(get("/openapi", {}, "POST"));
  assert.equal(post.status, 405, "a missing method is not counted either");
  assert.equal(f.limiter.counts.size, 0);
});

Deno.test("pipeline: a function refuses to start with an operation it does not implement", async () => {
  const f = await fakeServices();
  assert.throws(
    () =>
      createHandler({
        name: "v1-test",
        spec: MANIFEST["v1-test"],
        implementations: {},
        boot: { services: f.services, shutdown: () => Promise.resolve() },
      }),
    /operation "testApiKey" has no implementation/,
  );
});
