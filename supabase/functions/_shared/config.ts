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

/** The version reported by the health endpoint. */
export const API_VERSION = "0.1.0";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const url = z.string().refine(
  (v) => URL.canParse(v) && /^https?:/.test(v),
  "must be an http(s) URL",
);

const schema = z.object({
  SUPABASE_URL: url,
  SUPABASE_DB_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL"),
  // Legacy symmetric secret; Supabase's minimum is 32 characters.
  SUPABASE_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  SUPABASE_JWT_ISSUER: url.optional(),
  SUPABASE_JWKS_URL: url.optional(),
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
  TORVUS_TRUST_PROXY: bool.default(true),
  TORVUS_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default("torvus"),
  TORVUS_RATELIMIT_TIMEOUT_MS: intIn(10, 5000).default(300),
  TORVUS_RATELIMIT_FAIL_MODE: z.enum(["open", "closed"]).default("open"),
  TORVUS_JWKS_COOLDOWN_MS: intIn(1000, 600_000).default(30_000),
  TORVUS_DB_POOL_MAX: intIn(1, 100).default(10),
  TORVUS_DB_PREPARE: bool.default(true),
  TORVUS_DB_TIMEOUT_MS: intIn(100, 60_000).default(1500),
  TORVUS_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  // Error tracking; off unless a DSN is set.
  SENTRY_DSN: url.refine((v) => {
    const dsn = URL.parse(v);
    return dsn !== null && dsn.username !== "" && /^\/(.*\/)?\d+$/.test(dsn.pathname);
  }, "must be a Sentry DSN: https://<public key>@<host>/<project id>").optional(),
  SENTRY_ENVIRONMENT: z.string().regex(/^[^\s/]{1,64}$/).default("production"),
  SENTRY_RELEASE: z.string().regex(/^[^\s/]{1,200}$/).optional(),
  SENTRY_TRACES_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0),
});

/** The validated configuration. */
export interface Config {
  supabaseUrl: string;
  dbUrl: string;
  jwt: {
    issuer: string;
    audience: string;
    jwksUrl: string;
    hsSecret: string | undefined;
    jwksCooldownMs: number;
  };
  redis: { url: string; token: string; prefix: string };
  rateLimit: { timeoutMs: number; failMode: "open" | "closed" };
  keyModes: readonly KeyMode[];
  trustProxy: boolean;
  db: { poolMax: number; prepare: boolean; timeoutMs: number };
  logLevel: "debug" | "info" | "warn" | "error";
  /** Error tracking, when `SENTRY_DSN` is set. */
  sentry:
    | { dsn: string; environment: string; release: string | undefined; tracesSampleRate: number }
    | undefined;
}

/** Raised when the environment does not hold a valid configuration. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses a configuration from an environment map (defaults to the process environment). */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const defined = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const result = schema.safeParse(defined);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  }
  const e = result.data;
  const base = e.SUPABASE_URL.replace(/\/+$/, "");
  return {
    supabaseUrl: base,
    dbUrl: e.SUPABASE_DB_URL,
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
    },
    rateLimit: { timeoutMs: e.TORVUS_RATELIMIT_TIMEOUT_MS, failMode: e.TORVUS_RATELIMIT_FAIL_MODE },
    keyModes: e.TORVUS_KEY_MODES,
    trustProxy: e.TORVUS_TRUST_PROXY,
    db: {
      poolMax: e.TORVUS_DB_POOL_MAX,
      prepare: e.TORVUS_DB_PREPARE,
      timeoutMs: e.TORVUS_DB_TIMEOUT_MS,
    },
    logLevel: e.TORVUS_LOG_LEVEL,
    sentry: e.SENTRY_DSN === undefined ? undefined : {
      dsn: e.SENTRY_DSN,
      environment: e.SENTRY_ENVIRONMENT,
      release: e.SENTRY_RELEASE,
      tracesSampleRate: e.SENTRY_TRACES_SAMPLE_RATE,
    },
  };
}

let cached: Config | undefined;

/** The process configuration, parsed on first use and then kept for the isolate's life. */
export function getConfig(): Config {
  cached ??= parseConfig(Deno.env.toObject());
  return cached;
}
