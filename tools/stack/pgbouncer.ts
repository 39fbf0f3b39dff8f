/**
 * The local stand-in for Supavisor's transaction mode: PgBouncer from Debian on 127.0.0.1:6543
 * (Supavisor's transaction port), `pool_mode = transaction`, in front of the local PostgreSQL.
 * The functions reach the database through it (`TORVUS_DB_URL`), so anything that needs a
 * session of its own (prepared statements, startup parameters, session settings) fails here as
 * it would against Supabase's pooler. One PgBouncer serves every profile's database.
 *
 * Its configuration lives in `.local/pgbouncer/`; as root it is started with `-u postgres`
 * (PgBouncer refuses to run as root), and `stack down` stops it when no profile needs it.
 *
 * @module
 */

import { LOCAL, LOGS_DIR, PGBOUNCER_PORT, PIDS_DIR } from "./config.ts";
export { PGBOUNCER_PORT };
import {
  isRecordedProcess,
  isRoot,
  logTail,
  readPidFile,
  removeFile,
  spawnDetached,
  StackError,
  stopProcess,
  tcpOpen,
  waitUntil,
  which,
  writePidFile,
} from "./process.ts";

type Log = (line: string) => void;

/** Server connections per database and user: few, so contention shows as it would. */
export const PGBOUNCER_POOL_SIZE = 8;
export const PGBOUNCER_MARKER = `${PIDS_DIR}/pgbouncer.pid`;
const DIR = `${LOCAL}/pgbouncer`;
const CONFIG = `${DIR}/pgbouncer.ini`;

function writeConfig(pgHost: string, pgPort: number): void {
  Deno.mkdirSync(DIR, { recursive: true });
  // With auth_type trust PgBouncer still wants the user listed.
  Deno.writeTextFileSync(`${DIR}/userlist.txt`, '"postgres" ""\n');
  Deno.writeTextFileSync(
    CONFIG,
    [
      "; Written by `deno task stack up` (tools/stack/pgbouncer.ts): Supavisor's transaction mode.",
      "[databases]",
      `* = host=${pgHost} port=${pgPort}`,
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${PGBOUNCER_PORT}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${DIR}/userlist.txt`,
      "pool_mode = transaction",
      `default_pool_size = ${PGBOUNCER_POOL_SIZE}`,
      "max_client_conn = 2000",
      "admin_users = postgres",
      "stats_users = postgres",
      "; Like Supavisor, nothing of a client's session survives its transaction.",
      "server_reset_query =",
      "",
    ].join("\n"),
  );
}

/** Makes sure the pooler answers on 6543 in front of pgHost:pgPort, starting it if needed. */
export async function ensurePgbouncer(pgHost: string, pgPort: number, log: Log): Promise<void> {
  const previous = readPidFile(PGBOUNCER_MARKER);
  if (previous !== undefined && isRecordedProcess(previous, "pgbouncer")) {
    if (await tcpOpen("127.0.0.1", PGBOUNCER_PORT)) {
      log(`pgbouncer: reusing pid ${previous} on 127.0.0.1:${PGBOUNCER_PORT} (transaction mode)`);
      return;
    }
    await stopProcess(previous, ["SIGTERM", "SIGKILL"], 5_000);
  }
  removeFile(PGBOUNCER_MARKER);
  if (await tcpOpen("127.0.0.1", PGBOUNCER_PORT)) {
    throw new StackError(`port ${PGBOUNCER_PORT} is in use by another process (not our pgbouncer)`);
  }
  const binary = which("pgbouncer");
  if (binary === undefined) {
    throw new StackError("pgbouncer is not installed (apt-get install pgbouncer)");
  }
  writeConfig(pgHost, pgPort);
  const logPath = `${LOGS_DIR}/pgbouncer.log`;
  const args = isRoot() ? ["-u", "postgres", CONFIG] : [CONFIG];
  const pid = spawnDetached(binary, args, { cwd: DIR, env: {}, logPath });
  writePidFile(PGBOUNCER_MARKER, pid);
  const up = await waitUntil(
    async () => !isRecordedProcess(pid, "pgbouncer") || await tcpOpen("127.0.0.1", PGBOUNCER_PORT),
    10_000,
    50,
  );
  if (!up || !isRecordedProcess(pid, "pgbouncer")) {
    await stopProcess(pid, ["SIGTERM", "SIGKILL"], 3_000);
    removeFile(PGBOUNCER_MARKER);
    throw new StackError(`pgbouncer did not start (log ${logPath}):\n${logTail(logPath, 10)}`);
  }
  log(
    `pgbouncer: started pid ${pid} on 127.0.0.1:${PGBOUNCER_PORT}, transaction mode (log ${logPath})`,
  );
}

/** Stops the pooler if the stack started it. */
export async function stopPgbouncer(log: Log): Promise<void> {
  const pid = readPidFile(PGBOUNCER_MARKER);
  if (pid === undefined) return;
  if (isRecordedProcess(pid, "pgbouncer")) {
    const by = await stopProcess(pid, ["SIGTERM", "SIGKILL"], 5_000);
    log(`pgbouncer: stopped pid ${pid} (${by ?? "still running"})`);
  }
  removeFile(PGBOUNCER_MARKER);
}
