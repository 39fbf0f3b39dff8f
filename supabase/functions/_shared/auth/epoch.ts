/**
 * The two-counter epoch that key states (`key_epoch.ts`) and app grants (`grant_epoch.ts`) are
 * confirmed by: a global counter and one of {@link EPOCH_SHARDS} shards' counters, read together
 * in one MGET (or beside the rate limits, in their script) and bumped with INCR. A change to a
 * few subjects bumps their shards only; one that may touch any subject bumps the global counter.
 * {@link EpochCache} is the per-isolate cache of lookups both confirm this way.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { BoundedCache } from "../cache.ts";

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

/** What an {@link EpochCache} needs of an epoch: reading it, and its keys and version. */
export interface EpochSource<S> {
  /** The subject's version now; rejects when it cannot be read. */
  current(subject: S): Promise<string>;
  /** The Redis keys whose values make that version (read with the rate limits: one command). */
  keysOf(subject: S): readonly string[];
  /** The version the values of {@link keysOf}'s keys make. */
  versionOf(values: readonly unknown[]): string;
}

/**
 * How a lookup served from cache is confirmed: its epoch keys are read in the same Redis command
 * as the request's rate limits, and `matches` judges what was read (undefined: nothing could be
 * read). On false the stale entry is already gone: look the subject up again.
 */
export interface Confirmation {
  keys: readonly string[];
  matches(values: readonly unknown[] | undefined): boolean;
}

/** A subject's epoch as read before a lookup: its version, and the keys a hit reads it back from. */
export interface EpochRead {
  version: string;
  keys: readonly string[];
}

/**
 * Lookups (a key by its hash, a user's grant to an app) remembered per isolate with the epoch
 * they were read at, trusted only while that epoch reads back unchanged. On a miss the epoch is
 * read before the lookup ({@link EpochCache.before}), so an entry never pairs old data with a
 * newer epoch; when it cannot be read, nothing is kept. Without an epoch source nothing is.
 * An entry keeps its subject's epoch keys: a hit does not work them out again (a grant's shard
 * is a SHA-256 of the user id, about 3.7 µs).
 */
export class EpochCache<S, V> {
  readonly #epoch: EpochSource<S> | undefined;
  readonly #entries: BoundedCache<string, { value: V } & EpochRead>;

  constructor(epoch: EpochSource<S> | undefined, size: number) {
    this.#epoch = epoch;
    this.#entries = new BoundedCache(epoch ? size : 0);
  }

  /** The value kept for `id`, with how the request confirms it; or undefined. */
  hit(id: string, now: number): { value: V; confirm: Confirmation } | undefined {
    const epoch = this.#epoch;
    const entry = this.#entries.get(id, now);
    if (!entry || !epoch) return undefined;
    return {
      value: entry.value,
      confirm: {
        keys: entry.keys,
        matches: (values) => {
          if (values !== undefined && epoch.versionOf(values) === entry.version) return true;
          this.#entries.delete(id);
          return false;
        },
      },
    };
  }

  /** The subject's epoch, read before a lookup; undefined when it cannot be read. */
  async before(subject: S): Promise<EpochRead | undefined> {
    const epoch = this.#epoch;
    if (!epoch) return undefined;
    try {
      return { version: await epoch.current(subject), keys: epoch.keysOf(subject) };
    } catch {
      return undefined;
    }
  }

  /** Keeps `value`, looked up at epoch `read` (none: not kept), until `expiresAt`. */
  keep(id: string, value: V, read: EpochRead | undefined, expiresAt: number): void {
    if (read !== undefined) this.#entries.set(id, { value, ...read }, expiresAt);
  }
}
