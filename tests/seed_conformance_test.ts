/**
 * The two seed pages, case by case, against the running API: `GET /api/v1/test` with its
 * success body, headers, every documented error body, 405, 429 and the tier limits (seed
 * 002), and the platform's JWT authentication with `GET /api/me`, `GET /api/vaults`, the
 * 401/403/419 bodies and the hourly rate-limit headers (seed 000). Also CORS preflights,
 * health, unknown paths, and calls through `supabase.functions.invoke` as an app makes them.
 */
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import {
  api,
  type ApiResponse,
  assertCommonHeaders,
  assertRateLimitHeaders,
  awayFromWindowEnd,
  BASE_URL,
  e2e,
} from "./_harness.ts";
import { closeDbLast, db, newKey, newTier, newUser } from "./_fixtures.ts";
import { AUTHENTICATED_ROUTES, fixtures, freshIp, trusted } from "./_matrix.ts";
import { setKeyExpiry, setKeyStatus } from "../tools/admin/ops.ts";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;
const ALL_SCOPES = ["read", "write", "delete"] as const;

/** The tiers as the seed lists them, with the migration's test-key limits (twice the live). */
const SEED_TIERS = [
  { name: "free", perMinute: 10, perDay: 1_000 },
  { name: "professional", perMinute: 60, perDay: 10_000 },
  { name: "enterprise", perMinute: 300, perDay: 100_000 },
] as const;

function assertIsoNow(value: unknown): void {
  assert.equal(typeof value, "string");
  assert.match(value as string, ISO_8601);
  const skew = Math.abs(Date.parse(value as string) - Date.now());
  assert.ok(skew < 10_000, `timestamp ${value} is now`);
}

/** Asserts a documented error body exactly: the seed's fields plus `request_id`. */
function assertBody(r: ApiResponse, status: number, fields: Record<string, unknown>): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.deepEqual(r.body, { ...fields, request_id: r.headers.get("x-request-id") });
  assertCommonHeaders(r);
}

// --- seed 002: GET /api/v1/test ------------------------------------------------------------------

e2e("seed 002: GET /api/v1/test answers 200 with the documented body and headers", async () => {
  const key = await newKey({ mode: "live", tier: "professional", name: "Production API Key" });
  const r = await api("/api/v1/test", { ip: freshIp(), headers: { "X-API-Key": key.key } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body).sort(), ["key_info", "message", "success", "timestamp"]);
  assert.equal(r.body.success, true);
  assert.equal(r.body.message, "Authentication successful");
  const [tier] = await db()<
    { id: string }[]
  >`select id from public.tiers where name = 'professional'`;
  assert.deepEqual(r.body.key_info, {
    key_id: key.id,
    key_name: "Production API Key",
    user_id: key.userId,
    tier_id: tier!.id,
    rate_limits: { requests_per_day: 10_000, requests_per_minute: 60 },
  });
  assert.match(r.body.key_info.key_id, ULID, "key_id is a ULID");
  assert.match(r.body.key_info.tier_id, ULID, "tier_id is a ULID");
  assertIsoNow(r.body.timestamp);
  // Response headers: X-Request-ID (UUID), X-Response-Time (ms), Content-Type.
  assert.match(r.headers.get("x-request-id") ?? "", UUID);
  assert.match(r.headers.get("x-response-time") ?? "", /^\d+(\.\d+)?$/);
  assert.equal(r.headers.get("content-type"), "application/json");
  assertCommonHeaders(r);
  assertRateLimitHeaders(r, 60);
  assert.equal(r.headers.get("x-ratelimit-remaining"), "59");
});

e2e("seed 002: keys are sk_live_ / sk_test_ followed by a base64url secret", async () => {
  const [live, test] = await Promise.all([newKey({ mode: "live" }), newKey({ mode: "test" })]);
  assert.match(live.key, /^sk_live_[A-Za-z0-9_-]{40,}$/);
  assert.match(test.key, /^sk_test_[A-Za-z0-9_-]{40,}$/);
  const ip = freshIp();
  for (const key of [live, test]) {
    const r = await api("/api/v1/test", { ip, headers: { "X-API-Key": key.key } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.key_info.key_id, key.id);
  }
});

/** Sends a request with header names exactly as given (fetch would normalise them). */
async function rawGet(path: string, headers: Array<[string, string]>): Promise<ApiResponse> {
  const url = new URL(BASE_URL);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port || 80) });
  try {
    const lines = [`GET ${path} HTTP/1.1`, `Host: ${url.host}`, "Connection: close"];
    for (const [name, value] of headers) lines.push(`${name}: ${value}`);
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16_384);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const raw = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const [head = "", text = ""] = raw.split("\r\n\r\n", 2);
    const [statusLine = "", ...headerLines] = head.split("\r\n");
    const result = new Headers();
    for (const line of headerLines) {
      const i = line.indexOf(":");
      result.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: Number(statusLine.split(" ")[1]), headers: result, text, body };
  } finally {
    try {
      conn.close();
    } catch {
      // already closed by the server
    }
  }
}

