/**
 * The phases of one request, for its `Server-Timing` header.
 *
 * @module
 */

/**
 * Per-phase durations for `Server-Timing`.
 *
 * Reading the clock is not free (`performance.now()` costs about 1.7 µs on Deno 2.1 here, as
 * much as a SHA-256 of a key), so phases that follow one another are laps: each reads the clock
 * once, and lasts from the previous lap (or the request's start) to now.
 */
export class Timing {
  readonly #phases: Array<[string, number]> = [];
  #mark: number;

  /** `start`: when the request started, on `performance.now()`'s clock. */
  constructor(start: number = performance.now()) {
    this.#mark = start;
  }

  /** Records a phase's duration in milliseconds. */
  add(name: string, ms: number): void {
    this.#phases.push([name, ms]);
  }

  /** Ends a phase that began at the previous lap (or the start) and records it. */
  lap(name: string): void {
    const now = performance.now();
    this.add(name, now - this.#mark);
    this.#mark = now;
  }

  /** Runs `fn`, recording its duration under `name`. */
  async measure<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.#mark = performance.now();
      this.add(name, this.#mark - start);
    }
  }

  /** The `Server-Timing` header value. */
  header(): string {
    return this.#phases.map(([n, ms]) => `${n};dur=${ms.toFixed(2)}`).join(", ");
  }
}
