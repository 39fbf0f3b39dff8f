/**
 * The doctor's checks through the gateway's public URL, as a client sees the API:
 *
 * - health: `GET /api/v1/health` is 200 with the database and Redis `ok` as the functions see
 *   them;
 * - region and round trips: where the functions ran (the platform's `x-sb-edge-region` answer
 *   header) and their round trip to Redis and the database (the health check's latencies, on a
 *   warm connection);
 * - routing: paths outside the public table are refused by the gateway, never forwarded;
 * - client addresses: a forged `X-Forwarded-For` or `X-Real-IP` does not become the client's
 *   address. No route echoes the address, but the per-address limit shows it: unauthenticated
 *   requests count against the client's address and answer `X-RateLimit-Remaining`, so requests
 *   that each forge another address must still drain one bucket;
 * - a test key's round trip: `GET /api/v1/test` is 200 with the documented headers.
 *
 * @module
 */
import { type Answer, codeOf, get, numericHeader, unreachable } from "./http.ts";
import { type Check, fail, type Finding, ok, skip } from "./report.ts";
import { FUNCTION_REGIONS } from "../gateway_export.ts";

/** What the doctor reads from the environment for these checks. */
export interface GatewaySettings {
  base: string;
  /** An API key of this deployment (TORVUS_DOCTOR_API_KEY). */
  apiKey: string | undefined;
  /** The region the functions should run in (TORVUS_FUNCTIONS_REGION). */
  region: string | undefined;
  /** The Supabase project's URL (SUPABASE_URL), where Auth and the Data API answer by design. */
  supabaseUrl?: string | undefined;
}

/**
 * A Redis round trip from the functions at or above this leaves too little of the limiter's call
 * deadline (300 ms) for opening a connection (TCP, TLS, request): issue 21 measured the limits
 * switching off at 160 ms over plain HTTP, sooner over TLS.
 */
export const REDIS_RTT_LIMIT_MS = 100;

/** Paths a gateway must refuse: function names, Supabase's own APIs, near misses. */
export const UNLISTED_PATHS = [
  "/health",
  "/v1-test",
  "/rest/v1/",
  "/auth/v1/settings",
  "/api/v1/healthz",
  "/torvus-api/api/v1/health",
] as const;

/** How the checks share the two health answers. */
export type Health = { first: Answer; second: Answer | undefined } | { error: unknown };

/** The gateway checks, in the order they print. */
export function gatewayChecks(s: GatewaySettings): Check[] {
  let health: Promise<Health> | undefined;
  const probe = () => health ??= probeHealth(s.base);
  /** A check that needs the gateway to answer at all: skipped when health got no answer. */
  const answering = (run: () => Promise<Finding>) => async () =>
    "error" in await probe() ? skip("the gateway did not answer (see health)") : await run();
  return [
    { name: "health", run: async () => healthFinding(s, await probe()) },
    { name: "functions region", run: async () => regionFinding(s, await probe()) },
    { name: "routing", run: answering(() => routingFinding(s.base, s.supabaseUrl)) },
    { name: "client addresses", run: answering(() => forgedAddressFinding(s.base)) },
    { name: "test key", run: answering(() => testKeyFinding(s)) },
  ];
}

/** Two health answers a second apart: the second on warm connections (the probe is reused 1 s). */
async function probeHealth(base: string): Promise<Health> {
  try {
    const first = await get(`${base}/api/v1/health`);
    if (first.status !== 200) return { first, second: undefined };
    await new Promise((r) => setTimeout(r, 1100));
    return { first, second: await get(`${base}/api/v1/health`) };
  } catch (error) {
    return { error };
  }
}

interface DependencyCheck {
  status?: string;
  latency_ms?: number;
  error?: string;
}

const dependencies = (a: Answer) =>
  (a.json?.checks ?? {}) as { database?: DependencyCheck; redis?: DependencyCheck };

