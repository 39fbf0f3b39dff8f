/**
 * User operations: create users in `auth.users`, set their tier (and their keys'), mint their
 * access tokens.
 *
 * @module
 */
import { decodeJwt } from "jose";
import { defaultIssuer, mintAccessToken } from "../local_auth.ts";
import { AdminError, type Queryable } from "./errors.ts";
import { emailSchema, parseOr, ttlSchema } from "./schemas.ts";
import { findTier, type Tier } from "./tiers.ts";
import { announceKeyChange } from "./epoch.ts";

/** A user of `auth.users`. */
export interface User {
  id: string;
  email: string;
  /** Whether this call created the user (false: it existed). */
  created: boolean;
}

/** A minted access token and whom it is for (`expiresAt` is past for a negative ttl). */
export interface MintedToken {
  token: string;
  userId: string;
  email: string;
  expiresAt: Date;
}

/**
 * Creates the user of that email (trimmed, lower-cased) unless it exists, like a Supabase Auth
 * email sign-up; the `on_auth_user_created` trigger gives it a free-tier account.
 */
export async function createUser(sql: Queryable, email: string): Promise<User> {
  const address = parseOr(emailSchema, email, "email");
  const meta = { provider: "email", providers: ["email"] };
  const inserted = await sql<{ id: string }[]>`
    insert into auth.users (email, raw_app_meta_data)
    values (${address}, ${sql.json(meta)})
    on conflict (email) do nothing
    returning id`;
  if (inserted[0] !== undefined) return { id: inserted[0].id, email: address, created: true };
  return { ...(await findUser(sql, address)), created: false };
}

/** The user of that email; an {@link AdminError} (exit 2) if there is none. */
export async function findUser(sql: Queryable, email: string): Promise<Omit<User, "created">> {
  const address = parseOr(emailSchema, email, "email");
  const [row] = await sql<{ id: string }[]>`select id from auth.users where email = ${address}`;
  if (row === undefined) throw new AdminError(`unknown user: ${address}`, 2);
  return { id: row.id, email: address };
}

/** A tier change: the new tier, and how many of the user's keys moved to it. */
export interface TierChange extends Tier {
  /** Non-revoked keys that were on another tier and now are on this one. */
  keysMoved: number;
}

/**
 * Sets the account tier of an existing user (creating the account row if it is missing) and
 * moves the user's existing non-revoked keys to it, so an upgrade (or a downgrade) applies to
 * keys already issued, not only to new ones. Revoked keys keep their tier as a record. The
 * change is announced, so cached keys take the new limits on their next request.
 */
export async function setUserTier(sql: Queryable, email: string, tierName: string) {
  const user = await findUser(sql, email);
  const tier = await findTier(sql, tierName);
  // One statement, so that the account and its keys never disagree about the tier.
  const [row] = await sql<{ moved: number; shards: number[] }[]>`
    with account as (
      insert into public.accounts (user_id, tier_id) values (${user.id}, ${tier.id})
      on conflict (user_id) do update set tier_id = excluded.tier_id, updated_at = now()
      returning user_id
    ), moved as (
      update public.api_keys set tier_id = ${tier.id}
      where user_id = ${user.id} and status <> 'revoked' and tier_id <> ${tier.id}
      returning epoch_shard
    )
    select (select count(*) from moved)::int as moved, (select count(*) from account) as accounts,
      (select coalesce(array_agg(distinct epoch_shard), '{}') from moved) as shards`;
  const keysMoved = row?.moved ?? 0;
  if (keysMoved > 0) await announceKeyChange(row?.shards);
  return { ...tier, keysMoved } satisfies TierChange;
}

/**
 * Mints a Supabase-shaped access token for the user of that email, creating the user if
 * missing. The issuer comes from `issuer` or `SUPABASE_URL` (an {@link AdminError} if neither).
 */
export async function mintTokenFor(
  sql: Queryable,
  email: string,
  ttlSeconds = 3600,
  options: { issuer?: string; keyFile?: string } = {},
): Promise<MintedToken> {
  const ttl = parseOr(ttlSchema, ttlSeconds, "--ttl");
  const issuer = options.issuer ?? tokenIssuer();
  const { id: userId, email: address } = await createUser(sql, email);
  const keyFile = options.keyFile === undefined ? {} : { keyFile: options.keyFile };
  const token = await mintAccessToken({
    userId,
    email: address,
    ttlSeconds: ttl,
    issuer,
    ...keyFile,
  });
  const expiresAt = new Date((decodeJwt(token).exp ?? 0) * 1000);
  return { token, userId, email: address, expiresAt };
}

/** The issuer from `SUPABASE_URL`, or an {@link AdminError} (exit 2) saying it is missing. */
export function tokenIssuer(): string {
  try {
    return defaultIssuer();
  } catch {
    throw new AdminError("SUPABASE_URL is not set: tokens need it for their issuer", 2);
  }
}
