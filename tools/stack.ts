/**
 * The local stack manager: `deno task stack <up|down|status|env> [--profile dev|test]`.
 *
 * - `up`: PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) running (started, or installed
 *   with apt as root, if needed), the profile's database created, bootstrapped and migrated
 *   (`dev`: `supabase db push`, data kept; `test`: `supabase db reset`, clean every time), the
 *   settings file `.local/<profile>.env` written, the Redis bridge running in the background.
 * - `down`: stops what `up` started, by the pids it recorded: the profile's bridge always;
 *   PostgreSQL and Redis only if the stack started them and no other profile is still up.
 * - `status`: one line per part; exits 1 if PostgreSQL, Redis, the database or the bridge is
 *   down (the dev server, run separately with `deno task dev`, is reported but not counted).
 * - `env`: the settings file's path and contents, secrets masked.
 *
 * Exit codes: 0 ok, 1 failure (with a one-line reason).
 *
 * @module
 */

import { bridgeHealthy, ensureBridge, runningBridge, stopBridge } from "./stack/bridge.ts";
import {
  currentSettings,
  isProfile,
  maskLine,
  portOf,
  type Profile,
  PROFILE_NAMES,
  readSettingsFile,
  REDIS_HOST,
  REDIS_PORT,
  resolveSettings,
  settingsPath,
  writeSettings,
} from "./stack/config.ts";
import {
  databaseStatus,
  ensurePostgres,
  parseDbUrl,
  POSTGRES_MARKER,
  postgresReady,
  prepareDatabase,
  stopPostgres,
} from "./stack/postgres.ts";
import {
  httpStatus,
  isRecordedProcess,
  readPidFile,
  redact,
  StackError,
  tcpOpen,
} from "./stack/process.ts";
import { ensureRedis, REDIS_MARKER, redisPing, stopRedis } from "./stack/redis.ts";
import { ensureCommands, TOOL_REQUIREMENTS } from "./stack/packages.ts";
import { ensurePgbouncer, pgbouncerMarker, stopPgbouncer } from "./stack/pgbouncer.ts";

const USAGE = "usage: deno task stack <up|down|status|env> [--profile dev|test]";

const log = (line: string) => console.log(line);

function parseArgs(args: string[]): { command: string; profile: Profile } {
  let command: string | undefined;
  let profile: string = "dev";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else if (arg === "--profile" || arg === "-p") {
      profile = args[++i] ?? "";
    } else if (arg.startsWith("--profile=")) {
      profile = arg.slice("--profile=".length);
    } else if (command === undefined && !arg.startsWith("-")) {
      command = arg;
    } else {
      throw new StackError(`unexpected argument "${arg}" (${USAGE})`);
    }
  }
  if (command === undefined) throw new StackError(USAGE);
  if (!isProfile(profile)) {
    throw new StackError(`unknown profile "${profile}": use ${PROFILE_NAMES.join(" or ")}`);
  }
  return { command, profile };
}

async function up(profile: Profile): Promise<void> {
  const started = performance.now();
  const settings = resolveSettings(profile, readSettingsFile(profile), (n) => Deno.env.get(n));
  if (settings.ignoredForeignEnv) {
    log(
      `settings: TORVUS_PROFILE=${Deno.env.get("TORVUS_PROFILE")} in the environment, so its ` +
        `variables are not used as overrides for '${profile}'`,
    );
  }
  const db = parseDbUrl(settings.values.get("SUPABASE_DB_URL") ?? "");
  await ensurePostgres(db.host, db.port, log);
  await ensureRedis(REDIS_HOST, REDIS_PORT, log);
  await ensureCommands(TOOL_REQUIREMENTS, log);
  await prepareDatabase(profile, settings, log);
  await ensurePgbouncer(profile, portOf(settings, "POOLER_PORT"), db.host, db.port, log);

  const { path, changed } = writeSettings(settings);
  const overridden = [...settings.sources].filter(([, source]) => source === "environment");
  log(
    `settings: ${path} ${changed ? "written" : "unchanged"}` +
      (overridden.length > 0
        ? ` (from the environment: ${overridden.map(([k]) => k).join(", ")})`
        : ""),
  );

  await ensureBridge(profile, settings, log);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  log(`stack '${profile}' is up in ${seconds} s; run the functions with: deno task dev`);
}

/** The other profiles whose bridge is still running (they still need PostgreSQL and Redis). */
function otherProfilesUp(profile: Profile): Profile[] {
  return PROFILE_NAMES.filter((p) => p !== profile && runningBridge(p) !== undefined);
}

