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
import type { DbConfig } from "./settings.ts";
import { denoSocketFactory } from "./socket.ts";

/**
 * A postgres.js client, with the timeouts its transactions set and the deadline after which
 * any of its operations counts as unavailable.
 */
export type Sql = postgres.Sql & { readonly timeouts?: Timeouts; readonly deadlineMs?: number };
/** A transaction handle inside {@link asCaller}. */
export type Tx = postgres.TransactionSql;

/** Server-side limits every transaction sets for itself, in ms. */
export interface Timeouts {
  statementMs: number;
  idleInTransactionMs: number;
}

/**
 * Creates the isolate's pool. Connections open lazily, so creation never fails.
 *
 * Behind a transaction pooler a connection is shared between transactions of many clients, so
 * nothing may live in the session: statements are unnamed (no prepared statements), and the
 * only startup parameter is the application name (PgBouncer refuses others, Supavisor drops
 * them). The statement and idle-in-transaction timeouts are therefore set inside each
 * transaction ({@link inTransaction}); on a direct connection they are startup parameters too.
 */
export function createSql(db: DbConfig): Sql {
  const timeouts: Timeouts = { statementMs: db.timeoutMs, idleInTransactionMs: db.timeoutMs * 2 };
  const sql = postgres(withoutSslmode(db.url), {
    max: db.poolMax,
    prepare: db.prepare,
    // Deno's own sockets and TLS (see socket.ts), so postgres.js sees a ready socket. (The
    // option exists in postgres.js, not in its types.)
    ssl: false,
    ...{
      socket: denoSocketFactory({
        tls: db.ssl !== false,
        caCerts: db.caCerts,
        timeoutMs: db.timeoutMs,
      }),
    },
    idle_timeout: 30,
    // Seconds between attempts to reconnect after failed ones: postgres.js's default grows to
    // 20 s, so an isolate could stay away that long after the database came back.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    // Seconds, fractions allowed: a database that does not answer costs a request this long.
    connect_timeout: db.timeoutMs / 1000,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    connection: db.transactionPooler ? { application_name: "torvus-api" } : {
      application_name: "torvus-api",
      statement_timeout: timeouts.statementMs,
      idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    },
  });
  // A call that outlives the server-side timeout by half a second is cut off client-side.
  return Object.assign(sql, { timeouts, deadlineMs: db.timeoutMs + 500 });
}

/** The URL without `sslmode`, which the configuration has already turned into `ssl`. */
function withoutSslmode(url: string): string {
  const at = url.indexOf("?");
  if (at < 0) return url;
  const params = new URLSearchParams(url.slice(at + 1));
  params.delete("sslmode");
  const rest = params.toString();
  return url.slice(0, at) + (rest === "" ? "" : `?${rest}`);
}

/**
 * Runs `fn` in a transaction that first sets its own timeouts and the given settings
 * (transaction-local: they vanish at commit or rollback, and survive a transaction pooler).
 *
 * Round trips are what a transaction costs here: every socket write to the database is one
 * syscall whose loopback or network work is charged to the sender, and postgres.js's own
 * `begin()` waits for BEGIN, then for the statements, then for COMMIT. So the transaction runs on
 * a reserved connection and BEGIN, the settings and the first statement of `fn` leave in one
 * write. When `fn` returns its one statement without awaiting it (`(tx) => tx\`…\``), COMMIT
 * leaves in that same write too: the whole transaction is one round trip. If a statement fails,
 * PostgreSQL answers that COMMIT with a rollback; otherwise a failure rolls back explicitly.
 */
