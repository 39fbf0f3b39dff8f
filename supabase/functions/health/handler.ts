/**
 * `GET /api/v1/health`: the API's status and that of its database and Redis, without
 * authentication. 200 when both answer; 503 naming the failed dependency otherwise. Each check
 * is bounded, so the endpoint answers within about a second even when a dependency hangs.
 *
 * Monitors and load balancers poll it every few seconds: it is never rate limited, and the
 * dependency checks are shared, one probe at a time and its result reused for
 * {@link PROBE_REUSE_MS}, so a flood of health requests costs the database and Redis at most
 * one round trip each per second. `checked_at` says when the checks ran.
 *
 * @module
 */
import type { Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import type { Services } from "../_shared/services.ts";
import { HealthOkSchema, HealthUnavailableSchema } from "../_shared/schemas/health.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { API_VERSION } from "../_shared/config.ts";
import { withTimeout } from "../_shared/deadline.ts";
import { onConnection } from "../_shared/db/client.ts";

/** How long each dependency check may take. */
export const CHECK_TIMEOUT_MS = 1000;
/** How long one probe's result answers every health request. */
export const PROBE_REUSE_MS = 1000;

interface Check {
  status: "ok" | "unavailable";
  latency_ms: number;
  error?: string;
}

async function check(what: string, probe: () => Promise<unknown>): Promise<Check> {
  const start = performance.now();
  try {
    await withTimeout(probe(), CHECK_TIMEOUT_MS, what);
    return { status: "ok", latency_ms: round(performance.now() - start) };
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    return {
      status: "unavailable",
      latency_ms: round(performance.now() - start),
      error: timedOut ? `no answer within ${CHECK_TIMEOUT_MS} ms` : "connection failed",
    };
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

interface Probe {
  at: number;
  checks: Promise<{ database: Check; redis: Check; checkedAt: string }>;
}

/** The last probe of each isolate (its services). */
const probes = new WeakMap<Services, Probe>();

/** The dependency checks: the running or recent probe's, or a new one. */
function probe(services: Services): Probe["checks"] {
  const now = services.now();
  const last = probes.get(services);
  if (last && now - last.at < PROBE_REUSE_MS) return last.checks;
  const { sql, redis } = services;
  const checks = Promise.all([
    check("database", () => onConnection(sql, (c) => c`select 1`)),
    check("redis", () => redis.ping()),
  ]).then(([database, redisCheck]) => ({
    database,
    redis: redisCheck,
    checkedAt: new Date(now).toISOString(),
  }));
  probes.set(services, { at: now, checks });
  return checks;
}

/** The health function's operations. */
export const operations: Implementations<typeof spec> = {
  getHealth: async ({ services, requestId }) => await health(services, requestId),
};

async function health(services: Services, requestId: string): Promise<Response> {
  const { checkedAt, ...checks } = await probe(services);
  const failed = (["database", "redis"] as const).filter((n) => checks[n].status !== "ok");
  const base = {
    version: API_VERSION,
    timestamp: new Date(services.now()).toISOString(),
    checked_at: checkedAt,
    checks,
  };
  if (failed.length === 0) return respond(HealthOkSchema, { status: "ok", ...base });
  return respond(HealthUnavailableSchema, {
    status: "unavailable",
    ...base,
    error: "service_unavailable",
    code: "DEPENDENCY_UNAVAILABLE",
    message: `Unavailable: ${failed.join(", ")}`,
    failed,
    request_id: requestId,
  }, 503);
}
