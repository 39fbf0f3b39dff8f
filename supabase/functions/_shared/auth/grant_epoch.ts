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
import { type ShardedEpoch, shardedEpoch, shardOf } from "./epoch.ts";

/** The shard of a user's grants (0-4095), as `grant_epoch_shard(uuid)` computes it. */
export function grantShardOf(userId: string): number {
  const hex = userId.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError("not a UUID");
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return shardOf(sha256(bytes));
}

/** The Redis key of the global grant epoch under a prefix. */
export function grantEpochKey(prefix: string): string {
  return `${prefix}:grants:epoch`;
}

/**
 * Reads the epoch of a user's grants; `bump` announces a change of these users' grants, or,
 * without users, of anyone's.
 */
export type GrantEpoch = ShardedEpoch<string, string>;

/** The grant epoch over Upstash Redis (whose client bounds every call: redis.ts). */
export function createGrantEpoch(redis: Redis, prefix: string): GrantEpoch {
  return shardedEpoch(redis, grantEpochKey(prefix), grantShardOf, grantShardOf);
}
