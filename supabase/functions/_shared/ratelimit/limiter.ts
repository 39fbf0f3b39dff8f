/**
 * Rate limits kept in Redis as sliding windows, built once per isolate and reused.
 *
 * A subject with one window (a user's hour, an address's hour) runs @upstash/ratelimit's
 * sliding-window algorithm (`Ratelimit.slidingWindow`, its Lua script and its ephemeral cache
 * protocol) directly, with the keys `Ratelimit.limit` would use, rather than through the
 * `Ratelimit` class (its deny lists, analytics and timeout race are all off here): one command.
 *
 * A subject with several windows (an API key's minute and day), or whose check must also read
 * keys (a cached API key's state epoch), runs one script of our own (windows_script.ts): every
 * window checked, and a token taken in each only if all allow, atomically, with the reads in the
 * same command. The arithmetic and the keys are the library's, so counts do not change. One
 * Upstash command a request, and no refund: a request refused by one window never took a token
 * of another.
 *
 * A subject that a window denied is refused from memory until a token of that window frees up
 * (the library's ephemeral cache, see `MemoryBlocks`), and then no window is asked at all: a
 * flood from a limited key or address costs no rate-limit command (a check that must read keys
 * still reads them, in one command).
 *
 * When Redis fails or does not answer in time (the client cuts every command off after the Redis
 * timeout), the decision is `degraded`: with fail mode "open" the request goes through
 * (authentication never depends on Redis), with "closed" it is refused with 503.
 *
 * @module
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import { runWindows, type ScriptWindow } from "./windows_script.ts";
import { type Logger, throttled } from "../log.ts";

type Duration = `${number} ${"s" | "m" | "h" | "d"}`;

/** One window of a subject's limits. */
export interface Window {
  /** Name used in Redis keys and diagnostics, e.g. `minute`. */
  name: string;
  limit: number;
  duration: Duration;
  /**
   * The window's own subject, counted across the check's identifiers (an app's ceiling across
   * all its users); else the check's identifier.
   */
  identifier?: string | undefined;
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
  /**
   * The values of the keys a check was asked to read, read with its decision (null for a missing
   * key); absent when they could not be read.
   */
  reads?: readonly unknown[];
}

/** Checks and consumes rate-limit quota. */
export interface RateLimiter {
  /** Counts a request in every window; `reads` are keys read in the same command. */
  check(
    scope: string,
    identifier: string,
    windows: readonly Window[],
    reads?: readonly string[],
  ): Promise<Decision>;
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
  /** Told of each Redis failure, and of {@link LimiterFailure what failed}. */
  onError?: (error: unknown, failed: LimiterFailure) => void;
  /** The clock, epoch ms. */
  now?: () => number;
}

/**
 * What a Redis failure cost: `limits`, no window could be checked (the decision is degraded:
 * fail mode decides); `reads`, a subject refused from memory had its keys (a cached key's
 * epoch) left unread, so its refusal stands and a cached key is looked up again.
 */
export type LimiterFailure = "limits" | "reads";

/** The warnings of a limiter's failures, each kind throttled on its own (see `throttled`). */
export function limiterWarnings(
  log: Logger,
  now: () => number,
): (error: unknown, failed: LimiterFailure) => void {
  const warn = (msg: string) =>
    throttled((error, suppressed) => log.warn(msg, { err: error, suppressed }), now);
  const warnings = {
    limits: warn("rate limiter unavailable; requests pass (fail mode open) or get 503"),
    reads: warn("key state not read (the rate limit refused from memory); key looked up again"),
  };
  return (error, failed) => warnings[failed](error);
}

const DURATION_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function durationMs(duration: Duration): number {
  const [n, unit] = duration.split(" ");
  return Number(n) * (DURATION_MS[unit ?? "s"] ?? 1000);
}

/** When the window of length `ms` that holds `t` ends (windows are aligned to the epoch). */
function windowEnd(t: number, ms: number): number {
  return (Math.floor(t / ms) + 1) * ms;
}

