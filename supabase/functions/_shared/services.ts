/**
 * An isolate's dependencies and state: configuration, clock, logger, database pool, Redis,
 * verifiers, rate limiter, request log and error reporter. Everything an isolate keeps between
 * requests lives here (nothing in module globals), each built once, when first used (a function
 * builds only what its requests need); tests build their own from fakes (`_shared/testing/`).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { type Config, ConfigError, parseConfig } from "./config.ts";
import { createSql, type Sql } from "./db/client.ts";
import { createRedis, type RequesterStats } from "./redis.ts";
import { createJwtVerifier, type JwtVerifier } from "./auth/jwt.ts";
import { createKeyAuthenticator, type KeyAuthenticator } from "./auth/api_key.ts";
import { createSqlKeyStore } from "./db/keys.ts";
import { createRedisKeyEpoch, type RedisKeyEpoch } from "./auth/key_epoch.ts";
import { createGrantAuthenticator, type GrantAuthenticator } from "./auth/app_grant.ts";
import { createGrantEpoch, type GrantEpoch } from "./auth/grant_epoch.ts";
import { createSqlGrantStore } from "./db/grants.ts";
import { createRateLimiter, limiterWarnings, type RateLimiter } from "./ratelimit/limiter.ts";
import { type AuditSink, createAuditSink } from "./audit.ts";
import {
  createLogger,
  createRequestLineSampler,
  log as startupLog,
  type Logger,
  type RequestLineSampler,
} from "./log.ts";
import { type ErrorReporter, noopReporter } from "./observability/reporter.ts";
import type { SentryOptions } from "./observability/sentry.ts";
import { type AddressPolicy, addressPolicy } from "./ip.ts";
import { createWebhooks, type Webhooks } from "./webhooks/service.ts";
import { type RequestEvents, requestEvents } from "./events.ts";

/** Everything a request needs beyond itself. */
export interface Services {
  config: Config;
  /** The time, in epoch ms. Every time decision reads it, so tests can set the clock. */
  now: () => number;
  /** The isolate's logger, at the configured level. */
  log: Logger;
  sql: Sql;
  redis: Redis;
  /** REST calls and commands the Redis client has sent (diagnostics, the benchmark). */
  redisStats: Readonly<RequesterStats>;
  jwt: JwtVerifier;
  keys: KeyAuthenticator;
  /** Bumped after a key's state changes, so cached lookups everywhere are re-checked. */
  keyEpoch: RedisKeyEpoch;
  /** Third-party apps' tokens, admitted on their users' grants. */
  grants: GrantAuthenticator;
  /** Bumped after a user's grants change, so cached grants everywhere are re-checked. */
  grantEpoch: GrantEpoch;
  limiter: RateLimiter;
  /** Where a request comes from: the gateway (vouched for by its secret) or directly. */
  addresses: AddressPolicy;
  /** Which per-request log lines are written (the platform caps log events per function). */
  requestLines: RequestLineSampler;
  audit: AuditSink;
  /** Where unexpected errors are reported (Sentry when configured; a no-op otherwise). */
  reporter: ErrorReporter;
  /** Keeps work alive after the response (EdgeRuntime.waitUntil where it exists). */
  background(work: Promise<unknown>): void;
  /** Webhook delivery: the dispatcher to kick after writes, and the rate-limit event. */
  webhooks: Webhooks;
  /** What the pipeline tells the services of each request (events.ts). */
  events: RequestEvents;
}

interface EdgeRuntimeGlobal {
  EdgeRuntime?: { waitUntil?: (p: Promise<unknown>) => void };
}

/**
 * Registers work that must survive the response: with the edge runtime's `waitUntil` (which
 * keeps the isolate until it settles), or, elsewhere, in `inFlight` for a clean shutdown.
 */
function backgroundRunner(log: Logger, inFlight: Set<Promise<unknown>>) {
  return (work: Promise<unknown>): void => {
    const guarded = work.catch((error) => log.warn("background task failed", { err: error }));
    const edge = (globalThis as EdgeRuntimeGlobal).EdgeRuntime;
    if (edge?.waitUntil) {
      edge.waitUntil(guarded);
      return;
    }
    inFlight.add(guarded);
    void guarded.finally(() => inFlight.delete(guarded));
  };
}

/**
 * The Sentry reporter, its SDK imported only when a DSN is configured: a static import costs
 * every cold start ~40 ms of module loading, DSN or not.
 */
