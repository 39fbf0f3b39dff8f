/**
 * The doctor's database checks, with the functions' own settings (`parseDbConfig`) and code
 * (`db/socket.ts` for TLS, `db/client.ts` for the pool), run on Deno 2.1 by `deno task doctor`:
 *
 * - TLS: the handshake the functions make, verified against TORVUS_DB_CA_CERT and the runtime's
 *   roots for the URL's host name; on failure the cause, the fix and the presented chain;
 * - pool mode: what the server behind the URL does with a session, against what the functions
 *   are configured for. A transaction pooler hands one server connection to one client's
 *   transaction after another's: a session setting one client makes is then seen by the next.
 *   The port the client connected to and the one PostgreSQL listens on (`inet_server_port()`)
 *   also tell whether anything stands in between.
 *
 * @module
 */
import type { DbConfig } from "../../supabase/functions/_shared/db/settings.ts";
import { denoSocketFactory } from "../../supabase/functions/_shared/db/socket.ts";
import { createSql, onConnection, sqlState } from "../../supabase/functions/_shared/db/client.ts";
import { type Check, fail, type Finding, ok, skip } from "./report.ts";
import { chainLines, diagnoseTls } from "./tls.ts";

/** Host and port of a database URL. */
export function endpointOf(url: string): { host: string; port: number } {
  const parsed = new URL(url.replace(/^postgres(ql)?:/, "http:"));
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port === "" ? 5432 : Number(parsed.port),
  };
}

/** The database checks; `db` undefined when no database URL is set. */
export function databaseChecks(db: DbConfig | undefined, problem: string | undefined): Check[] {
  const missing = (): Promise<Finding> =>
    Promise.resolve(
      problem === undefined
        ? skip("set TORVUS_DB_URL (or SUPABASE_DB_URL) and TORVUS_DB_CA_CERT to check the database")
        : fail("invalid settings", problem, "fix the named setting (docs/DEPLOY.md, the secrets)"),
    );
  if (db === undefined) {
    return [{ name: "database TLS", run: missing }, { name: "database pool mode", run: missing }];
  }
  return [
    { name: "database TLS", run: () => tlsFinding(db) },
    { name: "database pool mode", run: () => poolFinding(db) },
  ];
}

async function tlsFinding(db: DbConfig): Promise<Finding> {
  const { host, port } = endpointOf(db.url);
  if (db.ssl === false) {
    return ok(`plain TCP to ${host}:${port} (loopback; any other host must use TLS)`);
  }
  const connect = denoSocketFactory({ tls: true, caCerts: db.caCerts, timeoutMs: 5000 });
  const socket = await connect({ host: [host], port: [port] });
  if (socket.readyState === "open") {
    socket.destroy();
    const roots = db.caCerts.length === 0
      ? "the runtime's roots"
      : `TORVUS_DB_CA_CERT (${db.caCerts.length} certificate(s)) and the runtime's roots`;
    return ok(`${host}:${port}: chain verified against ${roots}, certificate valid for ${host}`);
  }
  const error = await new Promise<{ code?: string; message: string }>((resolve) =>
    socket.once(
      "error",
      (e: unknown) =>
        resolve(e instanceof Error ? e as Error & { code?: string } : { message: String(e) }),
    )
  );
  const { cause, fix } = diagnoseTls(error, host, db.caCerts.length);
  return fail(
    `${host}:${port}: ${error.code ?? "TLS failed"}`,
    cause,
    fix,
    await chainLines(host, port, db.caCerts),
  );
}

/** Why a first query failed, by SQLSTATE or message. */
function connectionCause(error: unknown, db: DbConfig): { cause: string; fix: string } {
  const state = sqlState(error);
  const message = error instanceof Error ? error.message : String(error);
  if (state === "28P01" || state === "28000") {
    return {
      cause: `the database refused the credentials (${state}: ${message})`,
      fix: "copy the connection string again (Dashboard → Connect); the pooler's user is " +
        "postgres.<project-ref>",
    };
  }
  if (/unsupported startup parameter/i.test(message)) {
    return {
      cause:
        `a transaction pooler refused the session settings of a direct connection (${message})`,
      fix: "set TORVUS_DB_POOL_MODE=transaction (the URL's port is not 6543)",
    };
  }
  if (/tenant or user not found/i.test(message)) {
    return {
      cause: `Supavisor does not know the user (${message})`,
      fix: "the pooler's user is postgres.<project-ref>: copy the transaction pooler's string",
    };
  }
  if (state === "3D000") return { cause: message, fix: "the URL's database name is wrong" };
  return {
    cause: `no query could run: ${message}`,
    fix: db.ssl === false
      ? "check the URL's host and port"
      : "see the TLS check above; check the URL's host and port",
  };
}

const SETTING = "torvus.doctor_probe";

async function poolFinding(db: DbConfig): Promise<Finding> {
  const { port } = endpointOf(db.url);
  const one = { ...db, poolMax: 1 };
  const first = createSql(one);
  const second = createSql(one);
  const token = crypto.randomUUID();
  try {
    let serverPort: number | null;
    try {
      const [row] = await onConnection(
        first,
        (c) => c`select inet_server_port() as port, set_config(${SETTING}, ${token}, false)`,
      );
      serverPort = row?.port ?? null;
    } catch (error) {
      const { cause, fix } = connectionCause(error, db);
      return fail("no query ran", cause, fix);
    }
    // Another client: a transaction pooler hands it the server connection the first just used.
    const [seen] = await onConnection(
      second,
      (c) => c`select current_setting(${SETTING}, true) as v`,
    );
    const shared = seen?.v === token;
    const proxied = serverPort !== null && Number(serverPort) !== port;
    const path = serverPort === null
      ? `port ${port}`
      : proxied
      ? `port ${port}, PostgreSQL's ${serverPort}: something in between`
      : `port ${port}, PostgreSQL's own`;
    const configured = db.transactionPooler
      ? "the functions are set for a transaction pooler (no prepared statements)"
      : "the functions are set for a direct or session connection (prepared statements, session " +
        "settings)";
    if (shared && !db.transactionPooler) {
      return fail(
        `transaction pooler (${path}); ${configured}`,
        "another client saw a session setting: server connections are shared between clients' " +
          "transactions, where prepared statements and session settings break",
        "set TORVUS_DB_POOL_MODE=transaction in the functions' secrets",
      );
    }
    // Not seeing a session shared proves little behind a busy pooler with many connections.
    const mode = shared
      ? "transaction pooler: a session setting of one client was seen by the next"
      : proxied
      ? "a pooler (or a proxy): no session was seen shared between clients"
      : "direct or session connection: no session was seen shared between clients";
    return ok(`${mode} (${path}); ${configured}`);
  } finally {
    await onConnection(first, (c) => c`select set_config(${SETTING}, '', false)`).catch(() => {});
    await Promise.all([first.end({ timeout: 1 }), second.end({ timeout: 1 })]);
  }
}
