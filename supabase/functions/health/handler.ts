/**
 * `GET /api/v1/health`: the API's status and that of its database and Redis, without
 * authentication. 200 when both answer; 503 naming the failed dependency otherwise. Each check
 * is bounded, so the endpoint answers within about a second even when a dependency hangs.
 *
 * @module
 */
import { defineFunction, type RequestContext, type RouteSpec } from "../_shared/http/app.ts";
import { HealthOkSchema, HealthUnavailableSchema } from "../_shared/schemas/health.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { API_VERSION } from "../_shared/config.ts";
import { withTimeout } from "../_shared/deadline.ts";

/** How long each dependency check may take. */
export const CHECK_TIMEOUT_MS = 1000;

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

async function health(ctx: RequestContext): Promise<Response> {
  const { sql, redis } = ctx.services;
  const [database, redisCheck] = await Promise.all([
    check("database", () => sql`select 1`.execute()),
    check("redis", () => redis.ping()),
  ]);
  const checks = { database, redis: redisCheck };
  const failed = (["database", "redis"] as const).filter((n) => checks[n].status !== "ok");
  const base = { version: API_VERSION, timestamp: new Date().toISOString(), checks };
  if (failed.length === 0) return respond(HealthOkSchema, { status: "ok", ...base });
  return respond(HealthUnavailableSchema, {
    status: "unavailable",
    ...base,
    error: "service_unavailable",
    code: "DEPENDENCY_UNAVAILABLE",
    message: `Unavailable: ${failed.join(", ")}`,
    failed,
    request_id: ctx.requestId,
  }, 503);
}

/** The health function's routes. */
export const routes: readonly RouteSpec[] = [
  { path: "/", auth: "none", methods: { GET: { handler: health } } },
];

/** The health function's handler. */
export const handler = defineFunction("health", routes);