function policiesOf(windows: readonly Window[]): Decision["policies"] {
  return windows.map((w) => ({
    name: w.name,
    limit: w.limit,
    seconds: durationMs(w.duration) / 1000,
  }));
}

/** What the library's algorithms are given: the client, the key prefix, the memory blocks. */
type AlgorithmContext = Parameters<Limiting["limit"]>[0];
/** One window's sliding-window algorithm of the library. */
type Limiting = ReturnType<ReturnType<typeof Ratelimit.slidingWindow>>;
/** The library's answer of one window. */
type WindowAnswer = Awaited<ReturnType<Limiting["limit"]>>;

/**
 * The library's ephemeral cache for one window: identifier -> blocked until (epoch ms), each
 * block capped at `maxMs`, on the limiter's clock. The algorithm only blocks, asks and unblocks.
 */
class MemoryBlocks implements NonNullable<AlgorithmContext["cache"]> {
  readonly #until = new Map<string, number>();
  constructor(private readonly maxMs: number, private readonly now: () => number) {}

  /** Until when an identifier is blocked, if it is now. */
  until(identifier: string): number | undefined {
    const until = this.#until.get(identifier);
    if (until === undefined) return undefined;
    if (until >= this.now()) return until;
    this.#until.delete(identifier);
    return undefined;
  }
  isBlocked(identifier: string): { blocked: boolean; reset: number } {
    const until = this.until(identifier);
    return until === undefined ? { blocked: false, reset: 0 } : { blocked: true, reset: until };
  }
  blockUntil(identifier: string, reset: number): void {
    this.#until.set(identifier, Math.min(reset, this.now() + this.maxMs));
  }
  set(key: string, value: number): void {
    this.blockUntil(key, value);
  }
  get(key: string): number | null {
    return this.#until.get(key) ?? null;
  }
  incr(key: string, incrementAmount = 1): number {
    const value = (this.#until.get(key) ?? 0) + incrementAmount;
    this.#until.set(key, value);
    return value;
  }
  pop(key: string): void {
    this.#until.delete(key);
  }
  empty(): void {
    this.#until.clear();
  }
  size(): number {
    return this.#until.size;
  }
}

/** One window of one scope: the library's algorithm, its context and memory blocks. */
interface WindowLimiter {
  /** The window as our own script sees it (same keys as the library's). */
  script: ScriptWindow;
  /** Takes (or, with rate -1, gives back) a token of the identifier's window. */
  limit(identifier: string, rate?: number): Promise<WindowAnswer>;
  /** Until when (epoch ms) a denied identifier is refused from memory, if it is. */
  blockedUntil(identifier: string): number | undefined;
  /** Refuses the identifier from memory until `reset` (capped as the library caps it). */
  block(identifier: string, reset: number): void;
  /** Ends a memory block (a token was given back). */
  unblock(identifier: string): void;
}

/** The windows as the script sees them, each with its own subject where it has one. */
function scriptsOf(limiters: readonly WindowLimiter[], windows: readonly Window[]): ScriptWindow[] {
  return limiters.map((l, i) => {
    const identifier = windows[i]!.identifier;
    return identifier === undefined ? l.script : { ...l.script, identifier };
  });
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
      // Blocks a denied identifier in memory, so denied floods cost no I/O; but only for the
      // time one token takes to free up (window / limit), not until the window resets: a
      // sliding window refills during the next window, and blocking to its end halved a
      // saturating client's rate (N in one minute, 1 in the next).
      const blocks = new MemoryBlocks(
        Math.max(1000, Math.ceil(durationMs(w.duration) / w.limit)),
        now,
      );
      const algorithm = Ratelimit.slidingWindow(w.limit, w.duration)();
      // The same client: the library's declarations name @upstash/redis's CommonJS typings.
      const redis = options.redis as unknown as AlgorithmContext["redis"];
      const context: AlgorithmContext = { redis, prefix, cache: blocks };
      limiter = {
        script: { prefix, limit: w.limit, ms: durationMs(w.duration) },
        // The key `Ratelimit.limit` would use (prefix:identifier), in Redis and in memory.
        limit: (identifier, rate) => algorithm.limit(context, `${prefix}:${identifier}`, rate),
        blockedUntil: (identifier) => blocks.until(`${prefix}:${identifier}`),
        block: (identifier, reset) => blocks.blockUntil(`${prefix}:${identifier}`, reset),
        unblock: (identifier) => blocks.pop(`${prefix}:${identifier}`),
      };
      limiters.set(id, limiter);
    }
    return limiter;
  };

  /** The denial of a window that blocks the identifier in memory, if one does. */
  const blocked = (
    limiters: readonly WindowLimiter[],
    identifier: string,
    windows: readonly Window[],
  ): Decision | undefined => {
    const t = now();
    for (const [i, w] of windows.entries()) {
      if (limiters[i]!.blockedUntil(w.identifier ?? identifier) === undefined) continue;
      // As the library answers a memory block (reason "cacheBlock"), with the window's own reset.
      const ms = durationMs(w.duration);
      return {
        allowed: false,
        limit: w.limit,
        remaining: 0,
        reset: windowEnd(t, ms),
        window: w.name,
        policies: policiesOf(windows),
        degraded: false,
      };
    }
    return undefined;
  };

  const degraded = (windows: readonly Window[], error: unknown): Decision => {
    options.onError?.(error, "limits");
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
  };

  /** One window, through the library's algorithm: one command. */
  const single = async (limiter: WindowLimiter, identifier: string, w: Window) => {
    const r = await limiter.limit(identifier);
    return {
      allowed: r.success,
      limit: r.limit,
      remaining: r.remaining,
      reset: r.reset,
      window: w.name,
      policies: policiesOf([w]),
      degraded: false,
    };
  };

  /** Every window and the reads, through our script: one command. */
  const several = async (
    limiters: readonly WindowLimiter[],
    identifier: string,
    windows: readonly Window[],
    reads: readonly string[],
  ): Promise<Decision> => {
    const t = now();
    const answer = await runWindows(
      options.redis,
      identifier,
      scriptsOf(limiters, windows),
      t,
      1,
      reads,
    );
    const resetOf = (i: number) => windowEnd(t, limiters[i]!.script.ms);
    let pick = answer.denied;
    if (pick >= 0) limiters[pick]!.block(windows[pick]!.identifier ?? identifier, resetOf(pick));
    else {
      pick = 0;
      answer.remaining.forEach((r, i) => {
        if (r < answer.remaining[pick]!) pick = i;
      });
    }
    return {
      allowed: answer.denied < 0,
      limit: windows[pick]!.limit,
      remaining: Math.max(0, answer.remaining[pick]!),
      reset: resetOf(pick),
      window: windows[pick]!.name,
      policies: policiesOf(windows),
      degraded: false,
      reads: answer.reads,
    };
  };

  return {
    refund(scope, identifier, windows) {
      const limiters = windows.map((w) => windowLimiter(scope, w));
      limiters.forEach((l, i) => l.unblock(windows[i]!.identifier ?? identifier));
      background(runWindows(options.redis, identifier, scriptsOf(limiters, windows), now(), -1));
    },
    async check(scope, identifier, windows, reads = []) {
      const limiters = windows.map((w) => windowLimiter(scope, w));
      const held = blocked(limiters, identifier, windows);
      if (held && reads.length === 0) return held;
      try {
        if (held) return { ...held, reads: await options.redis.mget(...reads) };
        // No window blocks the identifier now (and the algorithm asks the same blocks on the same
        // clock), so every answer below comes from Redis.
        if (limiters.length === 1 && reads.length === 0 && windows[0]!.identifier === undefined) {
          return await single(limiters[0]!, identifier, windows[0]!);
        }
        return await several(limiters, identifier, windows, reads);
      } catch (error) {
        if (!held) return degraded(windows, error);
        options.onError?.(error, "reads");
        return held; // without its reads: a cached key is then looked up again
      }
    },
  };
}
