/**
 * Error reporting: where unexpected failures go besides the log, with what the documentation
 * promises each report carries (request id, API key id (never the key), error type, response
 * time, severity).
 *
 * @module
 */

/** What is known about the request an error happened in. Never a credential. */
export interface ErrorContext {
  requestId: string;
  function: string;
  route: string;
  method: string;
  keyId?: string | undefined;
  userId?: string | undefined;
  code: string;
  responseTimeMs: number;
  level: "error" | "warning" | "fatal";
}

/** Receives unexpected errors. Implementations must not throw and must not block the response. */
export interface ErrorReporter {
  capture(error: unknown, context: ErrorContext): void;
  /** Sends what is queued (shutdown, tests). */
  flush(timeoutMs?: number): Promise<boolean>;
}

/** Reports nothing: the default when no error tracker is configured. */
export const noopReporter: ErrorReporter = {
  capture() {},
  flush: () => Promise.resolve(true),
};