e2e("seed 002: the X-API-Key header name is case-insensitive on the wire", async () => {
  const key = await newKey({ mode: "test" });
  const ip = freshIp();
  for (const name of ["X-API-Key", "x-api-key", "X-API-KEY", "X-Api-Key"]) {
    const r = await rawGet("/api/v1/test", [[name, key.key], ["X-Forwarded-For", ip]]);
    assert.equal(r.status, 200, `${name}: ${r.text}`);
    assert.equal(r.body.key_info.key_id, key.id);
  }
});

e2e("seed 002: each documented 401 body, exactly", async () => {
  const ip = freshIp();
  const get = (key?: string) =>
    api("/api/v1/test", { ip, headers: key === undefined ? {} : { "X-API-Key": key } });
  const unauthorized = (message: string, code: string) => ({
    error: "unauthorized",
    message,
    code,
  });
  assertBody(await get(), 401, unauthorized("Missing X-API-Key header", "MISSING_API_KEY"));
  assertBody(
    await get("pk_live_zGgF9rvG-NO7POa46KdHH2r_BcIvet4c8YmrYgLpXnc"),
    401,
    unauthorized("Invalid API key format", "INVALID_API_KEY_FORMAT"),
  );
  // The seed's own example key: well documented, never issued.
  assertBody(
    await get("sk_live_zGgF9rvG-NO7POa46KdHH2r_BcIvet4c8YmrYgLpXnc"),
    401,
    unauthorized("Invalid API key", "INVALID_API_KEY"),
  );
  const keys = await Promise.all([1, 2, 3, 4].map(() => newKey({ mode: "live" })));
  const [revoked, suspended, expired, lapsed] = keys as [
    (typeof keys)[0],
    (typeof keys)[0],
    (typeof keys)[0],
    (typeof keys)[0],
  ];
  await setKeyStatus(db(), revoked.id, "revoked");
  await setKeyStatus(db(), suspended.id, "suspended");
  await setKeyStatus(db(), expired.id, "expired");
  await setKeyExpiry(db(), lapsed.id, new Date(Date.now() - 1000));
  for (
    const [key, status] of [[revoked, "revoked"], [suspended, "suspended"], [
      expired,
      "expired",
    ]] as const
  ) {
    assertBody(
      await get(key.key),
      401,
      unauthorized(`API key is ${status}`, "API_KEY_NOT_ACTIVE"),
    );
  }
  assertBody(await get(lapsed.key), 401, unauthorized("API key has expired", "API_KEY_EXPIRED"));
});

e2e("seed 002: POST, PUT, PATCH and DELETE answer 405 {error: Method not allowed}", async () => {
  const key = await newKey({ mode: "live" });
  const ip = freshIp();
  for (const path of ["/api/v1/test", "/functions/v1/v1-test"]) {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      for (const headers of [{}, { "X-API-Key": key.key }]) {
        const r = await api(path, { method, ip, headers });
        assertBody(r, 405, { error: "Method not allowed" });
        const allow = (r.headers.get("allow") ?? "").split(",").map((m) => m.trim());
        assert.ok(allow.includes("GET"), `Allow lists GET: ${allow}`);
        assert.ok(!allow.includes(method), `Allow does not list ${method}`);
      }
    }
  }
  // The same body on the JWT routes' missing methods.
  for (const [method, path] of [["PUT", "/api/me"], ["DELETE", "/api/vaults"]] as const) {
    const r = await api(path, { method, ip });
    assertBody(r, 405, { error: "Method not allowed" });
  }
});