const FIXES: Record<string, string> = {
  database: "check TORVUS_DB_URL (the transaction pooler's URL) and TORVUS_DB_CA_CERT in the " +
    "functions' secrets; the database checks below show the TLS chain and pool mode",
  redis: "check UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN in the functions' secrets " +
    "(the REST URL and token, not redis://); the Redis check below tries them from here",
};

/** What the health answers say of the dependencies. */
export function healthFinding(s: GatewaySettings, h: Health): Finding {
  const url = `${s.base}/api/v1/health`;
  if ("error" in h) {
    const { cause, fix } = unreachable("the gateway", url, h.error);
    return fail("no answer", cause, fix);
  }
  const a = h.first;
  const code = codeOf(a);
  if (a.status === 200) {
    const d = dependencies(h.second ?? a);
    return ok(
      `200, database ${d.database?.status} and redis ${d.redis?.status} (version ${a.json?.version})`,
    );
  }
  if (code === "DEPENDENCY_UNAVAILABLE") {
    const d = dependencies(a);
    const failed = (["database", "redis"] as const).filter((n) => d[n]?.status !== "ok");
    return fail(
      `${a.status}, unavailable: ${failed.join(", ")}`,
      failed.map((n) => `the functions cannot reach ${n} (${d[n]?.error ?? "unknown"})`).join("; "),
      failed.map((n) => FIXES[n]).join("; "),
    );
  }
  if (code === "CONFIGURATION_INVALID") {
    return fail(
      `${a.status} CONFIGURATION_INVALID`,
      "the functions' settings are missing or invalid",
      "the function's log names the setting (never its value): Dashboard → Edge Functions → " +
        "health → Logs; fix it with `supabase secrets set`",
    );
  }
  if (code === "GATEWAY_REQUIRED") {
    return fail(
      `${a.status} GATEWAY_REQUIRED`,
      "the functions did not receive the gateway's secret: the gateway's " +
        "TORVUS_GATEWAY_SECRET is unset or differs from the functions'",
      "set the same TORVUS_GATEWAY_SECRET in the gateway's environment and the functions' " +
        "secrets, then reload the gateway",
    );
  }
  return fail(
    `${a.status}${code ? ` ${code}` : ""}`,
    `GET /api/v1/health answered ${a.status}, not 200: ${a.text.slice(0, 200)}`,
    "the URL must be the gateway's, with the exported Tyk definition imported " +
      "(supabase/gateway/README.md)",
  );
}

/** Where the functions ran, and their round trips to Redis and the database. */
export function regionFinding(s: GatewaySettings, h: Health): Finding {
  if ("error" in h || h.second === undefined) return skip("health did not answer 200");
  const a = h.second;
  const ran = a.headers.get("x-sb-edge-region");
  const d = dependencies(a);
  const redisMs = d.redis?.latency_ms;
  const dbMs = d.database?.latency_ms;
  const where = ran === null
    ? "region not reported (no x-sb-edge-region: not Supabase's hosted runtime)"
    : `ran in ${ran}`;
  const summary = `${where}; from the functions: redis ${redisMs} ms, database ${dbMs} ms`;
  if (s.region !== undefined && ran !== null && ran !== s.region) {
    return fail(
      summary,
      `the functions ran in ${ran}, not ${s.region} (TORVUS_FUNCTIONS_REGION)`,
      `import the Tyk definition exported with --region ${s.region} (it sends X-Region); ` +
        "see docs/DEPLOY.md, one region",
    );
  }
  if (redisMs !== undefined && redisMs >= REDIS_RTT_LIMIT_MS) {
    return fail(
      summary,
      `a Redis round trip from the functions takes ${redisMs} ms: rate-limit calls that must ` +
        "open a connection miss their 300 ms deadline, and limits are skipped",
      "run the functions, Upstash and the database in one region: gateway:export --region " +
        `(one of ${FUNCTION_REGIONS.join(", ")}) and an Upstash database there (docs/DEPLOY.md)`,
    );
  }
  return ok(summary);
}

