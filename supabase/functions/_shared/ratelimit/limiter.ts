/**
 * Rate limits with @upstash/ratelimit: sliding windows kept in Redis, one limiter per
 * (scope, window, limit), built once per isolate and reused.
 *
 * A subject may have several windows (an API key has a minute and a day). They are checked in
 * one Redis round trip (the client joins commands issued together: redis.ts) and, when one
 * denies while another allowed, the allowed window gets its token back: a request refused by one
 * window consumes no quota of another.
 *
 * A subject that a window denied is refused from memory until a token of that window frees up
 * (the library's ephemeral cache, see `CappedBlocks`), and then no window is asked at all: a
 * flood from a limited key or address costs no Redis command and no refund.
 *
 * When Redis fails or does not answer in time (the client cuts every command off after the Redis
 * timeout), the decision is `degraded`: with fail mode "open" the request goes through
 * (authentication never depends on Redis), with "closed" it is refused with 503.
 *
 * @module
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";

type Duration = `${number} ${"s" | "m" | "h" | "d"}`;

/** One window of a subject's limits. */
export interface Window {
  /** Name used in Redis keys and diagnostics, e.g. `minute`. */
  name: string;
  limit: number;
  duration: Duration;
}

/** The outcome for the tightest window (fewest remaining), which the headers report. */
export interface Decision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** When the reported window resets, in epoch milliseconds. */
  reset: number;
  window: string;
  /** Every window checked, for the `RateLimit-Policy` header. */
  policies: ReadonlyArray<{ name: string; limit: number; seconds: number }>;
  /** Redis did not answer in time or failed; nothing was counted. */
  degraded: boolean;
}

/** Checks and consumes rate-limit quota. */
export interface RateLimiter {
  check(scope: string, identifier: string, windows: readonly Window[]): Promise<Decision>;
  /** Gives back the token a `check` took in every window (after the response). */
  refund(scope: string, identifier: string, windows: readonly Window[]): void;
}

/** Options of {@link createRateLimiter}. */
export interface LimiterOptions {
  /** A client whose calls are bounded (redis.ts): the limiter sets no timer of its own. */
  redis: Redis;
  prefix: string;
  /** Runs work after the response (refunds); defaults to fire-and-forget. */
  background?: (work: Promise<unknown>) => void;
  onError?: (error: unknown) => void;
  /** The clock, epoch ms. */
  now?: () => number;
}

const DURATION_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function durationMs(duration: Duration): number {
  const [n, unit] = duration.split(" ");
  return Number(n) * (DURATION_MS[unit ?? "s"] ?? 1000);
}

function policiesOf(windows: readonly Window[]): Decision["policies"] {
  return windows.map((w) => ({
    name: w.name,
    limit: w.limit,
    seconds: durationMs(w.duration) / 1000,
  }));
}

/** The ephemeral cache's map: identifier -> blocked until; every block capped at `maxMs`. */
class CappedBlocks extends Map<string, number> {
  constructor(private readonly maxMs: number, private readonly now: () => number) {
    super();
  }
  override set(identifier: string, until: number): this {
    return super.set(identifier, Math.min(until, this.now() + this.maxMs));
  }
}

/** The library's limiter of one window, and the memory blocks it keeps. */
interface WindowLimiter {
  ratelimit: Ratelimit;
  /** Until when (epoch ms) a denied identifier is refused from memory, if it is. */
  blockedUntil(identifier: string): number | undefined;
}

/** Creates the limiter shared by every request of the isolate. */
export function createRateLimiter(options: LimiterOptions): RateLimiter {
  const limiters = new Map<string, WindowLimiter>();
  const background = options.background ?? ((work) => void work.catch(() => {}));
  const now = options.now ?? Date.now;

  const windowLimiter = (scope: string, w: Window): WindowLimiter => {
    const id = `${scope}/${w.name}/${w.limit}/${w.duration}`;
    let limiter = limiters.get(id);
    if (!limiter) {
      // The prefix names the window, not the limit: a tier whose limit changes keeps its count.
      const prefix = `${options.prefix}:rl:${scope}:${w.name}`;
      const blocks = new CappedBlocks(
        Math.max(1000, Math.ceil(durationMs(w.duration) / w.limit)),
        now,
      );
      const ratelimit = new Ratelimit({
        redis: options.redis,
        prefix,
        limiter: Ratelimit.slidingWindow(w.limit, w.duration),
        analytics: false,
        // The client bounds the wait (redis.ts); the library's timeout would answer "allowed".
        timeout: 0,
        // Blocks a denied identifier in memory, so denied floods cost little I/O; but only for
        // the time one token takes to free up (window / limit), not until the window resets:
        // a sliding window refills during the next window, and blocking to its end halved a
        // saturating client's rate (N in one minute, 1 in the next).
        ephemeralCache: blocks,
      });
      limiter = {
        ratelimit,
        // The library's key of an identifier in its cache and in Redis.
        blockedUntil: (identifier) => blocks.get(`${prefix}:${identifier}`),
      };
      limiters.set(id, limiter);
    }
    return limiter;
  };
  const limiterFor = (scope: string, w: Window): Ratelimit => windowLimiter(scope, w).ratelimit;

  /** The denial of a window that blocks the identifier in memory, if one does. */
  const blocked = (
    scope: string,
    identifier: string,
    windows: readonly Window[],
  ): Decision | undefined => {
    const t = now();
    for (const w of windows) {
      const until = windowLimiter(scope, w).blockedUntil(identifier);
      if (until === undefined || until < t) continue;
      // As the library answers a memory block (reason "cacheBlock"), with the window's own reset.
      const ms = durationMs(w.duration);
      return {
        allowed: false,
        limit: w.limit,
        remaining: 0,
        reset: (Math.floor(t / ms) + 1) * ms,
        window: w.name,
        policies: policiesOf(windows),
        degraded: false,
      };
    }
    return undefined;
  };

  return {
    refund(scope, identifier, windows) {
      for (const w of windows) background(limiterFor(scope, w).limit(identifier, { rate: -1 }));
    },
    async check(scope, identifier, windows) {
      const denied = blocked(scope, identifier, windows);
      if (denied) return denied;
      const limiters = windows.map((w) => limiterFor(scope, w));
      try {
        const results = (await Promise.all(limiters.map((l) => l.limit(identifier)))).map(
          (r, i) => {
            // A memory block ends early (see CappedBlocks); the window still resets at its end.
            if (r.reason !== "cacheBlock") return r;
            const ms = durationMs(windows[i]!.duration);
            return { ...r, reset: (Math.floor(now() / ms) + 1) * ms };
          },
        );
        const denied = results.some((r) => !r.success);
        if (denied) {
          results.forEach((r, i) => {
            const limiter = limiters[i];
            if (r.success && r.reason === undefined && limiter) {
              background(limiter.limit(identifier, { rate: -1 }));
            }
          });
        }
        let pick = 0;
        results.forEach((r, i) => {
          const best = results[pick]!;
          if (denied ? !r.success && best.success : r.remaining < best.remaining) pick = i;
        });
        const chosen = results[pick]!;
        return {
          allowed: !denied,
          limit: chosen.limit,
          remaining: chosen.remaining,
          reset: chosen.reset,
          window: windows[pick]!.name,
          policies: policiesOf(windows),
          degraded: false,
        };
      } catch (error) {
        options.onError?.(error);
        const first = windows[0]!;
        return {
          allowed: true,
          limit: first.limit,
          remaining: first.limit,
          reset: now() + durationMs(first.duration),
          window: first.name,
          policies: policiesOf(windows),
          degraded: true,
        };
      }
    },
  };
}
