/**
 * When a failed delivery is tried again: exponential backoff with "equal jitter". The n-th
 * retry waits between half and all of `base · 2^(n-1)`, capped at `max`, so the retries of many
 * deliveries that failed together (a receiver's outage) spread out instead of arriving at once.
 * With the defaults (1 minute, doubling to at most 6 hours) a delivery is tried some 20 to 32
 * times (25 on average) in the three days it is retried for; the last gaps are 3 to 6 hours.
 *
 * @module
 */

/** Delay in ms before the next attempt, after `attempts` attempts (1 or more) have failed. */
export function retryDelayMs(
  attempts: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 40)));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