export async function inTransaction<T>(
  sql: Sql,
  settings: Record<string, string>,
  fn: (tx: Tx) => T | Promise<T>,
): Promise<Awaited<T>> {
  const timeouts = sql.timeouts ?? { statementMs: 5_000, idleInTransactionMs: 10_000 };
  const all: Record<string, string> = {
    statement_timeout: String(timeouts.statementMs),
    idle_in_transaction_session_timeout: String(timeouts.idleInTransactionMs),
    ...settings,
  };
  // Scalar parameters only, so the statement needs no describe round trip (vendor README).
  const pairs = Object.entries(all);
  const setting = `select ${pairs.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`)}`;
  return await onConnection(sql, async (tx) => {
    let open = true;
    try {
      // Issued in one tick, so postgres.js writes them together.
      const begun = tx`begin`.execute();
      const applied = tx.unsafe(setting, pairs.flat()).execute();
      const out = fn(tx as unknown as Tx);
      const single = isQuery(out);
      if (single) out.execute();
      const committed = single ? tx`commit`.execute() : undefined;
      const result = Promise.resolve(out);
      for (const p of [begun, applied, result, committed]) p?.catch(() => {});
      // If the settings fail, theirs is the error reported (the statement's would be 25P02).
      await begun;
      await applied;
      const value = await result;
      await (committed ?? tx`commit`.execute());
      open = false;
      return value as Awaited<T>;
    } finally {
      if (open) await tx`rollback`.execute().catch(() => {});
    }
  });
}

/**
 * A connection reserved from the pool. Its `terminate()` (added by the vendored postgres.js,
 * patch 0010) is required, not optional: a driver without it would leave a stalled session in
 * the pool, so it must fail `deno task check` rather than degrade silently.
 */
export type Connection = postgres.ReservedSql;

/**
 * Runs `fn` on a connection reserved from the pool, bounded by the client's deadline: every
 * statement goes through here ({@link inTransaction} included). Past the deadline the session is
 * ended (the vendored postgres.js's `terminate`) rather than left to the pool, where later
 * statements would wait behind one that may never be answered (a stalled server or network):
 * a stall costs one deadline, and the pool reconnects. A statement `fn` returns unawaited is
 * sent and awaited here.
 */
export async function onConnection<T>(
  sql: Sql,
  fn: (connection: Connection) => T | Promise<T>,
): Promise<Awaited<T>> {
  let held: Connection | undefined;
  let expired = false;
  const run = async () => {
    const connection: Connection = held = await sql.reserve();
    try {
      // A connection that arrives after the caller gave up runs nothing (a late claim of
      // webhook deliveries, say, would hold them until their lease ends).
      if (expired) throw new DatabaseTimeoutError("reserved after the deadline");
      return await fn(connection);
    } finally {
      connection.release();
    }
  };
  try {
    return await withDbDeadline(sql, run());
  } catch (error) {
    if (error instanceof DatabaseTimeoutError) {
      expired = true;
      held?.terminate();
    }
    throw error;
  }
}

/** Whether a value is a postgres.js statement not yet sent (a lazy, thenable query). */
function isQuery(value: unknown): value is postgres.PendingQuery<postgres.Row[]> {
  return value instanceof Promise && typeof (value as { execute?: unknown }).execute === "function";
}

/**
 * Runs `fn` in a transaction as the `authenticated` role with the caller's claims, exactly as
 * PostgREST does, so that RLS applies.
 */
export function asCaller<T>(
  sql: Sql,
  claims: Record<string, unknown>,
  fn: (tx: Tx) => T | Promise<T>,
): Promise<Awaited<T>> {
  return inTransaction(
    sql,
    { role: "authenticated", "request.jwt.claims": JSON.stringify(claims) },
    fn,
  );
}

/** The deadline of a client without one of its own (one made outside {@link createSql}). */
const DEFAULT_DEADLINE_MS = 5500;

/** Raised when a database operation outlives its deadline. */
export class DatabaseTimeoutError extends Error {
  override name = "DatabaseTimeoutError";
  readonly code = "DB_DEADLINE";
}

/**
 * Bounds a database operation by its client's deadline. postgres.js 3.4.9 can leave a promise
 * pending forever when its connection closes mid-transaction (porsager/postgres#1186, #1216);
 * this turns that into SERVICE_UNAVAILABLE instead of a request that never ends.
 */
function withDbDeadline<T>(sql: Sql, work: Promise<T>): Promise<T> {
  const ms = sql.deadlineMs ?? DEFAULT_DEADLINE_MS;
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
  "TLS_REFUSED",
  "TLS_HANDSHAKE_FAILED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "57014", // query_canceled (statement_timeout)
  "53300", // too_many_connections
]);

/**
 * What a pooler says when it has no room for another client. Supavisor refuses a client over its
 * compute size's limit with SQLSTATE XX000 ("internal error", severity FATAL) and one of these
 * messages; XX000 alone says nothing of the kind, so the message decides. (PgBouncer's
 * "no more connections allowed (max_client_conn)" comes as 08P01, a connection failure.)
 */
const POOLER_FULL = /max client connections reached|max clients reached/i;

/** True when an error means the database is unreachable or overloaded, not that a query is wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (CONNECTION_CODES.has(code) || code.startsWith("08"))) {
    return true;
  }
  if (code === "XX000" && POOLER_FULL.test(error.message)) return true;
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
