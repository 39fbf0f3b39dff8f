import assert from "node:assert/strict";
import { type Health, healthFinding, REDIS_RTT_LIMIT_MS, regionFinding } from "./gateway.ts";
import type { Answer } from "./http.ts";

const settings = { base: "https://api.example.com", apiKey: undefined, region: "eu-west-2" };

function answer(status: number, json: Record<string, unknown>, headers: HeadersInit = {}): Answer {
  return { status, headers: new Headers(headers), text: JSON.stringify(json), json };
}

const healthy = (redisMs: number, region?: string) =>
  answer(200, {
    status: "ok",
    version: "0.1.0",
    checks: {
      database: { status: "ok", latency_ms: 2 },
      redis: { status: "ok", latency_ms: redisMs },
    },
  }, region === undefined ? {} : { "x-sb-edge-region": region });

Deno.test("health: an unavailable dependency is named with its fix", () => {
  const down = answer(503, {
    code: "DEPENDENCY_UNAVAILABLE",
    checks: {
      database: { status: "ok", latency_ms: 2 },
      redis: { status: "unavailable", latency_ms: 1000, error: "no answer within 1000 ms" },
    },
  });
  const finding = healthFinding(settings, { first: down, second: undefined });
  assert.equal(finding.status, "fail");
  if (finding.status !== "fail") return;
  assert.match(finding.summary, /unavailable: redis$/);
  assert.match(finding.cause, /cannot reach redis \(no answer within 1000 ms\)/);
  assert.match(finding.fix, /UPSTASH_REDIS_REST_URL/);
});

Deno.test("health: the gateway's secret and the functions' settings are told apart", () => {
  const secret = healthFinding(settings, {
    first: answer(403, { code: "GATEWAY_REQUIRED" }),
    second: undefined,
  });
  assert.ok(secret.status === "fail" && /TORVUS_GATEWAY_SECRET/.test(secret.cause));
  const config = healthFinding(settings, {
    first: answer(503, { code: "CONFIGURATION_INVALID" }),
    second: undefined,
  });
  assert.ok(config.status === "fail" && /settings are missing or invalid/.test(config.cause));
  const refused = healthFinding(settings, { error: new TypeError("Connection refused") });
  assert.ok(refused.status === "fail" && /connection refused/.test(refused.cause));
  const ok = healthFinding(settings, { first: healthy(1), second: healthy(1) });
  assert.equal(ok.status, "ok");
});

Deno.test("region: the functions must run where the definition pins them, near Redis", () => {
  const run = (h: Health, region = settings.region) => regionFinding({ ...settings, region }, h);
  assert.equal(run({ first: healthy(1), second: healthy(2, "eu-west-2") }).status, "ok");
  const elsewhere = run({ first: healthy(1), second: healthy(2, "ap-southeast-1") });
  assert.ok(
    elsewhere.status === "fail" && /ran in ap-southeast-1, not eu-west-2/.test(elsewhere.cause),
  );
  assert.ok(elsewhere.status === "fail" && /--region eu-west-2/.test(elsewhere.fix));
  // Far from Redis: the limiter's calls miss their deadline whatever the region says.
  const far = run({ first: healthy(1), second: healthy(REDIS_RTT_LIMIT_MS + 60, "eu-west-2") });
  assert.ok(far.status === "fail" && /limits are skipped/.test(far.cause));
  // Not on Supabase (no header): the round trips alone decide.
  const local = run({ first: healthy(1), second: healthy(2) }, undefined);
  assert.ok(local.status === "ok" && /region not reported/.test(local.summary));
  assert.equal(run({ first: healthy(1), second: undefined }).status, "skip");
});
