/**
 * Usage of API keys: the queries of `GET /api/keys/{id}/usage` and `GET /api/usage`, and the
 * counts they answer, per hour or day (UTC), read from the hourly rollups the request log keeps.
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import { MAX_INSTANT_LENGTH, ModeSchema, Timestamp, Ulid } from "./common.ts";

/** Bucket sizes. */
export const GranularitySchema = z.enum(["hour", "day"]).register(components, {
  id: "Granularity",
});
export type Granularity = z.infer<typeof GranularitySchema>;

/** Milliseconds of a bucket. */
export const BUCKET_MS: Record<Granularity, number> = { hour: 3_600_000, day: 86_400_000 };
/** Most buckets one answer holds: 31 days of hours, about 13 months of days. */
export const MAX_BUCKETS: Record<Granularity, number> = { hour: 744, day: 400 };
/** The range when `from` is not given: the last day of hours, the last 30 days. */
export const DEFAULT_SPAN_MS: Record<Granularity, number> = {
  hour: 86_400_000,
  day: 30 * 86_400_000,
};

/** An instant as a query parameter: an ISO 8601 date-time with an offset, or a date (UTC). */
const Instant = z.union([
  z.iso.datetime({ offset: true }).max(MAX_INSTANT_LENGTH),
  z.iso.date().length(10),
])
  .transform((value) => new Date(value.length === 10 ? `${value}T00:00:00Z` : value))
  .meta({ description: "ISO 8601: `2026-11-30T12:00:00Z` or `2026-11-30` (UTC)" });

const rangeShape = {
  from: Instant.optional(),
  to: Instant.optional(),
  granularity: GranularitySchema.default("day"),
};

/** What both usage operations answer (`api-keys` and `usage` document them). */
export const USAGE_DESCRIPTION = "Requests by outcome per `hour` or UTC `day` (`granularity`, " +
  "default day) from `from` to `to` (default: the last 24 hours or 30 days, widened to whole " +
  "buckets; at most 744 hours or 400 days). Every bucket is listed, zeros included; a request " +
  "shows within seconds.";

/** Query of `GET /api/keys/{id}/usage`. */
export const KeyUsageQuery = z.strictObject(rangeShape);

/** Query of `GET /api/usage`. */
export const UsageQuery = z.strictObject({
  ...rangeShape,
  key_id: z.string().max(26).regex(/^[0-9A-HJKMNP-TV-Z]{26}$/i)
    .transform((v) => v.toUpperCase()).pipe(Ulid).optional()
    .meta({ description: "Only this key's usage" }),
  mode: ModeSchema.optional().meta({ description: "Only live or only test keys" }),
});

/** The counts of a bucket or of the whole range. */
export const UsageCountsSchema = z.object({
  requests: z.int().min(0).meta({ description: "Requests answered" }),
  success: z.int().min(0).meta({ description: "Answered 2xx" }),
  rate_limited: z.int().min(0).meta({ description: "Answered 429" }),
  client_errors: z.int().min(0).meta({ description: "Answered 4xx other than 429" }),
  server_errors: z.int().min(0).meta({ description: "Answered 5xx" }),
}).register(components, { id: "UsageCounts" });
export type UsageCounts = z.infer<typeof UsageCountsSchema>;

/** The answer of both usage operations. */
export const UsageSchema = z.object({
  granularity: GranularitySchema,
  from: Timestamp.meta({ description: "Start of the first bucket (inclusive)" }),
  to: Timestamp.meta({ description: "End of the last bucket (exclusive)" }),
  buckets: z.array(UsageCountsSchema.extend({ start: Timestamp }))
    .max(Math.max(...Object.values(MAX_BUCKETS))).meta({
      description: "Every bucket of the range, oldest first, zeros included",
    }),
  totals: UsageCountsSchema,
}).meta({
  description: "Requests by outcome per hour or day (UTC), from rollups kept as requests are " +
    "logged: a request shows within seconds",
}).register(components, { id: "Usage" });
