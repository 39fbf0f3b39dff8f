/**
 * The isolate's dependencies, built once on first use: configuration, database pool, Redis,
 * verifiers, rate limiter and audit sink. Tests replace them with {@link setServices}.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { type Config, getConfig } from "./config.ts";
import { createSql, setDbDeadline, type Sql } from "./db/client.ts";
import { createRedis } from "./redis.ts";
import { createJwtVerifier, type JwtVerifier } from "./auth/jwt.ts";
import { createKeyAuthenticator, type KeyAuthenticator } from "./auth/api_key.ts";
import { createSqlKeyStore } from "./db/keys.ts";
import { createRedisKeyEpoch, type RedisKeyEpoch } from "./auth/key_epoch.ts";
import { createRateLimiter, type RateLimiter } from "./ratelimit/limiter.ts";
import { type AuditSink, createAuditSink } from "./audit.ts";
import { createRequestLineSampler, log, type RequestLineSampler, setLogLevel } from "./log.ts";
import { type AddressPolicy, addressPolicy } from "./http/ip.ts";
import { type ErrorReporter, noopReporter } from "./observability/reporter.ts";
import type { SentryOptions } from "./observability/sentry.ts";

/** Everything a request needs beyond itself. */
export interface Services {
  config: Config;
  sql: Sql;
  redis: Redis;
  jwt: JwtVerifier;
  keys: KeyAuthenticator;
  /** Bumped after a key's state changes, so cached lookups everywhere are re-checked. */
  keyEpoch: RedisKeyEpoch;
  limiter: RateLimiter;
  /** Where a request comes from: the gateway (vouched for by its secret) or directly. */
  addresses: AddressPolicy;
  audit: AuditSink;
  /** Which per-request log lines are written (the platform caps log events per function). */
  requestLines: RequestLineSampler;
  /** Where unexpected errors are reported (Sentry when configured; a no-op otherwise). */
  reporter: ErrorReporter;
  /** Keeps work alive after the response (EdgeRuntime.waitUntil where it exists). */
  background(work: Promise<unknown>): void;
}

interface EdgeRuntimeGlobal {
  EdgeRuntime?: { waitUntil?: (p: Promise<unknown>) => void };
}

const inFlight = new Set<Promise<unknown>>();

/** Runs `work` after the response: handed to the edge runtime, or tracked for shutdown. */
export function background(work: Promise<unknown>): void {
  const guarded = work.catch((error) => log.warn("background task failed", { err: error }));
  const edge = (globalThis as EdgeRuntimeGlobal).EdgeRuntime;
  if (edge?.waitUntil) {
    edge.waitUntil(guarded);
    return;
  }
  inFlight.add(guarded);
  void guarded.finally(() => inFlight.delete(guarded));
}

/**
 * The Sentry reporter, its SDK imported only when a DSN is configured: a static import costs
 * every cold start ~40 ms of module loading, DSN or not.
 */
function lazySentry(options: SentryOptions): ErrorReporter {
  const reporter = import("./observability/sentry.ts")
    .then((m) => m.createSentryReporter(options))
    .catch((error) => {
      log.warn("error reporter unavailable", { err: error });
      return noopReporter;
    });
  return {
    capture: (error, context) => void reporter.then((r) => r.capture(error, context)),
    flush: async (timeoutMs) => await (await reporter).flush(timeoutMs),
  };
}

/**
 * Calls `report` at most once per `intervalMs`, telling it how many calls it skipped: an outage
 * seen by every request must not write one warning per request.
 */
export function throttled(
  report: (error: unknown, suppressed: number) => void,
  intervalMs = 5000,
): (error: unknown) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    report(error, suppressed);
    suppressed = 0;
  };
}

/** Builds the services from a configuration. */
export function buildServices(config: Config): Services {
  setLogLevel(config.logLevel);
  for (const warning of config.warnings) log.warn(warning);
  const sql = createSql(config.db);
  setDbDeadline(config.db.timeoutMs + 500);
  const redis = createRedis(config.redis.url, config.redis.token);
  const keyEpoch = createRedisKeyEpoch(redis, config.redis.prefix, config.rateLimit.timeoutMs);
  return {
    config,
    sql,
    redis,
    jwt: createJwtVerifier({
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      jwks: new URL(config.jwt.jwksUrl),
      hsSecret: config.jwt.hsSecret,
      cooldownMs: config.jwt.jwksCooldownMs,
    }),
    keys: createKeyAuthenticator({
      store: createSqlKeyStore(sql),
      acceptedModes: config.keyModes,
      epoch: keyEpoch,
    }),
    keyEpoch,
    limiter: createRateLimiter({
      redis,
      prefix: config.redis.prefix,
      timeoutMs: config.rateLimit.timeoutMs,
      background,
      onError: throttled((error, suppressed) =>
        log.warn("rate limiter unavailable; requests pass (fail mode open) or get 503", {
          err: error,
          suppressed,
        })
      ),
    }),
    addresses: addressPolicy(config.clientAddress),
    requestLines: createRequestLineSampler(config.logRequestsPer10s, log),
    audit: createAuditSink({ sql, log, background }),
    reporter: config.sentry ? lazySentry({ ...config.sentry, background }) : noopReporter,
    background,
  };
}

let current: Services | undefined;

/** The isolate's services, built on first use. Throws `ConfigError` when misconfigured. */
export function getServices(): Services {
  current ??= buildServices(getConfig());
  return current;
}

/** Replaces the services (tests); returns the previous ones. */
export function setServices(next: Services | undefined): Services | undefined {
  const previous = current;
  current = next;
  return previous;
}

/** Flushes the audit log, waits for background work and closes the pool (clean shutdown). */
export async function shutdownServices(): Promise<void> {
  if (!current) return;
  const s = current;
  await Promise.allSettled([...inFlight]);
  await s.reporter.flush();
  await s.audit.close();
  await s.sql.end({ timeout: 5 });
}

// The edge runtime announces an isolate's end; flush what the audit log still holds, and the
// count of request lines left out.
globalThis.addEventListener?.("beforeunload", () => {
  if (!current) return;
  current.requestLines.flush();
  background(current.audit.flush());
});

/**
 * Keeps a process (or isolate) alive through an exception thrown from a library's timer, such as
 * postgres.js writing to a closed socket (porsager/postgres#1154), or a promise nobody awaited:
 * logged, not fatal to every request in flight. The dev server installs it at start; the edge
 * runtime gets it below. Tests keep Deno's default, which fails loudly.
 */
export function installCrashGuards(): void {
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    log.error("uncaught exception", { err: event.error });
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    log.error("unhandled rejection", { err: event.reason });
  });
}

if ((globalThis as EdgeRuntimeGlobal).EdgeRuntime) installCrashGuards();
