/**
 * The response builder, the one place answers are made: JSON bodies, the answer to each refusal
 * of admission, the one place errors become responses (a catalogued code with its documented
 * body, its `WWW-Authenticate` challenge and the rate-limit headers where a decision was made;
 * any exception: an `ApiError` is its code, a dependency outage 503, anything else a logged 500
 * whose body says nothing of the cause), and the headers every response carries.
 *
 * @module
 */
import type { Admission } from "./admission.ts";
import { isDatabaseUnavailable } from "../db/client.ts";
import type { Logger } from "../log.ts";
import type { Decision } from "../ratelimit/limiter.ts";
import type { RequestState } from "./context.ts";
import { ApiError, errorBody, type ErrorCode, type ErrorOptions, statusOf } from "../errors.ts";

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

/** How an error answer is built. */
export interface ErrorAnswer extends ErrorOptions {
  /** The rate-limit decision made before the error, whose headers the answer carries. */
  decision?: Decision | undefined;
  headers?: HeadersInit | undefined;
}

/** The response of a catalogued error. */
export function errorResponse(
  code: ErrorCode,
  requestId: string,
  now: number,
  answer: ErrorAnswer = {},
): Response {
  const { decision, headers, challenge, ...options } = answer;
  const response = json(errorBody(code, requestId, options), statusOf(code), headers);
  if (challenge !== undefined) response.headers.set("WWW-Authenticate", challenge);
  if (decision) rateLimitHeaders(response.headers, decision, now);
  return response;
}

/** 429 with `Retry-After`, and `retry_after` in the body, from one clock reading. */
function limitedResponse(
  decision: Decision,
  requestId: string,
  now: number,
  jwtRoute: boolean,
): Response {
  const seconds = retryAfter(decision, now);
  return errorResponse("RATE_LIMIT_EXCEEDED", requestId, now, {
    message: `Rate limit exceeded. Try again in ${seconds} seconds.`,
    extra: { retry_after: seconds },
    jwtRoute,
    decision,
  });
}

/** The code an exception is answered with. */
export function codeOf(error: unknown): ErrorCode {
  if (error instanceof ApiError) return error.code;
  return isDatabaseUnavailable(error) ? "SERVICE_UNAVAILABLE" : "INTERNAL_ERROR";
}

/**
 * The response to an exception thrown past admission (the handler's, or the pipeline's own),
 * carrying the rate-limit headers of the decision already made.
 */
export function exceptionResponse(
  error: unknown,
  requestId: string,
  now: number,
  log: Logger,
  answer: { jwtRoute: boolean; decision?: Decision | undefined },
): Response {
  const code = codeOf(error);
  if (error instanceof ApiError) {
    return errorResponse(code, requestId, now, { ...error.options, ...answer });
  }
  if (code === "SERVICE_UNAVAILABLE") {
    log.warn("dependency unavailable", { err: error });
    return errorResponse(code, requestId, now, { ...answer, headers: { "Retry-After": "1" } });
  }
  log.error("unhandled error", { err: error });
  return errorResponse("INTERNAL_ERROR", requestId, now, answer);
}

/** The answer to a CORS preflight of a route. */
export function preflightResponse(allow: string): Response {
  const headers = new Headers({
    Allow: allow,
    "Access-Control-Allow-Methods": allow,
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Max-Age": "86400",
  });
  return new Response(null, { status: 204, headers });
}

/** The answer to a request admission did not let through. */
export function refusalResponse(
  a: Exclude<Admission, { kind: "admitted" }>,
  requestId: string,
  now: number,
  jwtRoute: boolean,
): Response {
  switch (a.kind) {
    case "limited":
      return limitedResponse(a.decision, requestId, now, jwtRoute);
    case "unavailable":
      return errorResponse("SERVICE_UNAVAILABLE", requestId, now, {
        jwtRoute,
        headers: { "Retry-After": "1" },
      });
    case "refused":
      return errorResponse(a.code, requestId, now, {
        jwtRoute,
        decision: a.decision,
        ...(a.allow === undefined ? {} : { headers: { Allow: a.allow } }),
        ...(a.challenge === undefined ? {} : { challenge: a.challenge }),
        ...(a.message === undefined ? {} : { message: a.message }),
        ...(a.extra === undefined ? {} : { extra: a.extra }),
      });
  }
}

/**
 * The headers every answer carries (request id, response time, caching, CORS, Server-Timing),
 * set on the request's response; its status and duration are kept on the request's state.
 */
export function finish(c: RequestState, response: Response): Response {
  const elapsed = performance.now() - c.started;
  const headers = response.headers;
  headers.set("X-Request-ID", c.requestId);
  headers.set("X-Response-Time", elapsed.toFixed(2));
  if (!headers.has("Cache-Control")) headers.set("Cache-Control", "no-store");
  corsHeaders(headers);
  const serverTiming = c.timing.header();
  if (serverTiming) headers.set("Server-Timing", serverTiming);
  c.status = response.status;
  c.elapsedMs = elapsed;
  return response;
}

/** The answer to every request of an isolate whose configuration is invalid: 503. */
export function misconfiguredResponse(): Response {
  const requestId = crypto.randomUUID();
  const response = errorResponse("CONFIGURATION_INVALID", requestId, 0, {
    headers: { "Retry-After": "30" },
  });
  response.headers.set("X-Request-ID", requestId);
  response.headers.set("X-Response-Time", "0.00");
  response.headers.set("Cache-Control", "no-store");
  corsHeaders(response.headers);
  return response;
}
