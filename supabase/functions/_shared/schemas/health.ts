/**
 * `GET /api/v1/health`: the API's status and that of each dependency.
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import { RequestId, Timestamp } from "./common.ts";

/** One dependency's check. */
export const HealthCheckSchema = z.object({
  status: z.enum(["ok", "unavailable"]),
  latency_ms: z.number().min(0),
  error: z.string().max(200).optional().meta({
    description: "Why the check failed, without a library's message",
    examples: ["connection failed", "no answer within 1000 ms"],
  }),
}).register(components, { id: "HealthCheck" });

/** What both answers report: the version, the time, and each dependency's check. */
const report = {
  version: z.string().max(64),
  timestamp: Timestamp,
  checked_at: Timestamp.meta({
    description: "When the checks ran: one probe answers every health request for a second",
  }),
  checks: z.object({ database: HealthCheckSchema, redis: HealthCheckSchema }),
};

/** 200: every dependency answered. */
export const HealthOkSchema = z.object({ status: z.literal("ok"), ...report })
  .meta({ description: "The API and its dependencies answer" })
  .register(components, { id: "HealthOk" });

/** 503: a dependency did not answer in time; `failed` names it. */
export const HealthUnavailableSchema = z.object({
  status: z.literal("unavailable"),
  ...report,
  error: z.literal("service_unavailable"),
  code: z.literal("DEPENDENCY_UNAVAILABLE"),
  message: z.string().max(200),
  failed: z.array(z.enum(["database", "redis"])).min(1).max(2),
  request_id: RequestId,
}).meta({ description: "A dependency of the API is unavailable" }).register(components, {
  id: "HealthUnavailable",
});
