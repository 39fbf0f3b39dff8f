/**
 * Configuration, read once per isolate from the environment and validated with zod.
 *
 * A missing or weak setting fails at start-up with a message naming the variable (never its
 * value), instead of failing every request later. Names follow Supabase's own variables plus
 * `TORVUS_*` for this project's settings; `.env.example` documents each one.
 *
 * @module
 */
import { z } from "zod";
import type { KeyMode } from "./auth/key_format.ts";
import { pemCertificates } from "./db/socket.ts";
import type { DbConfig } from "./db/settings.ts";

/** The version reported by the health endpoint. */
export const API_VERSION = "0.1.0";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const url = z.string().refine(
  (v) => URL.canParse(v) && /^https?:/.test(v),
  "must be an http(s) URL",
);

const pgUrl = z.string().regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL");

/** Where a direct request's client address comes from (one not vouched for by the gateway). */
export type DirectIpSource = { kind: "none" } | { kind: "peer" } | { kind: "header"; name: string };

const directIpSource = z.string().transform((v, ctx): DirectIpSource => {
  if (v === "none" || v === "peer") return { kind: v };
  const header = /^header:([A-Za-z0-9-]{1,64})$/.exec(v);
  if (header) return { kind: "header", name: header[1]!.toLowerCase() };
  ctx.addIssue({ code: "custom", message: 'must be "none", "peer" or "header:<name>"' });
  return z.NEVER;
});

const schema = z.object({
  SUPABASE_URL: url,
  SUPABASE_DB_URL: pgUrl.optional(),
  // Hosted Supabase provides SUPABASE_DB_URL (the direct connection) and reserves the prefix, so
  // the pooler's URL comes in a name of our own, and wins.
  TORVUS_DB_URL: pgUrl.optional(),
  // Legacy symmetric secret; Supabase's minimum is 32 characters.
  SUPABASE_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  SUPABASE_JWT_ISSUER: url.optional(),
  SUPABASE_JWKS_URL: url.optional(),
  // Provided to hosted functions; the apps function calls Supabase Auth's admin API with it.
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(20, "must be at least 20 characters").optional(),
  // Hosted Supabase reserves secret names starting with SUPABASE_, so deployments set these.
  TORVUS_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  TORVUS_JWT_ISSUER: url.optional(),
  TORVUS_JWKS_URL: url.optional(),
  UPSTASH_REDIS_REST_URL: url,
  UPSTASH_REDIS_REST_TOKEN: z.string().min(16, "must be at least 16 characters"),
  TORVUS_KEY_MODES: z.string().default("live,test").transform((v, ctx) => {
    const modes = [...new Set(v.split(",").map((m) => m.trim()).filter((m) => m !== ""))];
    if (modes.length === 0 || modes.some((m) => m !== "live" && m !== "test")) {
      ctx.addIssue({ code: "custom", message: 'must list "live", "test" or both' });
      return z.NEVER;
    }
    return modes as KeyMode[];
  }),
  // A shared secret the gateway sends in X-Torvus-Gateway-Secret; it vouches for X-Torvus-Client-IP.
  TORVUS_GATEWAY_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  TORVUS_DIRECT_ACCESS: z.enum(["allow", "deny"]).optional(),
  TORVUS_DIRECT_IP_SOURCE: directIpSource.default({ kind: "none" }),
  TORVUS_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default("torvus"),
  TORVUS_RATELIMIT_TIMEOUT_MS: intIn(10, 5000).default(300),
  // Opening the Redis connection (DNS, TCP, TLS) is bounded by this, not by a call's deadline.
  TORVUS_REDIS_CONNECT_TIMEOUT_MS: intIn(100, 60_000).default(5000),
  TORVUS_RATELIMIT_FAIL_MODE: z.enum(["open", "closed"]).default("open"),
  TORVUS_JWKS_COOLDOWN_MS: intIn(1000, 600_000).default(30_000),
  TORVUS_DB_POOL_MAX: intIn(1, 100).default(3),
  TORVUS_DB_POOL_MODE: z.enum(["session", "transaction"]).optional(),
  // Root certificate(s) the database's TLS certificate chains to (PEM), e.g. Supabase's.
  TORVUS_DB_CA_CERT: z.string().refine(
    (v) => pemCertificates(v).length > 0,
    "must hold PEM certificates (-----BEGIN CERTIFICATE-----)",
  ).optional(),
  TORVUS_DB_PREPARE: bool.optional(),
  TORVUS_DB_TIMEOUT_MS: intIn(100, 60_000).default(1500),
  TORVUS_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  // Request lines written per isolate and 10 s; beyond it they are counted in a summary line.
  TORVUS_LOG_REQUESTS_PER_10S: intIn(0, 1_000_000).default(50),
  // Error tracking; off unless a DSN is set.
  SENTRY_DSN: url.refine((v) => {
    const dsn = URL.parse(v);
    return dsn !== null && dsn.username !== "" && /^\/(.*\/)?\d+$/.test(dsn.pathname);
  }, "must be a Sentry DSN: https://<public key>@<host>/<project id>").optional(),
  SENTRY_ENVIRONMENT: z.string().regex(/^[^\s/]{1,64}$/).default("production"),
  SENTRY_RELEASE: z.string().regex(/^[^\s/]{1,200}$/).optional(),
  SENTRY_TRACES_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0),
  // Webhooks (see _shared/webhooks/): loopback targets are for local stacks only.
  TORVUS_WEBHOOK_ALLOW_LOOPBACK: bool.default(false),
  TORVUS_WEBHOOK_TIMEOUT_MS: intIn(1000, 30_000).default(10_000),
  TORVUS_WEBHOOK_RETRY_BASE_MS: intIn(100, 3_600_000).default(60_000),
  TORVUS_WEBHOOK_RETRY_MAX_DELAY_MS: intIn(1000, 86_400_000).default(6 * 3_600_000),
  TORVUS_WEBHOOK_RETRY_FOR_MS: intIn(1000, 30 * 86_400_000).default(3 * 86_400_000),
  TORVUS_WEBHOOK_DISABLE_AFTER_MS: intIn(1000, 90 * 86_400_000).default(5 * 86_400_000),
  TORVUS_WEBHOOK_DNS_SERVER: z.string().transform((v, ctx) => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(v);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: "custom", message: "must be <IPv4>:<port> or [<IPv6>]:<port>" });
      return z.NEVER;
    }
    return { ipAddr: m[1]!.replace(/^\[(.*)\]$/, "$1"), port };
  }).optional(),
  // The shared secret of scheduled calls (pg_cron through pg_net, the local scheduler).
  TORVUS_CRON_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
});

