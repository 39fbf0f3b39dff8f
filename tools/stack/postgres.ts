/**
 * PostgreSQL of the local stack: make sure a server answers (starting the Debian cluster, or
 * installing it as root, if needed), create the profile's database, apply
 * `supabase/local/bootstrap.sql` and the migrations with the Supabase CLI.
 *
 * @module
 */

import { PIDS_DIR, type Profile, PROFILES, ROOT, type Settings } from "./config.ts";
import { aptInstall } from "./packages.ts";
import {
  answering,
  type Daemon,
  firstLine,
  isRoot,
  type Log,
  logTail,
  readPidFile,
  recordStarted,
  run,
  type RunResult,
  StackError,
  stopDaemon,
  tail,
  tcpOpen,
  waitUntil,
  which,
} from "./process.ts";

/** The Supabase CLI that `npm ci` installs into the toolchain. */
const SUPABASE_CLI = `${ROOT}/tools/toolchain/node_modules/.bin/supabase`;

/** The postmaster as the stack records it: the pid file exists only if the stack started it. */
export const POSTGRES_DAEMON: Daemon = {
  name: "postgres",
  pidFile: `${PIDS_DIR}/postgres.pid`,
  marker: "postgres",
};

export interface DbTarget {
  url: string;
  host: string;
  port: number;
  database: string;
  /** The same server's `postgres` database, for CREATE DATABASE. */
  adminUrl: string;
}

export function parseDbUrl(url: string): DbTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StackError("SUPABASE_DB_URL is not a valid postgresql:// URL");
  }
  if (parsed.protocol !== "postgresql:" && parsed.protocol !== "postgres:") {
    throw new StackError("SUPABASE_DB_URL must start with postgresql://");
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/.test(database)) {
    throw new StackError(`SUPABASE_DB_URL names no usable database ("${database}")`);
  }
  const admin = new URL(url);
  admin.pathname = "/postgres";
  return {
    url,
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1",
    port: parsed.port === "" ? 5432 : Number(parsed.port),
    database,
    adminUrl: admin.toString(),
  };
}

export function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "::1";
}

/** Whether the server accepts connections (pg_isready, else a TCP connect). */
export async function postgresReady(host: string, port: number): Promise<boolean> {
  if (which("pg_isready") === undefined) return await tcpOpen(host, port);
  const result = await run("pg_isready", ["-q", "-h", host, "-p", String(port), "-t", "2"], {
    timeoutMs: 5_000,
  });
  return result.success;
}

interface Cluster {
  version: string;
  name: string;
  port: number;
  online: boolean;
  dataDir: string;
  logFile: string;
}

async function clusters(): Promise<Cluster[]> {
  if (which("pg_lsclusters") === undefined) return [];
  const result = await run("pg_lsclusters", ["-h"], { timeoutMs: 10_000 });
  if (!result.success) return [];
  return result.stdout.trim().split("\n").filter((line) => line.trim() !== "").map((line) => {
    const [version = "", name = "", port, status = "", , dataDir = "", logFile = ""] = line
      .trim().split(/\s+/);
    return {
      version,
      name,
      port: Number(port),
      online: status.startsWith("online"),
      dataDir,
      logFile,
    };
  });
}

/** Lets local connections in without a password (what this machine and CI are set up with). */
function trustLocalConnections(cluster: Cluster, log: Log): void {
  const path = `/etc/postgresql/${cluster.version}/${cluster.name}/pg_hba.conf`;
  const text = Deno.readTextFileSync(path);
  const trust = [
    "# Added by the Torvus local stack (tools/stack): local development and CI only.",
    "local all all trust",
    "host all all 127.0.0.1/32 trust",
    "host all all ::1/128 trust",
  ].join("\n");
  if (!text.includes("Added by the Torvus local stack")) {
    Deno.writeTextFileSync(path, `${trust}\n${text}`);
    log(`postgres: ${path}: trust for local connections`);
  }
}

/** Whether a PostgreSQL server package (its cluster tools and a cluster) is installed. */
function hasServer(): boolean {
  if (which("pg_ctlcluster") === undefined || which("psql") === undefined) return false;
  try {
    return [...Deno.readDirSync("/etc/postgresql")].some((entry) => entry.isDirectory);
  } catch {
    return false;
  }
}

/** Makes sure PostgreSQL accepts connections on host:port, starting it if needed. */
export async function ensurePostgres(host: string, port: number, log: Log): Promise<void> {
  if (answering(POSTGRES_DAEMON, `${host}:${port}`, await postgresReady(host, port), log)) {
    return;
  }
  if (!isLoopback(host)) {
    throw new StackError(
      `PostgreSQL at ${host}:${port} does not answer (the stack starts only a local one)`,
    );
  }
  const installed = !hasServer();
  if (installed) {
    if (!isRoot()) {
      throw new StackError(
        "PostgreSQL is not installed: run as root or `sudo apt-get install postgresql`",
      );
    }
    await aptInstall(["postgresql"], log);
  }
  const all = await clusters();
  const cluster = all.find((c) => c.port === port);
  if (cluster === undefined) {
    throw new StackError(
      `no PostgreSQL cluster is configured for port ${port} (pg_lsclusters lists ${
        all.map((c) => `${c.version}/${c.name}:${c.port}`).join(", ") || "none"
      })`,
    );
  }
  if (installed) trustLocalConnections(cluster, log);
  // A cluster the package's install script already started counts as started by the stack.
  const starting = !cluster.online || installed;
  if (starting) {
    const action = cluster.online ? "reload" : "start";
    const name = `${cluster.version}/${cluster.name}`;
    log(`postgres: ${action} cluster ${name}`);
    const start = await run(
      "pg_ctlcluster",
      ["--skip-systemctl-redirect", cluster.version, cluster.name, action],
      { timeoutMs: 60_000 },
    );
    if (!start.success) {
      const hint = isRoot()
        ? `log ${cluster.logFile}:\n${logTail(cluster.logFile, 10)}`
        : `run as root: pg_ctlcluster ${cluster.version} ${cluster.name} start`;
      throw new StackError(`PostgreSQL ${name} did not start: ${firstLine(start)}\n  ${hint}`);
    }
  }
  if (!(await waitUntil(() => postgresReady(host, port), 30_000, 200))) {
    throw new StackError(
      `PostgreSQL did not accept connections on ${host}:${port} within 30 s (log: ${cluster.logFile})`,
    );
  }
  if (!starting) {
    log(`postgres: running on ${host}:${port} (was starting up)`);
    return;
  }
  const pid = readPidFile(`${cluster.dataDir}/postmaster.pid`);
  recordStarted(POSTGRES_DAEMON, pid, `on ${host}:${port}`, log);
}

