/**
 * Usage of the caller's API keys, read as the caller (RLS) from `api_usage_hourly`, or of one of
 * their third-party apps from `api_app_usage_hourly`, the hourly rollups the request log keeps
 * (audit.ts): per hour or per UTC day, every bucket of the range with zeros where nothing
 * happened, and the totals.
 *
 * @module
 */
import type { Tx } from "./db/client.ts";
import { invalidField } from "./http/input.ts";
import { asUser } from "./http/as_user.ts";
import type { HandlerContext } from "./http/spec.ts";
import type { UserPrincipal } from "./auth/principal.ts";
import { respond } from "./schemas/respond.ts";
import {
  BUCKET_MS,
  DEFAULT_SPAN_MS,
  type Granularity,
  MAX_BUCKETS,
  type UsageCounts,
  UsageSchema,
} from "./schemas/usage.ts";
import type { z } from "zod";

/** A range of whole buckets. */
export interface UsageRange {
  granularity: Granularity;
  /** Start of the first bucket, epoch ms. */
  from: number;
  /** End of the last bucket (exclusive), epoch ms. */
  to: number;
}

/**
 * The buckets a query asks for: `to` (default now) rounded up and `from` (default one day of
 * hours or 30 days back) rounded down to whole buckets. A range that is empty, reversed or longer
 * than {@link MAX_BUCKETS} is a 400 naming `from`.
 */
function usageRange(
  q: { from?: Date | undefined; to?: Date | undefined; granularity: Granularity },
  now: number,
): UsageRange {
  const ms = BUCKET_MS[q.granularity];
  const end = q.to?.getTime() ?? now;
  if (!Number.isFinite(end)) throw invalidField("query", "to", "is not a valid instant");
  // The current bucket included: a day of hours is the last 24 buckets up to this hour's.
  const to = Math.ceil((q.to === undefined ? end + 1 : end) / ms) * ms;
  const start = q.from?.getTime() ?? to - DEFAULT_SPAN_MS[q.granularity];
  if (!Number.isFinite(start)) throw invalidField("query", "from", "is not a valid instant");
  if (start >= end) throw invalidField("query", "from", "must be before `to`");
  const range = { granularity: q.granularity, from: Math.floor(start / ms) * ms, to };
  const buckets = (range.to - range.from) / ms;
  if (buckets > MAX_BUCKETS[q.granularity]) {
    throw invalidField(
      "query",
      "from",
      `the range holds ${buckets} ${q.granularity}s, more than ${MAX_BUCKETS[q.granularity]}` +
        (q.granularity === "hour" ? "; narrow it or use granularity=day" : "; narrow it"),
    );
  }
  return range;
}

interface Row extends UsageCounts {
  start: Date;
}

const zero = (): UsageCounts => ({
  requests: 0,
  success: 0,
  rate_limited: 0,
  client_errors: 0,
  server_errors: 0,
});

/** Whose usage {@link readUsage} counts: the caller's keys (all, one, or one mode), or an app's. */
export interface UsageFilter {
  keyId?: string | undefined;
  mode?: "live" | "test" | undefined;
  clientId?: string | undefined;
}

/**
 * The usage of the caller's keys in `range`, optionally of one key or one mode; or, with
 * `clientId`, of one of the caller's third-party apps across all its users
 * (`api_app_usage_hourly`, which RLS shows to the app's owner only).
 */
async function readUsage(
  tx: Tx,
  range: UsageRange,
  filter: UsageFilter = {},
): Promise<z.input<typeof UsageSchema>> {
  const app = filter.clientId;
  const rows = await tx<Row[]>`
    select date_trunc(${range.granularity}, hour, 'UTC') as start,
      sum(requests)::int as requests, sum(success)::int as success,
      sum(rate_limited)::int as rate_limited, sum(client_errors)::int as client_errors,
      sum(server_errors)::int as server_errors
    from ${app === undefined ? tx`public.api_usage_hourly` : tx`public.api_app_usage_hourly`}
    where hour >= ${new Date(range.from)} and hour < ${new Date(range.to)}
      ${app === undefined ? tx`` : tx`and client_id = ${app}`}
      ${filter.keyId === undefined ? tx`` : tx`and key_id = ${filter.keyId}`}
      ${filter.mode === undefined ? tx`` : tx`and mode = ${filter.mode}`}
    group by 1`;
  const byStart = new Map(rows.map((r) => [r.start.getTime(), r]));
  const totals = zero();
  const buckets = [];
  for (let t = range.from; t < range.to; t += BUCKET_MS[range.granularity]) {
    const found = byStart.get(t);
    const counts = zero();
    for (const k of Object.keys(counts) as Array<keyof UsageCounts>) {
      counts[k] = found?.[k] ?? 0;
      totals[k] += counts[k];
    }
    buckets.push({ start: new Date(t).toISOString(), ...counts });
  }
  return {
    granularity: range.granularity,
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
    buckets,
    totals,
  };
}

/**
 * The answer to a signed-in user's usage request: the range the query asks for (a 400 before any
 * database trip), then, in one transaction as the caller, `scope`, which finds what is asked for
 * (throwing the 404 of anything the caller does not own) and names whose usage to count.
 */
export async function answerUsage(
  ctx: HandlerContext<
    UserPrincipal,
    { from?: Date | undefined; to?: Date | undefined; granularity: Granularity }
  >,
  scope: (tx: Tx) => Promise<UsageFilter>,
): Promise<Response> {
  const range = usageRange(ctx.query, ctx.services.now());
  const body = await asUser(ctx, async (tx) => await readUsage(tx, range, await scope(tx)));
  return respond(UsageSchema, body);
}