/** Where client addresses come from. */
export interface ClientAddressConfig {
  /** The gateway's shared secret; requests that carry it are trusted for X-Torvus-Client-IP. */
  gatewaySecret: string | undefined;
  /** Whether requests that do not come through the gateway are served at all. */
  directAccess: "allow" | "deny";
  directIpSource: DirectIpSource;
}

/** Webhook delivery. */
export interface WebhookConfig {
  /** Targets on loopback addresses are allowed (local stacks, so tests can receive). */
  allowLoopback: boolean;
  /** Bound on one attempt: resolution, connection, TLS, request and answer. */
  timeoutMs: number;
  /** The first retry's delay; each further one doubles, up to `retryMaxDelayMs`. */
  retryBaseMs: number;
  retryMaxDelayMs: number;
  /** How long a delivery is retried before it is marked failed. */
  retryForMs: number;
  /** An endpoint whose deliveries have failed without a success for this long is disabled. */
  disableAfterMs: number;
  /** The DNS server targets are resolved with (the system's when unset). */
  dnsServer: { ipAddr: string; port: number } | undefined;
  /** The secret scheduled calls of the sweep present (none: the sweep cannot be called). */
  cronSecret: string | undefined;
}

/** The validated configuration. */
export interface Config {
  supabaseUrl: string;
  /** The service role key, for Supabase Auth's admin API (apps); none: apps cannot be managed. */
  authAdminKey: string | undefined;
  jwt: {
    issuer: string;
    audience: string;
    jwksUrl: string;
    hsSecret: string | undefined;
    jwksCooldownMs: number;
  };
  redis: { url: string; token: string; prefix: string; connectTimeoutMs: number };
  rateLimit: { timeoutMs: number; failMode: "open" | "closed" };
  keyModes: readonly KeyMode[];
  clientAddress: ClientAddressConfig;
  db: DbConfig;
  logLevel: "debug" | "info" | "warn" | "error";
  /** Request lines per isolate and 10 s before sampling. */
  logRequestsPer10s: number;
  webhooks: WebhookConfig;
  /** Settings that were accepted but deserve a line in the log (e.g. retired names). */
  warnings: readonly string[];
  /** Error tracking, when `SENTRY_DSN` is set. */
  sentry:
    | { dsn: string; environment: string; release: string | undefined; tracesSampleRate: number }
    | undefined;
}