/** Stops PostgreSQL if (and only if) the stack started it. */
export async function stopPostgres(log: Log): Promise<void> {
  // SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave),
  // SIGQUIT its immediate shutdown.
  await stopDaemon(POSTGRES_DAEMON, log, ["SIGINT", "SIGQUIT", "SIGKILL"], 10_000);
}

async function psql(url: string, args: string[]): Promise<RunResult> {
  if (which("psql") === undefined) {
    throw new StackError("psql is not installed: `apt-get install postgresql-client`");
  }
  return await run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, ...args], {
    env: { PGOPTIONS: "-c client_min_messages=warning", PGCONNECT_TIMEOUT: "5" },
    timeoutMs: 60_000,
  });
}

const MIGRATIONS = "select count(*) from supabase_migrations.schema_migrations";

async function query(url: string, sql: string): Promise<string> {
  const result = await psql(url, ["-At", "-c", sql]);
  if (!result.success) throw new StackError(`psql failed: ${tail(result.stderr, 3).trim()}`);
  return result.stdout.trim();
}

/** Creates the database if needed, applies bootstrap.sql and the migrations. */
export async function prepareDatabase(
  profile: Profile,
  settings: Settings,
  log: Log,
): Promise<void> {
  const target = parseDbUrl(settings.values.get("SUPABASE_DB_URL") ?? "");
  if (!isLoopback(target.host)) {
    throw new StackError(
      `SUPABASE_DB_URL points at ${target.host}; the stack migrates only a local database`,
    );
  }
  const name = target.database;
  if (profile === "test" && name === PROFILES.dev.database) {
    throw new StackError(
      `refusing to reset the dev database "${name}" for the test profile (check SUPABASE_DB_URL)`,
    );
  }
  if (await query(target.adminUrl, `select 1 from pg_database where datname = '${name}'`)) {
    log(`database: ${name} exists`);
  } else {
    await query(target.adminUrl, `create database "${name}"`);
    log(`database: created ${name}`);
  }

  const verb = profile === "test" ? "reset" : "push";
  const count = await migrateDatabase(target.url, verb, log);
  log(
    verb === "reset"
      ? `database: ${name} reset to ${count} migration(s) + seed (supabase db reset)`
      : `database: ${name} at ${count} migration(s), data kept (supabase db push)`,
  );
}

/**
 * Applies `supabase/local/bootstrap.sql`, then the migrations with the Supabase CLI:
 * `reset` rebuilds the schema from scratch (and runs the seed), `push` applies new migrations
 * only. Returns the number of migrations applied.
 */
export async function migrateDatabase(
  url: string,
  verb: "reset" | "push",
  log: Log,
): Promise<number> {
  const name = parseDbUrl(url).database;
  const bootstrap = await psql(url, ["-f", `${ROOT}/supabase/local/bootstrap.sql`]);
  if (!bootstrap.success) {
    throw new StackError(
      `supabase/local/bootstrap.sql failed on ${name}:\n${tail(bootstrap.stderr)}`,
    );
  }
  log("database: supabase/local/bootstrap.sql applied");
  if (which(SUPABASE_CLI) === undefined) {
    throw new StackError(`the Supabase CLI is missing (${SUPABASE_CLI}): run \`npm ci\``);
  }
  const args = ["db", verb, "--db-url", url, "--yes"];
  const result = await run(SUPABASE_CLI, args, { cwd: ROOT, timeoutMs: 180_000 });
  if (!result.success) {
    throw new StackError(
      `supabase db ${verb} failed on ${name}:\n${tail(result.stdout + result.stderr)}`,
    );
  }
  return Number(await query(url, MIGRATIONS));
}

/** One status line's worth about the profile's database. */
export async function databaseStatus(settings: Settings): Promise<{ up: boolean; detail: string }> {
  let target: DbTarget;
  try {
    target = parseDbUrl(settings.values.get("SUPABASE_DB_URL") ?? "");
  } catch (error) {
    return { up: false, detail: error instanceof Error ? error.message : String(error) };
  }
  if (which("psql") === undefined) return { up: false, detail: "psql is not installed" };
  const result = await psql(target.url, ["-At", "-c", MIGRATIONS]);
  if (result.success) {
    return { up: true, detail: `${target.database}, ${result.stdout.trim()} migration(s) applied` };
  }
  const reason = result.stderr.includes("does not exist")
    ? result.stderr.includes("schema_migrations") ? "not migrated" : "missing"
    : "unreachable";
  return { up: false, detail: `${target.database} ${reason}` };
}