/** Paths of Supabase's own APIs among {@link UNLISTED_PATHS}. */
const SUPABASE_PATHS = ["/rest/v1/", "/auth/v1/"];

async function routingFinding(base: string, supabaseUrl?: string): Promise<Finding> {
  const forwarded: string[] = [];
  const seen: string[] = [];
  // Pointed at the project's own URL (the local dev server is both), Supabase's APIs answer
  // there by design: only a gateway in front of it must refuse them.
  const project = supabaseUrl !== undefined && new URL(base).origin === new URL(supabaseUrl).origin;
  const paths = UNLISTED_PATHS.filter((p) =>
    !project || !SUPABASE_PATHS.some((s) => p.startsWith(s))
  );
  for (const path of paths) {
    const a = await get(`${base}${path}`);
    seen.push(`${path} → ${a.status}${codeOf(a) ? ` ${codeOf(a)}` : ""}`);
    const refused = (a.status === 403 || a.status === 404) && codeOf(a) === "NOT_FOUND";
    if (!refused) forwarded.push(`${path} (${a.status})`);
  }
  if (forwarded.length === 0) {
    const skipped = project ? "; Supabase's own APIs not probed: this is the project's URL" : "";
    return ok(`${paths.length} paths outside the public table refused (403/404)${skipped}`);
  }
  return fail(
    `answered: ${forwarded.join(", ")}`,
    "the gateway forwards paths outside the public route table, so clients reach functions " +
      "or Supabase's APIs by names the API does not publish",
    "import supabase/gateway/tyk-api-definition.json as exported (its allow list admits only " +
      "the public paths), or give your gateway routes.json's path patterns",
    seen,
  );
}

/** A random address of a documentation range, as a forged header's value. */
function forgedAddress(): string {
  const [a, b] = crypto.getRandomValues(new Uint8Array(2));
  return [`198.51.100.${a! % 254 + 1}`, `203.0.113.${b! % 254 + 1}`][a! % 2]!;
}

/** Forged address headers, one set per request, each naming other addresses. */
function forgeries(): Array<Record<string, string>> {
  return [
    { "X-Forwarded-For": forgedAddress() },
    { "X-Real-IP": forgedAddress() },
    { "X-Forwarded-For": `${forgedAddress()}, ${forgedAddress()}`, "X-Real-IP": forgedAddress() },
    { "X-Forwarded-For": forgedAddress() },
  ];
}

