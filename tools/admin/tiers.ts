/**
 * Tier operations: create, list and look up subscription tiers.
 *
 * @module
 */
import { AdminError, type Queryable } from "./errors.ts";
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
  testPerMinute?: number | undefined;
  testPerDay?: number | undefined;
}

/** The columns of a {@link Tier}. */
const TIER = `id, name, requests_per_minute as "requestsPerMinute",
  requests_per_day as "requestsPerDay", test_requests_per_minute as "testRequestsPerMinute",
  test_requests_per_day as "testRequestsPerDay"`;

/** The tier of that name; an {@link AdminError} (exit 2) if there is none. */
export async function findTier(sql: Queryable, name: string): Promise<Tier> {
  const tierName = parseOr(tierNameSchema, name, "tier");
  const [tier] = await sql<Tier[]>`
    select ${sql.unsafe(TIER)} from public.tiers where name = ${tierName}`;
  if (tier === undefined) throw new AdminError(`unknown tier: ${tierName}`, 2);
  return tier;
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
  const [tier] = await sql<Tier[]>`
    insert into public.tiers
      (name, requests_per_minute, requests_per_day, test_requests_per_minute, test_requests_per_day)
    values (${name}, ${perMinute}, ${perDay}, ${testPerMinute}, ${testPerDay})
    on conflict (name) do nothing
    returning ${sql.unsafe(TIER)}`;
  if (tier === undefined) throw new AdminError(`tier already exists: ${name}`, 2);
  return tier;
}

/** All tiers, by name. */
export async function listTiers(sql: Queryable): Promise<Tier[]> {
  return [...await sql<Tier[]>`select ${sql.unsafe(TIER)} from public.tiers order by name`];
}
