/**
 * What the admin operations share: the query handle they take, their errors, and how those
 * reach the operator without leaking secrets.
 *
 * @module
 */
import type postgres from "postgres";

/** Anything that runs queries: a client or a transaction. */
export type Queryable = postgres.ISql;

/**
 * An error meant for the operator: `exitCode` 2 for bad input (validation, unknown user, tier
 * or key), 1 for everything else.
 */
export class AdminError extends Error {
  /** The CLI's exit code for this error. */
  readonly exitCode: 1 | 2;

  constructor(message: string, exitCode: 1 | 2 = 2) {
    super(message);
    this.name = "AdminError";
    this.exitCode = exitCode;
  }
}

/** API keys, bytea hex and SHA-256 renderings: never shown even if a message carried them. */
const SECRET_PATTERN =
  /sk_(?:live|test)_[A-Za-z0-9_-]+|\\x[0-9a-fA-F]{16,}|\b[0-9a-fA-F]{64}\b|[A-Za-z0-9+/]{43}=/g;

/** Removes anything that looks like a key or a hash from a message. */
export function redact(message: string): string {
  return message.replace(SECRET_PATTERN, "[redacted]");
}

/**
 * The one-line message and exit code for any error. Postgres errors give their message and
 * SQLSTATE only: never `detail` (it can quote a row, hash included) nor query parameters.
 * Data exceptions (22xxx) and check violations (23514) are bad input, exit 2.
 */
export function describeError(error: unknown): { message: string; exitCode: 1 | 2 } {
  if (error instanceof AdminError) {
    return { message: redact(error.message), exitCode: error.exitCode };
  }
  if (error instanceof Error && error.name === "PostgresError") {
    const code = String((error as { code?: unknown }).code ?? "");
    const exitCode = code.startsWith("22") || code === "23514" ? 2 : 1;
    return { message: redact(`database: ${error.message} (SQLSTATE ${code})`), exitCode };
  }
  if (error instanceof Error) return { message: redact(error.message), exitCode: 1 };
  return { message: redact(String(error)), exitCode: 1 };
}
