/**
 * What an exception becomes: a catalogued error, a 503 when a dependency is unavailable, or a
 * logged 500 `INTERNAL_ERROR` whose body says nothing of the cause.
 *
 * @module
 */
import { ApiError, errorBody, type ErrorCode, statusOf } from "./errors.ts";
import { json } from "./respond.ts";
import { isDatabaseUnavailable } from "../db/client.ts";
import type { Logger } from "../log.ts";

/** The code an exception is answered with. */
export function codeOf(error: unknown): ErrorCode {
  if (error instanceof ApiError) return error.code;
  return isDatabaseUnavailable(error) ? "SERVICE_UNAVAILABLE" : "INTERNAL_ERROR";
}

/** The response to an exception. */
export function failure(
  error: unknown,
  requestId: string,
  log: Logger,
  jwtRoute: boolean,
): Response {
  const code = codeOf(error);
  if (error instanceof ApiError) {
    return json(errorBody(code, requestId, { ...error.options, jwtRoute }), statusOf(code));
  }
  if (code === "SERVICE_UNAVAILABLE") {
    log.warn("dependency unavailable", { err: error });
    return json(errorBody(code, requestId, { jwtRoute }), 503, { "Retry-After": "1" });
  }
  log.error("unhandled error", { err: error });
  return json(errorBody("INTERNAL_ERROR", requestId, { jwtRoute }), 500);
}
