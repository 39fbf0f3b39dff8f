/**
 * Tier operations: create, list and look up subscription tiers.
 *
 * @module
 */
import type { Queryable } from "./db.ts";
import { AdminError } from "./errors.ts";
import { limitSchema, parseOr, tierNameSchema } from "./schemas.ts";

/** A tier and its rate limits. */
export interface Tier {
  id: string;
  name: string;
  requestsPerMinute: number;
  requestsPerDay: number;
  testRequestsPerMinute: number;
  testRequestsPerDay: number;
}

/** Options of {@link createTier}; test limits default to twice the live ones. */
export interface CreateTierOptions {
  name: string;
  perMinute: number;
  perDay: number;
  testPerMinute?: number;
  testPerDay?: number;
}

interface TierRow {
  id: string;
  name: string;
  requests_per_minute: number;
  requests_per_day: number;
  test_requests_per_minute: number;
  test_requests_per_day: number;
}

const toTier = (row: TierRow): Tier => ({
  id: row.id,
  name: row.name,
  requestsPerMinute: row.requests_per_minute,
  requestsPerDay: row.requests_per_day,
  testRequestsPerMinute: row.test_requests_per_minute,
  testRequestsPerDay: row.test_requests_per_day,
});

/** The tier of that name; an {@link AdminError} (exit 2) if there is none. */
export async function findTier(sql: Queryable, name: string): Promise<Tier> {
  const tierName = parseOr(tierNameSchema, name, "tier");
  const [row] = await sql<TierRow[]>`select * from public.tiers where name = ${tierName}`;
  if (row === undefined) throw new AdminError(`unknown tier: ${tierName}`, 2);
  return toTier(row);
}

/** Creates a tier; an {@link AdminError} (exit 2) if the name is taken. Returns it with its id. */
export async function createTier(sql: Queryable, options: CreateTierOptions): Promise<Tier> {
  const name = parseOr(tierNameSchema, options.name, "tier name");
  const perMinute = parseOr(limitSchema, options.perMinute, "--per-minute");
  const perDay = parseOr(limitSchema, options.perDay, "--per-day");
  const testPerMinute = parseOr(
    limitSchema,
    options.testPerMinute ?? perMinute * 2,
    "--test-per-minute",
  );
  const testPerDay = parseOr(limitSchema, options.testPerDay ?? perDay * 2, "--test-per-day");
  const [row] = await sql<TierRow[]>`
    insert into public.tiers
      (name, requests_per_minute, requests_per_day, test_requests_per_minute, test_requests_per_day)
    values (${name}, ${perMinute}, ${perDay}, ${testPerMinute}, ${testPerDay})
    on conflict (name) do nothing
    returning *`;
  if (row === undefined) throw new AdminError(`tier already exists: ${name}`, 2);
  return toTier(row);
}

/** All tiers, by name. */
export async function listTiers(sql: Queryable): Promise<Tier[]> {
  const rows = await sql<TierRow[]>`select * from public.tiers order by name`;
  return rows.map(toTier);
}
