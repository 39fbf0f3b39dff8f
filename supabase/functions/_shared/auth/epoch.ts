/**
 * The two-counter epoch that key states (`key_epoch.ts`) and app grants (`grant_epoch.ts`) are
 * confirmed by: a global counter and one of {@link EPOCH_SHARDS} shards' counters, read together
 * in one MGET (or beside the rate limits, in their script) and bumped with INCR. A change to a
 * few subjects bumps their shards only; one that may touch any subject bumps the global counter.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";

/** Shards of an epoch: 12 bits of a hash. */
export const EPOCH_SHARDS = 4096;

/** The shard (0-4095) of a SHA-256 hash: its first 12 bits. */
export function shardOf(hash: Uint8Array): number {
  return ((hash[0] ?? 0) << 4) | ((hash[1] ?? 0) >> 4);
}

/** How the epoch of a subject `S` (a key hash, a user id) is read, and how one is bumped. */
export interface ShardedEpoch<S, B> {
  /** The Redis keys of the subject's epoch: the global one, then its shard's. */
  keysOf(subject: S): [string, string];
  /** The epoch as one string, from the values of {@link keysOf}'s keys. */
  versionOf(values: readonly unknown[]): string;
  /** The subject's epoch now. */
  current(subject: S): Promise<string>;
  /** Announces a change of these (their shards), or, without any, of every subject. */
  bump(changed?: readonly B[]): Promise<void>;
}

/**
 * The epoch whose global counter is the Redis key `global` (`<global>:<shard>` per shard; the
 * client bounds every call): a subject read is in the shard `shardOf` gives, and a change
 * announced by `bump` in the shard `changedShard` gives.
 */
export function shardedEpoch<S, B>(
  redis: Redis,
  global: string,
  shardOf: (subject: S) => number,
  changedShard: (changed: B) => number,
): ShardedEpoch<S, B> {
  const keysOf = (subject: S): [string, string] => [global, `${global}:${shardOf(subject)}`];
  const versionOf = (values: readonly unknown[]) => `${values[0] ?? 0}.${values[1] ?? 0}`;
  return {
    keysOf,
    versionOf,
    current: async (subject) => versionOf(await redis.mget<(number | null)[]>(...keysOf(subject))),
    bump: async (changed) => {
      const keys = changed === undefined
        ? [global]
        : [...new Set(changed.map(changedShard))].map((shard) => `${global}:${shard}`);
      await Promise.all(keys.map((k) => redis.incr(k)));
    },
  };
}
