/**
 * The key-state epoch in Redis: counters that every change of a key's state increments (revoke,
 * suspend, reactivate, expiry change, roll, a move to another tier). Cached key lookups remember
 * the epoch they were read at and are trusted only while it is unchanged (see api_key.ts).
 *
 * The epoch of a key is two counters read together: its shard's (one of 4,096, chosen by the
 * first 12 bits of the key's SHA-256, the column `api_keys.epoch_shard`) and a global one. A change to some keys bumps their shards
 * only, so at thousands of keys changing every minute an isolate's cached keys are each dropped
 * only when a key of their own shard changes (10 changes a second empty about 0.25 % of a cache
 * per second, not all of it); a change that may touch any key (a tier's limits) bumps the global
 * counter. Shard names say nothing useful of a key: 12 bits of a hash of 256 random bits.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { KeyEpoch } from "./api_key.ts";
import { shardedEpoch, shardOf } from "./epoch.ts";

/** The Redis key of the global epoch under a prefix. */
export function epochKey(prefix: string): string {
  return `${prefix}:keys:epoch`;
}

/** Reads and bumps the epoch. */
export interface RedisKeyEpoch extends KeyEpoch {
  /**
   * Announces a change to every instance: of the keys in these shards (`api_keys.epoch_shard`),
   * or, without shards, of any key (a tier's limits, a change whose keys are not known).
   */
  bump(shards?: readonly number[]): Promise<void>;
}

/** The epoch over Upstash Redis (whose client bounds every call: redis.ts). */
export function createRedisKeyEpoch(redis: Redis, prefix: string): RedisKeyEpoch {
  return shardedEpoch(redis, epochKey(prefix), shardOf, (shard: number) => shard);
}