/** Raised when the environment does not hold a valid configuration. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The set variables of `env` validated by `shape`, or a ConfigError naming each problem. */
function validated<S extends z.ZodType>(
  shape: S,
  env: Record<string, string | undefined>,
): z.output<S> {
  const defined = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const result = shape.safeParse(defined);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  }
  return result.data;
}

/** Parses a configuration from an environment map (defaults to the process environment). */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const e = validated(schema, env);
  const base = e.SUPABASE_URL.replace(/\/+$/, "");
  const problems: string[] = [];
  const dbUrl = e.TORVUS_DB_URL ?? e.SUPABASE_DB_URL;
  if (dbUrl === undefined) problems.push("TORVUS_DB_URL or SUPABASE_DB_URL: is required");
  const db = dbUrl === undefined ? undefined : dbConfig(dbUrl, e, problems);
  if (e.TORVUS_DIRECT_ACCESS === "deny" && e.TORVUS_GATEWAY_SECRET === undefined) {
    problems.push("TORVUS_DIRECT_ACCESS: deny needs TORVUS_GATEWAY_SECRET (or nothing is served)");
  }
  if (problems.length > 0 || db === undefined) {
    throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  }
  const warnings: string[] = [];
  if (env.TORVUS_TRUST_PROXY !== undefined && env.TORVUS_TRUST_PROXY !== "") {
    warnings.push(
      "TORVUS_TRUST_PROXY is no longer read: client-sent X-Forwarded-For is never trusted; " +
        "the gateway vouches for addresses with TORVUS_GATEWAY_SECRET (see docs/DEPLOY.md)",
    );
  }
  return {
    supabaseUrl: base,
    authAdminKey: e.SUPABASE_SERVICE_ROLE_KEY,
    jwt: {
      issuer: e.TORVUS_JWT_ISSUER ?? e.SUPABASE_JWT_ISSUER ?? `${base}/auth/v1`,
      audience: "authenticated",
      jwksUrl: e.TORVUS_JWKS_URL ?? e.SUPABASE_JWKS_URL ?? `${base}/auth/v1/.well-known/jwks.json`,
      hsSecret: e.TORVUS_JWT_SECRET ?? e.SUPABASE_JWT_SECRET,
      jwksCooldownMs: e.TORVUS_JWKS_COOLDOWN_MS,
    },
    redis: {
      url: e.UPSTASH_REDIS_REST_URL,
      token: e.UPSTASH_REDIS_REST_TOKEN,
      prefix: e.TORVUS_REDIS_PREFIX,
      connectTimeoutMs: e.TORVUS_REDIS_CONNECT_TIMEOUT_MS,
    },
    rateLimit: { timeoutMs: e.TORVUS_RATELIMIT_TIMEOUT_MS, failMode: e.TORVUS_RATELIMIT_FAIL_MODE },
    keyModes: e.TORVUS_KEY_MODES,
    clientAddress: {
      gatewaySecret: e.TORVUS_GATEWAY_SECRET,
      directAccess: e.TORVUS_DIRECT_ACCESS ??
        (e.TORVUS_GATEWAY_SECRET === undefined ? "allow" : "deny"),
      directIpSource: e.TORVUS_DIRECT_IP_SOURCE,
    },
    db,
    logLevel: e.TORVUS_LOG_LEVEL,
    logRequestsPer10s: e.TORVUS_LOG_REQUESTS_PER_10S,
    webhooks: {
      allowLoopback: e.TORVUS_WEBHOOK_ALLOW_LOOPBACK,
      timeoutMs: e.TORVUS_WEBHOOK_TIMEOUT_MS,
      retryBaseMs: e.TORVUS_WEBHOOK_RETRY_BASE_MS,
      retryMaxDelayMs: Math.max(
        e.TORVUS_WEBHOOK_RETRY_MAX_DELAY_MS,
        e.TORVUS_WEBHOOK_RETRY_BASE_MS,
      ),
      retryForMs: e.TORVUS_WEBHOOK_RETRY_FOR_MS,
      disableAfterMs: e.TORVUS_WEBHOOK_DISABLE_AFTER_MS,
      dnsServer: e.TORVUS_WEBHOOK_DNS_SERVER,
      cronSecret: e.TORVUS_CRON_SECRET,
    },
    warnings,
    sentry: e.SENTRY_DSN === undefined ? undefined : {
      dsn: e.SENTRY_DSN,
      environment: e.SENTRY_ENVIRONMENT,
      release: e.SENTRY_RELEASE,
      tracesSampleRate: e.SENTRY_TRACES_SAMPLE_RATE,
    },
  };
}

