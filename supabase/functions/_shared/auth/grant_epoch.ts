/**
 * The grant-state epoch in Redis: counters that every change of a user's grants to third-party
 * apps increments (a grant made, narrowed or revoked), read with each cached grant exactly as
 * keys' epochs are (`key_epoch.ts`), so that a revoked grant is refused on the very next request
 * on every instance, though the app's access token has not expired.
 *
 * A grant's epoch is two counters read together: its user's shard (one of 4,096: the first 12
 * bits of the SHA-256 of the user id's 16 bytes, the column `oauth_grants.epoch_shard` and the
 * database's `grant_epoch_shard()`, so the API computes it from the token's `sub` alone) and a
 * global one, bumped by changes that may touch many users' grants (an app deleted, its scopes
 * narrowed, its tier changed).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { sha256 } from "@noble/hashes/sha2";

/** The shard of a user's grants (0-4095), as `grant_epoch_shard(uuid)` computes it. */
export function grantShardOf(userId: string): number {
  const hex = userId.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError("not a UUID");
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  const hash = sha256(bytes);
  return ((hash[0] ?? 0) << 4) | ((hash[1] ?? 0) >> 4);
}

/** The Redis key of the global grant epoch under a prefix. */
export function grantEpochKey(prefix: string): string {
  return `${prefix}:grants:epoch`;
}

/** The Redis key of a shard's grant epoch. */
export function grantShardEpochKey(prefix: string, shard: number): string {
  return `${prefix}:grants:epoch:${shard}`;
}

/** Reads and bumps the grant epoch. */
export interface GrantEpoch {
  /** The Redis keys of the epoch of a user's grants: the global one, then the user's shard. */
  keysOf(userId: string): [string, string];
  /** The epoch as one string, from the values of {@link keysOf}'s keys. */
  versionOf(values: readonly unknown[]): string;
  /** The epoch of a user's grants now. */
  current(userId: string): Promise<string>;
  /** Announces a change of these users' grants, or, without users, of anyone's. */
  bump(userIds?: readonly string[]): Promise<void>;
}

/** The grant epoch over Upstash Redis (whose client bounds every call: redis.ts). */
export function createGrantEpoch(redis: Redis, prefix: string): GrantEpoch {
  const global = grantEpochKey(prefix);
  const keysOf = (userId: string): [string, string] => [
    global,
    grantShardEpochKey(prefix, grantShardOf(userId)),
  ];
  const versionOf = (values: readonly unknown[]) => `${values[0] ?? 0}.${values[1] ?? 0}`;
  return {
    keysOf,
    versionOf,
    current: async (userId) => versionOf(await redis.mget<(number | null)[]>(...keysOf(userId))),
    bump: async (userIds) => {
      const keys = userIds === undefined
        ? [global]
        : [...new Set(userIds.map((u) => grantShardEpochKey(prefix, grantShardOf(u))))];
      await Promise.all(keys.map((k) => redis.incr(k)));
    },
  };
}
