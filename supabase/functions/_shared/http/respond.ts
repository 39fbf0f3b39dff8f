/**
 * Response building: JSON bodies, CORS and the headers every response carries.
 *
 * @module
 */
import type { Decision } from "../ratelimit/limiter.ts";

/** Headers a browser client may read (CORS `Access-Control-Expose-Headers`). */
export const EXPOSED_HEADERS = [
  "X-Request-ID",
  "X-Response-Time",
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "Retry-After",
  "RateLimit",
  "RateLimit-Policy",
  "Server-Timing",
].join(", ");

/** Request headers a browser client may send; supabase-js adds apikey and x-client-info. */
export const ALLOWED_HEADERS = [
  "authorization",
  "x-api-key",
  "content-type",
  "apikey",
  "x-client-info",
].join(", ");

/** CORS headers of every response. The API authenticates by header, never by cookie. */
export function corsHeaders(headers: Headers): void {
  headers.set("Access-Control-Allow-Origin", "*");
  headers.set("Access-Control-Expose-Headers", EXPOSED_HEADERS);
}

/** A JSON response. */
export function json(body: unknown, status = 200, init: HeadersInit = {}): Response {
  const text = JSON.stringify(body);
  if (init instanceof Headers || Array.isArray(init)) {
    const headers = new Headers(init);
    headers.set("Content-Type", "application/json");
    return new Response(text, { status, headers });
  }
  // A plain record is the cheapest init a Response takes (a Headers object is copied entry by
  // entry); most answers have no headers of their own here.
  return new Response(text, { status, headers: { ...init, "Content-Type": "application/json" } });
}

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

  /** Awaits `work`, then ends the phase `name` (a {@link lap}) whether it settled or failed. */
  async after<T>(name: string, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } finally {
      this.lap(name);
    }
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

/**
 * The documented `X-RateLimit-*` headers (tightest window, reset as epoch seconds) and the
 * IETF httpapi draft's `RateLimit-Policy` (every window) and `RateLimit` (tightest window,
 * seconds until reset).
 */
export function rateLimitHeaders(headers: Headers, d: Decision, now: number): void {
  const resetIn = Math.max(0, Math.ceil((d.reset - now) / 1000));
  headers.set("X-RateLimit-Limit", String(d.limit));
  headers.set("X-RateLimit-Remaining", String(d.remaining));
  headers.set("X-RateLimit-Reset", String(Math.ceil(d.reset / 1000)));
  headers.set(
    "RateLimit-Policy",
    d.policies.map((p) => `"${p.name}";q=${p.limit};w=${p.seconds}`).join(", "),
  );
  headers.set("RateLimit", `"${d.window}";r=${d.remaining};t=${resetIn}`);
  if (!d.allowed) headers.set("Retry-After", String(retryAfter(d, now)));
}

/** Seconds until the decision's window resets, at least 1. */
export function retryAfter(d: Decision, now: number): number {
  return Math.max(1, Math.ceil((d.reset - now) / 1000));
}
