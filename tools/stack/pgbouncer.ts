/**
 * The local stand-in for Supavisor's transaction mode: PgBouncer from Debian,
 * `pool_mode = transaction`, in front of the local PostgreSQL, one per profile on its
 * `POOLER_PORT` (dev 6543, Supavisor's transaction port; test 6544), so a clone running its
 * tests never collides with another clone's dev stack. The functions reach the database through
 * it (`TORVUS_DB_URL`), so anything that needs a session of its own (prepared statements,
 * startup parameters, session settings) fails here as it would against Supabase's pooler.
 *
 * Its configuration lives in `.local/pgbouncer-<profile>/`; as root it is started with
 * `-u postgres` (PgBouncer refuses to run as root), and `stack down` stops it. `deno task bench`
 * runs one of its own under the name `bench` and stops it at the end.
 *
 * @module
 */

import { LOCAL, LOGS_DIR, PIDS_DIR, type Profile } from "./config.ts";
import {
  type Daemon,
  ensureDaemon,
  isRoot,
  type Log,
  readText,
  StackError,
  stopDaemon,
  tcpOpen,
  which,
} from "./process.ts";

/** Whose pooler: a stack profile's, or the benchmark's. */
export type PoolerName = Profile | "bench";

/** Server connections per database and user: few, so contention shows as it would. */
export const PGBOUNCER_POOL_SIZE = 8;

/** A profile's PgBouncer, as the stack records it. */
export const pgbouncerDaemon = (profile: PoolerName): Daemon => ({
  name: "pgbouncer",
  pidFile: `${PIDS_DIR}/pgbouncer-${profile}.pid`,
  marker: "pgbouncer",
});

function configDir(profile: PoolerName): string {
  return `${LOCAL}/pgbouncer-${profile}`;
}

/** What a PgBouncer configuration of {@link pgbouncerIni} needs. */
export interface PgbouncerSettings {
  port: number;
  pgHost: string;
  pgPort: number;
  /** Folder of the configuration and its user list. */
  dir: string;
  maxClientConn?: number;
}

/**
 * Writes `userlist.txt` and returns the text of a `pgbouncer.ini` for Supavisor's transaction
 * mode in front of pgHost:pgPort (the stack's, and tests' poolers of their own).
 */
export function pgbouncerIni(s: PgbouncerSettings): string {
  // With auth_type trust PgBouncer still wants the user listed.
  Deno.writeTextFileSync(`${s.dir}/userlist.txt`, '"postgres" ""\n');
  return [
    "; Written by tools/stack/pgbouncer.ts: Supavisor's transaction mode.",
    "[databases]",
    `* = host=${s.pgHost} port=${s.pgPort}`,
    "",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${s.port}`,
    "unix_socket_dir =",
    "auth_type = trust",
    `auth_file = ${s.dir}/userlist.txt`,
    "pool_mode = transaction",
    `default_pool_size = ${PGBOUNCER_POOL_SIZE}`,
    `max_client_conn = ${s.maxClientConn ?? 2000}`,
    "admin_users = postgres",
    "stats_users = postgres",
    "; Like Supavisor, nothing of a client's session survives its transaction.",
    "server_reset_query =",
    "",
  ].join("\n");
}

function writeConfig(profile: PoolerName, port: number, pgHost: string, pgPort: number): string {
  const dir = configDir(profile);
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(`${dir}/pgbouncer.ini`, pgbouncerIni({ port, pgHost, pgPort, dir }));
  return `${dir}/pgbouncer.ini`;
}

/**
 * Makes sure the profile's pooler answers on `port` in front of pgHost:pgPort, starting it if
 * needed (a running one is restarted when its configuration changed).
 */
export async function ensurePgbouncer(
  profile: PoolerName,
  port: number,
  pgHost: string,
  pgPort: number,
  log: Log,
): Promise<number> {
  const configPath = `${configDir(profile)}/pgbouncer.ini`;
  const before = readText(configPath);
  const config = writeConfig(profile, port, pgHost, pgPort);
  const binary = which("pgbouncer");
  if (binary === undefined) {
    throw new StackError("pgbouncer is not installed (apt-get install pgbouncer)");
  }
  return await ensureDaemon({
    ...pgbouncerDaemon(profile),
    // PgBouncer refuses to run as root.
    cmd: binary,
    args: isRoot() ? ["-u", "postgres", config] : [config],
    cwd: configDir(profile),
    env: {},
    logPath: `${LOGS_DIR}/pgbouncer-${profile}.log`,
    port,
    portSetting: "POOLER_PORT",
    where: `127.0.0.1:${port}, transaction mode`,
    ready: () => tcpOpen("127.0.0.1", port),
    fits: async () => before === readText(configPath) && await tcpOpen("127.0.0.1", port),
    timeoutMs: 10_000,
  }, log);
}

export async function stopPgbouncer(profile: PoolerName, log: Log): Promise<void> {
  await stopDaemon(pgbouncerDaemon(profile), log);
}