e2e("seed 002: 429 body, Retry-After equal to retry_after, X-RateLimit-Remaining 0", async () => {
  const tier = await newTier(2, 1000);
  const key = await newKey({ mode: "live", tier });
  const ip = freshIp();
  const get = () => api("/api/v1/test", { ip, headers: { "X-API-Key": key.key } });
  assert.equal((await get()).status, 200);
  assert.equal((await get()).status, 200);
  const r = await get();
  assert.equal(r.status, 429, r.text);
  const n = r.body.retry_after;
  assert.ok(Number.isInteger(n) && n >= 1 && n <= 60, `retry_after ${n} in [1, 60]`);
  assertBody(r, 429, {
    error: "rate_limit_exceeded",
    message: `Rate limit exceeded. Try again in ${n} seconds.`,
    code: "RATE_LIMIT_EXCEEDED",
    retry_after: n,
  });
  assert.equal(r.headers.get("retry-after"), String(n));
  assert.equal(r.headers.get("x-ratelimit-limit"), "2");
  assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
  assertRateLimitHeaders(r, 2);
});

e2e(
  "seed 002: tier limits in key_info: Free 10/1,000, Professional 60/10,000, Enterprise 300/100,000; test keys twice",
  async () => {
    const tiers = await db()<{ id: string; name: string }[]>`
    select id, name from public.tiers where name in ('free', 'professional', 'enterprise')`;
    const ip = freshIp();
    for (const t of SEED_TIERS) {
      for (const mode of ["live", "test"] as const) {
        const key = await newKey({ mode, tier: t.name });
        const r = await api("/api/v1/test", { ip, headers: { "X-API-Key": key.key } });
        assert.equal(r.status, 200, r.text);
        const factor = mode === "test" ? 2 : 1;
        assert.deepEqual(r.body.key_info.rate_limits, {
          requests_per_day: t.perDay * factor,
          requests_per_minute: t.perMinute * factor,
        }, `${t.name} ${mode}`);
        assert.equal(r.body.key_info.tier_id, tiers.find((x) => x.name === t.name)?.id);
        // A fresh key: the minute window is the tighter, and the headers report it.
        assert.equal(r.headers.get("x-ratelimit-limit"), String(t.perMinute * factor));
        assert.equal(r.headers.get("x-ratelimit-remaining"), String(t.perMinute * factor - 1));
      }
    }
  },
);

