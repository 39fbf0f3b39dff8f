/**
 * A small bounded map with per-entry expiry and least-recently-used eviction, for the per-isolate
 * caches of the hot path. `Map` keeps insertion order, so re-inserting on read makes the first
 * key the least recently used.
 *
 * @module
 */

/** A bounded, expiring cache. */
export class BoundedCache<K, V> {
  readonly #entries = new Map<K, { value: V; expiresAt: number }>();

  /** @param capacity entries kept at most; 0 disables the cache. */
  constructor(readonly capacity: number) {}

  /** The live value of `key`, or undefined when absent or expired at `now`. */
  get(key: K, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Stores `value` until `expiresAt` (epoch ms), evicting the least recently used entry. */
  set(key: K, value: V, expiresAt: number): void {
    if (this.capacity <= 0) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expiresAt });
  }

  /** Removes `key`. */
  delete(key: K): void {
    this.#entries.delete(key);
  }

  /** Entries currently held (expired ones included until touched). */
  get size(): number {
    return this.#entries.size;
  }
}