/** Supavisor's transaction mode listens on 6543; its session mode and Postgres on 5432. */
const TRANSACTION_POOLER_PORT = "6543";

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The database settings: the pool mode from TORVUS_DB_POOL_MODE or the port, prepared
 * statements only without a transaction pooler (unless TORVUS_DB_PREPARE says otherwise), and
 * TLS required for every host but loopback.
 */
function dbConfig(
  url: string,
  e: z.output<typeof dbSchema>,
  problems: string[],
): DbConfig | undefined {
  const parsed = URL.parse(url.replace(/^postgres(ql)?:/, "http:"));
  if (parsed === null || parsed.hostname === "") {
    problems.push("TORVUS_DB_URL / SUPABASE_DB_URL: must name a host");
    return undefined;
  }
  const transactionPooler = e.TORVUS_DB_POOL_MODE === undefined
    ? parsed.port === TRANSACTION_POOLER_PORT
    : e.TORVUS_DB_POOL_MODE === "transaction";
  const sslmode = parsed.searchParams.get("sslmode");
  let ssl: DbConfig["ssl"];
  if (isLoopbackHost(parsed.hostname)) {
    ssl = sslmode === "require" || sslmode === "verify-ca" || sslmode === "verify-full"
      ? sslmode
      : false;
  } else if (sslmode === null || sslmode === "require") {
    ssl = "require";
  } else if (sslmode === "verify-ca" || sslmode === "verify-full") {
    ssl = sslmode;
  } else {
    problems.push(
      `TORVUS_DB_URL / SUPABASE_DB_URL: sslmode=${sslmode} for ${parsed.hostname}: ` +
        "connections beyond loopback must use TLS (require, verify-ca or verify-full)",
    );
    return undefined;
  }
  return {
    url,
    poolMax: e.TORVUS_DB_POOL_MAX,
    prepare: e.TORVUS_DB_PREPARE ?? !transactionPooler,
    timeoutMs: e.TORVUS_DB_TIMEOUT_MS,
    transactionPooler,
    ssl,
    caCerts: e.TORVUS_DB_CA_CERT === undefined ? [] : pemCertificates(e.TORVUS_DB_CA_CERT),
  };
}

/** The settings of {@link schema} the database connection is made from. */
const dbSchema = schema.pick({
  SUPABASE_DB_URL: true,
  TORVUS_DB_URL: true,
  TORVUS_DB_POOL_MAX: true,
  TORVUS_DB_POOL_MODE: true,
  TORVUS_DB_CA_CERT: true,
  TORVUS_DB_PREPARE: true,
  TORVUS_DB_TIMEOUT_MS: true,
});

/**
 * The database connection alone, as {@link parseConfig} makes it (`tools/doctor.ts` checks the
 * database with the functions' own settings while other settings may be absent); undefined
 * when neither URL is set.
 */
export function parseDbConfig(env: Record<string, string | undefined>): DbConfig | undefined {
  const e = validated(dbSchema, env);
  const url = e.TORVUS_DB_URL ?? e.SUPABASE_DB_URL;
  if (url === undefined) return undefined;
  const problems: string[] = [];
  const db = dbConfig(url, e, problems);
  if (db === undefined) throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  return db;
}

let cached: Config | undefined;

/** The process configuration, parsed on first use and then kept for the isolate's life. */
export function getConfig(): Config {
  cached ??= parseConfig(Deno.env.toObject());
  return cached;
}