e2e("seed 002: live and test keys of one owner never see each other's vaults", async () => {
  const owner = `modes-${crypto.randomUUID()}@test.local`;
  const scopes = [...ALL_SCOPES];
  const live = await newKey({ email: owner, mode: "live", scopes });
  const test = await newKey({ email: owner, mode: "test", scopes });
  const user = await newUser(3600, owner);
  assert.equal(user.userId, live.userId);
  const ip = freshIp();
  const create = (key: string, name: string) =>
    api("/api/v1/vaults", {
      method: "POST",
      ip,
      headers: { "X-API-Key": key, "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
  const liveVault = await create(live.key, "live vault");
  const testVault = await create(test.key, "test vault");
  assert.equal(liveVault.status, 201, liveVault.text);
  assert.equal(testVault.status, 201, testVault.text);
  assert.equal(liveVault.body.mode, "live");
  assert.equal(testVault.body.mode, "test");
  const ids = async (headers: Record<string, string>, path: string) => {
    const r = await api(path, { ip, headers });
    assert.equal(r.status, 200, r.text);
    return r.body.data.map((v: { id: string }) => v.id);
  };
  assert.deepEqual(await ids({ "X-API-Key": live.key }, "/api/v1/vaults"), [liveVault.body.id]);
  assert.deepEqual(await ids({ "X-API-Key": test.key }, "/api/v1/vaults"), [testVault.body.id]);
  // The user's own JWT acts in live mode.
  assert.deepEqual(
    await ids({ authorization: `Bearer ${user.token}` }, "/api/vaults"),
    [liveVault.body.id],
  );
  const cross = await api(`/api/v1/vaults/${testVault.body.id}`, {
    ip,
    headers: { "X-API-Key": live.key },
  });
  assert.equal(cross.status, 404, cross.text);
});

// --- seed 002: 500 -------------------------------------------------------------------------------
// An unexpected error's 500 is tested in-process (nothing reachable over HTTP fails on purpose):
// supabase/functions/_shared/http/pipeline_test.ts.

e2e("seed 000: GET /api/me answers 200 {id, email, created_at}", async () => {
  const user = await newUser();
  const r = await api("/api/me", {
    ip: freshIp(),
    headers: { Authorization: `Bearer ${user.token}`, "Content-Type": "application/json" },
  });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body).sort(), ["created_at", "email", "id"]);
  assert.equal(r.body.id, user.userId);
  assert.match(r.body.id, UUID);
  assert.equal(r.body.email, user.email);
  assert.match(r.body.created_at, ISO_8601);
  assert.equal(r.headers.get("content-type"), "application/json");
  assertCommonHeaders(r);
});

e2e("seed 000: GET /api/vaults with a token lists the user's vaults", async () => {
  const user = await newUser();
  const ip = freshIp();
  const headers = { Authorization: `Bearer ${user.token}`, "Content-Type": "application/json" };
  const empty = await api("/api/vaults", { ip, headers });
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual(empty.body, { data: [], pagination: { limit: 20, offset: 0, total: 0 } });
  const created = await api("/api/vaults", {
    method: "POST",
    ip,
    headers,
    body: JSON.stringify({ name: "ciphertext-name", tags: ["a"] }),
  });
  assert.equal(created.status, 201, created.text);
  const listed = await api("/api/vaults", { ip, headers });
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(listed.body.data.map((v: { id: string }) => v.id), [created.body.id]);
});

const UNAUTHORIZED = {
  error: "Unauthorized",
  message: "Invalid or missing authentication token",
  statusCode: 401,
};

e2e(
  "seed 000: 401 {error: Unauthorized, message, statusCode: 401} for a missing or invalid token",
  async () => {
    const f = await fixtures();
    const ip = freshIp();
    for (const path of ["/api/me", "/api/vaults"]) {
      const missing = await api(path, { ip });
      assertBody(missing, 401, { ...UNAUTHORIZED, code: "MISSING_AUTH_TOKEN" });
      assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="torvus"');
      const token = await trusted(f);
      const invalid = await api(path, { ip, headers: { Authorization: `Bearer ${token}x` } });
      assertBody(invalid, 401, { ...UNAUTHORIZED, code: "INVALID_AUTH_TOKEN" });
      assert.match(invalid.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
    }
  },
);

e2e("seed 000: 419 Token Expired for an expired token", async () => {
  const user = await newUser(-60);
  const r = await api("/api/me", {
    ip: freshIp(),
    headers: { Authorization: `Bearer ${user.token}` },
  });
  assertBody(r, 419, {
    error: "Token Expired",
    message: "JWT token has expired, refresh required",
    statusCode: 419,
    code: "TOKEN_EXPIRED",
  });
  assert.match(r.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
});

e2e("seed 000: 403 Forbidden for a valid token without the permission", async () => {
  const f = await fixtures();
  const r = await api("/api/vaults", {
    ip: freshIp(),
    headers: { Authorization: `Bearer ${await trusted(f, { role: "anon" })}` },
  });
  assertBody(r, 403, {
    error: "Forbidden",
    message: "Valid token but insufficient permissions",
    statusCode: 403,
    code: "FORBIDDEN",
  });
  assert.match(r.headers.get("www-authenticate") ?? "", /error="insufficient_scope"/);
});

e2e(
  "seed 000: X-RateLimit-* count down: 1000/hour for a user, 100/hour unauthenticated",
  async () => {
    await awayFromWindowEnd(3600, 10);
    const user = await newUser();
    const ip = freshIp();
    for (let i = 1; i <= 3; i++) {
      const r = await api("/api/me", { ip, headers: { Authorization: `Bearer ${user.token}` } });
      assert.equal(r.status, 200, r.text);
      assertRateLimitHeaders(r, 1000);
      assert.equal(r.headers.get("x-ratelimit-remaining"), String(1000 - i));
    }
    // Unauthenticated API calls: a request without credentials is refused and counted.
    for (let i = 1; i <= 3; i++) {
      const r = await api("/api/vaults", { ip });
      assert.equal(r.status, 401, r.text);
      assertRateLimitHeaders(r, 100);
      assert.equal(r.headers.get("x-ratelimit-remaining"), String(100 - i));
      const reset = Number(r.headers.get("x-ratelimit-reset"));
      assert.ok(reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 3601, "epoch seconds");
    }
  },
);

// --- CORS, health, 404 ---------------------------------------------------------------------------

e2e(
  "CORS: OPTIONS preflight on every route is 204 without credentials and not counted",
  async () => {
    await awayFromWindowEnd(3600, 10);
    const ip = freshIp();
    const before = await api("/api/vaults", { ip });
    assert.equal(before.headers.get("x-ratelimit-remaining"), "99");
    const routes = [
      { method: "GET", path: "/api/v1/health" },
      ...AUTHENTICATED_ROUTES,
    ];
    for (const route of routes) {
      const r = await api(route.path, {
        method: "OPTIONS",
        ip,
        headers: {
          Origin: "https://app.example.com",
          "Access-Control-Request-Method": route.method,
          "Access-Control-Request-Headers": "authorization, x-api-key, content-type",
        },
      });
      const where = `OPTIONS ${route.path}`;
      assert.equal(r.status, 204, `${where}: ${r.text}`);
      assert.equal(r.text, "");
      assert.equal(r.headers.get("access-control-allow-origin"), "*", where);
      const methods = (r.headers.get("access-control-allow-methods") ?? "").split(", ");
      assert.ok(methods.includes(route.method), `${where} allows ${route.method}: ${methods}`);
      const allowed = (r.headers.get("access-control-allow-headers") ?? "").toLowerCase();
      for (const h of ["authorization", "x-api-key", "content-type"]) {
        assert.ok(allowed.includes(h), `${where} allows header ${h}`);
      }
      assert.match(r.headers.get("x-request-id") ?? "", UUID);
      assert.equal(r.headers.get("x-ratelimit-remaining"), null, `${where} is not counted`);
    }
    const after = await api("/api/vaults", { ip });
    assert.equal(after.headers.get("x-ratelimit-remaining"), "98", "preflights were not counted");
  },
);

e2e("GET /api/v1/health answers 200 with its checks, without credentials", async () => {
  const r = await api("/api/v1/health", { ip: freshIp() });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, "ok");
  assert.equal(typeof r.body.version, "string");
  assertIsoNow(r.body.timestamp);
  assertIsoNow(r.body.checked_at);
  for (const name of ["database", "redis"]) {
    assert.equal(r.body.checks?.[name]?.status, "ok", `${name} check`);
    assert.equal(typeof r.body.checks[name].latency_ms, "number");
  }
  assertCommonHeaders(r);
  // Monitors poll it: never rate limited, so no rate-limit headers.
  assert.equal(r.headers.get("x-ratelimit-limit"), null);
});

e2e(
  "an unknown path is the gateway's JSON 404 with X-Request-ID, counted against nothing",
  async () => {
    const ip = freshIp();
    for (const path of ["/api/nope", "/api/v2/test", "/functions/v1/nope", "/"]) {
      const r = await api(path, { ip });
      assertBody(r, 404, { error: "not_found", message: "Route not found", code: "NOT_FOUND" });
      assertCommonHeaders(r);
      assert.equal(r.headers.get("x-ratelimit-limit"), null, `${path}: no function, no limit`);
    }
  },
);

e2e("an unknown path inside a function is its JSON 404, counted against the address", async () => {
  const ip = freshIp();
  for (const path of ["/api/keys/a/b/c", "/api/vaults/a/b", "/functions/v1/me/nope"]) {
    const r = await api(path, { ip });
    assertBody(r, 404, { error: "not_found", message: "Route not found", code: "NOT_FOUND" });
    assertRateLimitHeaders(r, 100);
  }
});

// --- supabase-js ---------------------------------------------------------------------------------

e2e("supabase.functions.invoke reaches v1-test with an API key and me with a token", async () => {
  const url = Deno.env.get("SUPABASE_URL");
  assert.ok(url, "SUPABASE_URL is set");
  const supabase = createClient(url, "local-anon-key-not-a-secret", {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const ip = freshIp();
  const key = await newKey({ mode: "test" });
  const user = await newUser();

  const tested = await supabase.functions.invoke("v1-test", {
    method: "GET",
    headers: { "X-API-Key": key.key, "X-Forwarded-For": ip },
  });
  assert.equal(tested.error, null, String(tested.error));
  assert.equal(tested.data.success, true);
  assert.equal(tested.data.key_info.key_id, key.id);

  const me = await supabase.functions.invoke("me", {
    method: "GET",
    headers: { Authorization: `Bearer ${user.token}`, "X-Forwarded-For": ip },
  });
  assert.equal(me.error, null, String(me.error));
  assert.equal(me.data.id, user.userId);
  assert.equal(me.data.email, user.email);

  const refused = await supabase.functions.invoke("v1-test", {
    method: "GET",
    headers: { "X-Forwarded-For": ip },
  });
  const context = (refused.error as { context?: Response } | null)?.context;
  assert.ok(context instanceof Response, "a FunctionsHttpError with the response");
  assert.equal(context.status, 401);
  assert.equal((await context.json()).code, "MISSING_API_KEY");
});

closeDbLast("seed conformance");
