/**
 * The one place errors become responses: a catalogued code (with its documented body, its
 * `WWW-Authenticate` challenge, the rate-limit headers where a decision was made), and any
 * exception: an `ApiError` is its code, a dependency outage 503, anything else a logged 500
 * whose body says nothing of the cause.
 *
 * @module
 */
import { ApiError, errorBody, type ErrorCode, type ErrorOptions, statusOf } from "./errors.ts";
import { json, rateLimitHeaders, retryAfter } from "./respond.ts";
import { isDatabaseUnavailable } from "../db/client.ts";
import type { Decision } from "../ratelimit/limiter.ts";
import type { Logger } from "../log.ts";

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
  const { decision, headers, ...options } = answer;
  const response = json(errorBody(code, requestId, options), statusOf(code), headers);
  if (decision) rateLimitHeaders(response.headers, decision, now);
  return response;
}

/** 429 with `Retry-After`, and `retry_after` in the body, from one clock reading. */
export function limitedResponse(
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