function lazySentry(options: SentryOptions, log: Logger): ErrorReporter {
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

/** Services and what shutting them down must wait for. */
export interface Isolate {
  services: Services;
  /**
   * Starts opening what the function will need before its first request: the Redis connection
   * (rate limits). Functions that never count a request do not call it.
   */
  warm?(): void;
  /** Flushes the request log, waits for background work and closes the pool. */
  shutdown(): Promise<void>;
}

/**
 * Defines `key` on `target` as the value `make` returns when first read, then kept: a service
 * one function never uses (the reference never opens a database pool) is never built.
 */
function lazy<T extends object, K extends keyof T>(target: T, key: K, make: () => T[K]): void {
  Object.defineProperty(target, key, {
    configurable: true,
    enumerable: true,
    get() {
      const value = make();
      Object.defineProperty(target, key, { value, enumerable: true });
      return value;
    },
  });
}

/** A value made on first use, then kept, with whether it was made. */
function once<T>(make: () => T): { (): T; made: boolean } {
  let value: T;
  const get = Object.assign(() => {
    if (!get.made) (value = make(), get.made = true);
    return value;
  }, { made: false });
  return get;
}

/**
 * Builds an isolate's services from a configuration. The cheap ones at once; the database pool,
 * the Redis client and what stands on them when first used.
 */
export function buildServices(config: Config, now: () => number = Date.now): Isolate {
  const log = createLogger({}, config.logLevel);
  for (const warning of config.warnings) log.warn(warning);
  const inFlight = new Set<Promise<unknown>>();
  const background = backgroundRunner(log, inFlight);
  const sql = once(() => createSql(config.db));
  const redis = once(() =>
    createRedis({
      url: config.redis.url,
      token: config.redis.token,
      timeoutMs: config.rateLimit.timeoutMs,
      connectTimeoutMs: config.redis.connectTimeoutMs,
    })
  );
  const keyEpoch = once(() => createRedisKeyEpoch(redis().redis, config.redis.prefix));
  const grantEpoch = once(() => createGrantEpoch(redis().redis, config.redis.prefix));
  const audit = once(() => createAuditSink({ sql: sql(), log, background, now }));
  const services = {
    config,
    now,
    log,
    addresses: addressPolicy(config.clientAddress),
    requestLines: createRequestLineSampler(config.logRequestsPer10s, log, now),
    reporter: config.sentry ? lazySentry({ ...config.sentry, background }, log) : noopReporter,
    background,
  } as Services;
  lazy(services, "sql", sql);
  lazy(services, "redis", () => redis().redis);
  lazy(services, "redisStats", () => redis().requester.stats);
  lazy(services, "keyEpoch", keyEpoch);
  lazy(services, "audit", audit);
  lazy(services, "grantEpoch", grantEpoch);
  lazy(
    services,
    "grants",
    () => createGrantAuthenticator({ store: createSqlGrantStore(sql()), epoch: grantEpoch(), now }),
  );
  lazy(services, "jwt", () =>
    createJwtVerifier({
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      jwks: new URL(config.jwt.jwksUrl),
      hsSecret: config.jwt.hsSecret,
      cooldownMs: config.jwt.jwksCooldownMs,
      now,
    }));
  lazy(services, "keys", () =>
    createKeyAuthenticator({
      store: createSqlKeyStore(sql()),
      acceptedModes: config.keyModes,
      epoch: keyEpoch(),
      now,
    }));
  lazy(services, "limiter", () =>
    createRateLimiter({
      redis: redis().redis,
      prefix: config.redis.prefix,
      background,
      now,
      onError: limiterWarnings(log, now),
    }));
  lazy(services, "webhooks", () =>
    createWebhooks({
      sql: sql(),
      redis: redis().redis,
      redisPrefix: config.redis.prefix,
      config: config.webhooks,
      log,
      now,
      background,
    }));
  services.events = requestEvents(services);
  return {
    services,
    // A connection opens before the first request needs it (redis.ts, `warm`).
    warm: () => void redis().requester.warm(),
    async shutdown() {
      services.requestLines.flush();
      await Promise.allSettled([...inFlight]);
      await services.reporter.flush();
      if (audit.made) await audit().close();
      if (sql.made) await sql().end({ timeout: 5 });
    },
  };
}

/** What an isolate's start produced: its services, or why it has none. */
export type Boot = Isolate | ConfigError;

let booted: Boot | undefined;

/**
 * The isolate's services, built from the environment the first time an isolate asks (when its
 * function module loads). An invalid configuration is logged once, here, naming each setting
 * and never its value; the pipeline then answers every request with 503.
 */
export function bootIsolate(env: Record<string, string | undefined> = Deno.env.toObject()): Boot {
  if (booted) return booted;
  try {
    booted = buildServices(parseConfig(env));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    startupLog.error("invalid configuration: every request is answered 503", {
      problems: error.message,
    });
    booted = error;
  }
  const boot = booted;
  if (!(boot instanceof ConfigError)) {
    // The edge runtime announces an isolate's end; the request log's work is already in
    // waitUntil, so this only writes the count of request lines left out.
    globalThis.addEventListener?.("beforeunload", () => boot.services.requestLines.flush());
    if ((globalThis as EdgeRuntimeGlobal).EdgeRuntime) installCrashGuards(boot.services.log);
  }
  return boot;
}

/**
 * Keeps a process (or isolate) alive through an exception thrown from a library's timer, such as
 * postgres.js writing to a closed socket (porsager/postgres#1154), or a promise nobody awaited:
 * logged, not fatal to every request in flight. The edge runtime's isolates install it when they
 * boot; tests keep Deno's default, which fails loudly.
 */
export function installCrashGuards(log: Logger): void {
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    log.error("uncaught exception", { err: event.error });
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    log.error("unhandled rejection", { err: event.reason });
  });
}
