/**
 * The key-state epoch in Redis: one counter that every change of any key's state increments
 * (revoke, suspend, reactivate, expiry change, roll). Cached key lookups remember the epoch
 * they were read at and are trusted only while it is unchanged (see api_key.ts).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { withTimeout } from "../deadline.ts";
import type { KeyEpoch } from "./api_key.ts";

/** The Redis key of the epoch under a prefix. */
export function epochKey(prefix: string): string {
  return `${prefix}:keys:epoch`;
}

/** Reads and bumps the epoch. */
export interface RedisKeyEpoch extends KeyEpoch {
  /** Announces a change of some key's state to every instance. */
  bump(): Promise<void>;
}

/** The epoch over Upstash Redis, each call bounded by `timeoutMs`. */
export function createRedisKeyEpoch(
  redis: Redis,
  prefix: string,
  timeoutMs: number,
): RedisKeyEpoch {
  const key = epochKey(prefix);
  return {
    // INCRBY 0 rather than GET: @upstash/redis pipelines reads and writes separately, and this
    // read must ride in the same request as the rate limiter's scripts.
    current: async () => Number(await withTimeout(redis.incrby(key, 0), timeoutMs, "key epoch")),
    bump: async () => {
      await withTimeout(redis.incr(key), timeoutMs, "key epoch bump");
    },
  };
}
