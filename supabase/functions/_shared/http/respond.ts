/**
 * Response building: JSON bodies, CORS and the headers every response carries.
 *
 * @module
 */

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
  const headers = new Headers(init);
  headers.set("Content-Type", "application/json");
  return new Response(JSON.stringify(body), { status, headers });
}

/** Per-phase durations for `Server-Timing`. */
export class Timing {
  readonly #phases: Array<[string, number]> = [];

  /** Records a phase's duration in milliseconds. */
  add(name: string, ms: number): void {
    this.#phases.push([name, ms]);
  }

  /** Runs `fn`, recording its duration under `name`. */
  async measure<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.add(name, performance.now() - start);
    }
  }

  /** The `Server-Timing` header value. */
  header(): string {
    return this.#phases.map(([n, ms]) => `${n};dur=${ms.toFixed(2)}`).join(", ");
  }
}
