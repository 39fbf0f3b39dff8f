/**
 * PostgreSQL access with postgres.js: one pool per isolate, and the one way user data is read.
 *
 * {@link asCaller} runs a callback in a transaction that first switches to the `authenticated`
 * role and sets `request.jwt.claims`, exactly as PostgREST does, so the RLS policies of the
 * migrations decide what the query sees. The service connection itself is only used for the
 * key-verification function and the request log.
 *
 * @module
 */
import postgres from "postgres";
import { withTimeout } from "../deadline.ts";

/** A postgres.js client or transaction. */
export type Sql = postgres.Sql;
/** A transaction handle inside {@link asCaller}. */
export type Tx = postgres.TransactionSql;

/** Options of {@link createSql}. */
export interface SqlOptions {
  poolMax: number;
  prepare: boolean;
  timeoutMs: number;
}

/** Creates the isolate's pool. Connections open lazily, so creation never fails. */
export function createSql(url: string, options: SqlOptions): Sql {
  return postgres(url, {
    max: options.poolMax,
    // Transaction-mode poolers (Supavisor on 6543) need unnamed statements.
    prepare: options.prepare,
    idle_timeout: 30,
    // Seconds, fractions allowed: a database that does not answer costs a request this long.
    connect_timeout: options.timeoutMs / 1000,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    connection: {
      application_name: "torvus-api",
      statement_timeout: options.timeoutMs,
      idle_in_transaction_session_timeout: options.timeoutMs * 2,
    },
  });
}

/**
 * Runs `fn` in a transaction as the `authenticated` role with the caller's claims, so that
 * RLS applies. The settings are transaction-local and vanish at commit or rollback.
 */
export function asCaller<T>(
  sql: Sql,
  claims: Record<string, unknown>,
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  return withDbDeadline(
    sql.begin(async (tx) => {
      // Pipelined: the settings and the caller's first query leave in one write and share one
      // round trip; the transaction's connection runs them in order.
      const settings = tx`select set_config('role', 'authenticated', true),
      set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`.execute();
      const result = Promise.resolve(fn(tx));
      result.catch(() => {}); // if the settings fail, their error is the one reported
      await settings;
      return await result;
    }) as Promise<T>,
  );
}

/** The longest any database operation may take before it counts as unavailable. */
let deadlineMs = 5500;

/** Sets the deadline of {@link withDbDeadline} (the configured timeout plus a margin). */
export function setDbDeadline(ms: number): void {
  deadlineMs = ms;
}

/** Raised when a database operation outlives its deadline. */
export class DatabaseTimeoutError extends Error {
  override name = "DatabaseTimeoutError";
  readonly code = "DB_DEADLINE";
}

/**
 * Bounds a database operation. postgres.js 3.4.9 can leave a promise pending forever when its
 * connection closes mid-transaction (porsager/postgres#1186, #1216); this turns that into
 * SERVICE_UNAVAILABLE instead of a request that never ends.
 */
export function withDbDeadline<T>(work: Promise<T>, ms = deadlineMs): Promise<T> {
  return withTimeout(
    work,
    ms,
    "database operation",
    () => new DatabaseTimeoutError(`database operation exceeded ${ms} ms`),
  );
}

const CONNECTION_CODES = new Set([
  "DB_DEADLINE",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "57014", // query_canceled (statement_timeout)
  "53300", // too_many_connections
]);

/** True when an error means the database is unreachable or overloaded, not that a query is wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (CONNECTION_CODES.has(code) || code.startsWith("08"))) {
    return true;
  }
  return error.name === "ConnectionRefused" || error.name === "ConnectionReset" ||
    /connect|ECONNREFUSED|terminat/i.test(error.message) && !("severity" in error);
}

/** The SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  if (error instanceof Error && "severity" in error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}