async function forgedAddressFinding(base: string): Promise<Finding> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const seen: Array<
      { remaining: number | undefined; limit: number | undefined; reset: number | undefined }
    > = [];
    const lines: string[] = [];
    for (const headers of forgeries()) {
      const a = await get(`${base}/api/v1/test`, headers);
      const remaining = numericHeader(a.headers, "x-ratelimit-remaining");
      seen.push({
        remaining,
        limit: numericHeader(a.headers, "x-ratelimit-limit"),
        reset: numericHeader(a.headers, "x-ratelimit-reset"),
      });
      lines.push(`${Object.keys(headers).join(" + ")} → ${a.status}, remaining ${remaining}`);
    }
    if (seen.some((x) => x.remaining === undefined)) {
      return fail(
        "no X-RateLimit-Remaining on unauthenticated requests",
        "without the per-address count the doctor cannot tell whose address the functions saw " +
          "(the limiter may be degraded: see health)",
        "make the health check pass first",
        lines,
      );
    }
    // A counted request leaves at most limit - 1: a count at the limit was never made.
    if (seen.some((x) => x.remaining === x.limit)) {
      return fail(
        "the rate limiter did not count these requests (remaining stays at the limit)",
        "the functions' rate-limit calls to Redis fail or time out, so limits are off (fail " +
          "mode open) and whose address the functions saw cannot be told",
        "make Redis answer the functions within TORVUS_RATELIMIT_TIMEOUT_MS (300 ms): see the " +
          "health and functions region checks",
        lines,
      );
    }
    const counts = seen.map((x) => x.remaining!);
    if (counts[0] === 0) {
      return skip("this address's budget for unauthenticated requests is used up; run later");
    }
    const decreasing = counts.every((n, i) => i === 0 || n < counts[i - 1]!);
    if (decreasing) return ok(`forged X-Forwarded-For / X-Real-IP ignored (${counts.join(" → ")})`);
    // A window that ended between two requests starts a new count: try once more.
    const windowEnded = new Set(seen.map((x) => x.reset)).size > 1;
    if (windowEnded && attempt === 0) continue;
    return fail(
      `a forged address got a rate-limit bucket of its own (${counts.join(" → ")})`,
      "the gateway passes the client's X-Forwarded-For / X-Real-IP on as the client's address, " +
        "so anyone can pick an address: escape the per-address limit, pass an IP allowlist",
      "run the definition's pre middleware (enable_jsvm in tyk.conf, " +
        "middleware/strip_client_addresses.js) and keep X-Forwarded-For and X-Real-IP in " +
        "global_headers_remove; behind a load balancer see supabase/gateway/README.md",
      lines,
    );
  }
  throw new Error("unreachable");
}

const DOCUMENTED_HEADERS = [
  "x-request-id",
  "x-response-time",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
] as const;

const KEY_CAUSES: Record<string, [string, string]> = {
  INVALID_API_KEY: [
    "this deployment does not know the key (another project's, revoked, or a test key where " +
    "TORVUS_KEY_MODES=live)",
    "create a key on this deployment (deno task admin) and check TORVUS_KEY_MODES",
  ],
  GATEWAY_REQUIRED: [
    "the functions did not receive the gateway's secret",
    "set the same TORVUS_GATEWAY_SECRET in the gateway's environment and the functions' secrets",
  ],
  IP_NOT_ALLOWED: [
    "the key's IP allowlist does not hold this machine's address as the gateway saw it",
    "run the doctor from an allowed address, or use a key without an allowlist",
  ],
  RATE_LIMITED: ["the key's limit is used up", "wait for X-RateLimit-Reset, or use another key"],
};

async function testKeyFinding(s: GatewaySettings): Promise<Finding> {
  if (s.apiKey === undefined) {
    return skip("set TORVUS_DOCTOR_API_KEY to a key of this deployment to check its round trip");
  }
  const a = await get(`${s.base}/api/v1/test`, { "X-API-Key": s.apiKey });
  const code = codeOf(a);
  if (a.status !== 200) {
    const [cause, fix] = KEY_CAUSES[code ?? ""] ??
      [`GET /api/v1/test answered ${a.status}`, "see the health check above"];
    return fail(`${a.status}${code ? ` ${code}` : ""}`, cause, fix);
  }
  const missing = DOCUMENTED_HEADERS.filter((h) =>
    h === "x-request-id"
      ? !/^[0-9a-f-]{36}$/i.test(a.headers.get(h) ?? "")
      : numericHeader(a.headers, h) === undefined
  );
  const info = (a.json?.key_info ?? {}) as { key_id?: string; tier_id?: string };
  const summary = `200, key ${info.key_id} (tier ${info.tier_id}), ${
    a.headers.get("x-response-time")
  } ms, remaining ${a.headers.get("x-ratelimit-remaining")}/${a.headers.get("x-ratelimit-limit")}`;
  if (a.json?.success !== true || missing.length > 0) {
    return fail(
      summary,
      `the answer lacks what the API documents: ${
        [...(a.json?.success === true ? [] : ["success: true"]), ...missing].join(", ")
      }`,
      "the gateway must pass the functions' answer headers on unchanged",
    );
  }
  return ok(summary);
}
