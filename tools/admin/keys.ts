/**
 * API-key operations for operators: create keys (only `start` and the SHA-256 are stored),
 * change their status, expiry and tier, list them. Every change is announced to running
 * instances (`announceKeyChange`). Run as `postgres`, these writes bypass RLS and
 * the guard trigger's user rules on purpose.
 *
 * @module
 */
import { announceKeyChange } from "./epoch.ts";
import { Buffer } from "node:buffer";
import { generateApiKey, type KeyMode } from "../../supabase/functions/_shared/auth/key_format.ts";
import { AdminError, type Queryable } from "./errors.ts";
import {
  emailSchema,
  ipAllowlistSchema,
  keyNameSchema,
  modeSchema,
  parseOr,
  scopesSchema,
  statusSchema,
  ulidSchema,
} from "./schemas.ts";
import { findTier } from "./tiers.ts";
import { createUser, findUser } from "./users.ts";

export type KeyStatus = "active" | "revoked" | "suspended" | "expired";
export type KeyScope = "read" | "write" | "delete";

/** Options of {@link createApiKey}. */
export interface CreateKeyOptions {
  /** Owner; created if missing. */
  email: string;
  tier: string;
  mode: KeyMode;
  /** Default `<mode> key`. */
  name?: string | undefined;
  /** Default `["read"]`. */
  scopes?: readonly KeyScope[] | undefined;
  /** Default: never expires. */
  expiresAt?: Date | null | undefined;
  /** IPv4/IPv6 addresses or CIDR blocks. */
  ipAllowlist?: readonly string[] | undefined;
}

/** A created key: `key` is the only copy of the secret and must be shown once, never stored. */
export interface CreatedKey {
  id: string;
  key: string;
  start: string;
  userId: string;
  tierId: string;
  mode: KeyMode;
}

/** A key as listed: never its hash. */
export interface KeyInfo {
  id: string;
  name: string;
  mode: KeyMode;
  status: KeyStatus;
  start: string;
  tier: string;
  scopes: KeyScope[];
  expiresAt: Date | null;
  createdAt: Date;
}

/** Generates a key for the user of `email` (created if missing) and stores its start and hash. */
export async function createApiKey(sql: Queryable, options: CreateKeyOptions): Promise<CreatedKey> {
  const email = parseOr(emailSchema, options.email, "email");
  const mode = parseOr(modeSchema, options.mode, "--mode");
  const name = parseOr(keyNameSchema, options.name ?? `${mode} key`, "--name");
  const scopes = parseOr(scopesSchema, options.scopes ?? ["read"], "--scopes");
  const ipAllowlist = options.ipAllowlist === undefined
    ? null
    : parseOr(ipAllowlistSchema, options.ipAllowlist, "--ip-allowlist");
  const expiresAt = validDate(options.expiresAt ?? null, "--expires-at");
  const tier = await findTier(sql, options.tier);
  const user = await createUser(sql, email);
  const generated = generateApiKey(mode);
  const [row] = await sql<{ id: string }[]>`
    insert into public.api_keys
      (user_id, name, mode, start, key_hash, scopes, tier_id, expires_at, ip_allowlist)
    values (${user.id}, ${name}, ${mode}, ${generated.start}, ${Buffer.from(generated.hash)},
      ${scopes}::text[], ${tier.id}, ${expiresAt}, ${ipAllowlist}::cidr[])
    returning id`;
  if (row === undefined) throw new AdminError("key was not stored", 1);
  const { key, start } = generated;
  return { id: row.id, key, start, userId: user.id, tierId: tier.id, mode };
}

function validDate(date: Date | null, what: string): Date | null {
  if (date !== null && Number.isNaN(date.getTime())) throw new AdminError(`${what}: invalid date`);
  return date;
}

/** Sets a key's status (`revoked_at` follows); an {@link AdminError} (exit 2) if it is unknown. */
export async function setKeyStatus(sql: Queryable, keyId: string, status: KeyStatus) {
  const value = parseOr(statusSchema, status, "status");
  return await updateKey(
    sql,
    keyId,
    sql`status = ${value},
      revoked_at = case when ${value} = 'revoked' then coalesce(revoked_at, now()) end`,
  );
}

/**
 * Applies `changes` (a SET list) to one key and announces the change to running instances; an
 * {@link AdminError} (exit 2) if the key is unknown. Returns the key's id.
 */
async function updateKey(sql: Queryable, keyId: string, changes: ReturnType<Queryable>) {
  const id = parseOr(ulidSchema, keyId, "key id");
  const [row] = await sql<{ id: string; epoch_shard: number }[]>`
    update public.api_keys set ${changes} where id = ${id} returning id, epoch_shard`;
  if (row === undefined) throw new AdminError(`unknown key: ${id}`, 2);
  await announceKeyChange([row.epoch_shard]);
  return row.id;
}

/** Sets a key's expiry (`null`: never); an {@link AdminError} (exit 2) if it is unknown. */
export async function setKeyExpiry(sql: Queryable, keyId: string, expiresAt: Date | null) {
  return await updateKey(sql, keyId, sql`expires_at = ${validDate(expiresAt, "expiry")}`);
}

/**
 * Moves a key to another tier and announces it, so that instances holding the key in cache
 * look it up again and apply the new tier's limits from its next request. An
 * {@link AdminError} (exit 2) if the key or the tier is unknown. Returns the key's id.
 */
export async function setKeyTier(sql: Queryable, keyId: string, tierName: string) {
  parseOr(ulidSchema, keyId, "key id");
  const tier = await findTier(sql, tierName);
  return await updateKey(sql, keyId, sql`tier_id = ${tier.id}`);
}

/** The keys of the user of `email`, newest first; an {@link AdminError} if the user is unknown. */
export async function listKeys(sql: Queryable, email: string): Promise<KeyInfo[]> {
  const user = await findUser(sql, email);
  return [
    ...await sql<KeyInfo[]>`
    select k.id, k.name, k.mode, k.status, k.start, t.name as tier, k.scopes,
      k.expires_at as "expiresAt", k.created_at as "createdAt"
    from public.api_keys k join public.tiers t on t.id = k.tier_id
    where k.user_id = ${user.id}
    order by k.created_at desc, k.id desc`,
  ];
}
