/**
 * The Upstash Redis client, one per isolate.
 *
 * Auto-pipelining batches every command issued in the same tick into one REST request, which is
 * how the two rate-limit windows of a key cost one round trip. Retries are off: a slow or absent
 * Redis must cost a request a bounded wait (see ratelimit/limiter.ts), not five backoffs.
 *
 * @module
 */
import { Redis } from "@upstash/redis";

/** Builds the client for the configured REST endpoint. */
export function createRedis(url: string, token: string): Redis {
  return new Redis({
    url,
    token,
    enableAutoPipelining: true,
    enableTelemetry: false,
    retry: false,
  });
}

/** Races a promise against a deadline; rejects with a `TimeoutError` after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DOMException(`${what} timed out after ${ms} ms`, "TimeoutError")),
      ms,
    );
  });
  // The loser may still settle later; mark it handled so it never becomes an unhandled rejection.
  promise.catch(() => {});
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