async function down(profile: Profile): Promise<void> {
  await stopBridge(profile, log);
  await stopPgbouncer(profile, log);
  const others = otherProfilesUp(profile);
  if (others.length > 0) {
    const still = `profile ${others.join(", ")} is still up`;
    if (readPidFile(POSTGRES_MARKER) !== undefined) log(`postgres: left running (${still})`);
    if (readPidFile(REDIS_MARKER) !== undefined) log(`redis: left running (${still})`);
  } else {
    await stopRedis(log);
    await stopPostgres(log);
  }
  log(`stack '${profile}' is down`);
}

async function status(profile: Profile): Promise<number> {
  const settings = currentSettings(profile);
  const lines: [string, boolean, string][] = [];
  const marker = (path: string, name: string) => {
    const pid = readPidFile(path);
    return pid !== undefined && isRecordedProcess(pid, name)
      ? `, started by the stack (pid ${pid})`
      : "";
  };

  let db;
  try {
    db = parseDbUrl(settings.values.get("SUPABASE_DB_URL") ?? "");
  } catch {
    db = { host: "127.0.0.1", port: 5432 };
  }
  const pgUp = await postgresReady(db.host, db.port);
  lines.push([
    "postgres",
    pgUp,
    `${db.host}:${db.port}${pgUp ? marker(POSTGRES_MARKER, "postgres") : ""}`,
  ]);
  const redisUp = await redisPing(REDIS_HOST, REDIS_PORT);
  lines.push([
    "redis",
    redisUp,
    `${REDIS_HOST}:${REDIS_PORT}${redisUp ? marker(REDIS_MARKER, "redis-server") : ""}`,
  ]);
  const database = pgUp ? await databaseStatus(settings) : { up: false, detail: "no server" };
  lines.push(["database", database.up, database.detail]);
  const poolerPort = portOf(settings, "POOLER_PORT");
  const poolerUp = await tcpOpen("127.0.0.1", poolerPort);
  lines.push([
    "pgbouncer",
    poolerUp,
    `127.0.0.1:${poolerPort} (transaction mode)${
      poolerUp ? marker(pgbouncerMarker(profile), "pgbouncer") : ""
    }`,
  ]);

  const bridgePort = portOf(settings, "BRIDGE_PORT");
  const bridgePid = runningBridge(profile);
  const bridgeUp = await bridgeHealthy(bridgePort);
  lines.push([
    "bridge",
    bridgeUp,
    `http://127.0.0.1:${bridgePort}` +
    (bridgePid === undefined
      ? (bridgeUp ? ", not started by this profile" : "")
      : `, pid ${bridgePid}`),
  ]);

  const base = settings.values.get("SUPABASE_URL") ?? "";
  const health = await httpStatus(`${base}/api/v1/health`, {}, 3_000);
  const server = health === undefined
    ? "not running (start it: deno task dev)"
    : `health ${health}`;
  lines.push(["dev server", health === 200, `${base}, ${server}`]);

  const width = Math.max(...lines.map(([name]) => name.length));
  for (const [name, isUp, detail] of lines) {
    console.log(`${name.padEnd(width)}  ${isUp ? "up  " : "down"}  ${detail}`);
  }
  // The dev server runs separately (deno task dev), so it does not decide the exit code.
  return lines.slice(0, 5).every(([, isUp]) => isUp) ? 0 : 1;
}

function env(profile: Profile): number {
  const path = settingsPath(profile);
  let values: Map<string, string>;
  try {
    Deno.statSync(path);
    values = readSettingsFile(profile);
  } catch {
    throw new StackError(`${path} does not exist yet: run deno task stack up --profile ${profile}`);
  }
  console.log(`# ${path}`);
  for (const [key, value] of values) console.log(maskLine(key, value));
  return 0;
}

async function main(args: string[]): Promise<number> {
  const { command, profile } = parseArgs(args);
  switch (command) {
    case "up":
      await up(profile);
      return 0;
    case "down":
      await down(profile);
      return 0;
    case "status":
      return await status(profile);
    case "env":
      return env(profile);
    default:
      throw new StackError(`unknown command "${command}" (${USAGE})`);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    const message = error instanceof StackError
      ? error.message
      : `unexpected error: ${error instanceof Error ? error.message : String(error)}`;
    console.error(`stack: ${redact(message)}`);
    Deno.exit(1);
  }
}
