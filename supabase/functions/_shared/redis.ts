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
