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

import { parseArgs } from "node:util";
import { bridgeDaemon, bridgeHealthy, ensureBridge, stopBridge } from "./stack/bridge.ts";
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
  POSTGRES_DAEMON,
  postgresReady,
  prepareDatabase,
  stopPostgres,
} from "./stack/postgres.ts";
import {
  httpStatus,
  readPidFile,
  readText,
  redact,
  runningPid,
  StackError,
  startedNote,
  tcpOpen,
} from "./stack/process.ts";
import { ensureRedis, REDIS_DAEMON, redisPing, stopRedis } from "./stack/redis.ts";
import { ensureCommands, TOOL_REQUIREMENTS } from "./stack/packages.ts";
import { ensurePgbouncer, pgbouncerDaemon, stopPgbouncer } from "./stack/pgbouncer.ts";

const USAGE = "usage: deno task stack <up|down|status|env> [--profile dev|test]";

const log = (line: string) => console.log(line);

function parseCommandLine(args: string[]): { command: string; profile: Profile } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        profile: { type: "string", short: "p", default: "dev" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
    });
  } catch (error) {
    throw new StackError(`${error instanceof Error ? error.message : error} (${USAGE})`);
  }
  const { values: { profile, help }, positionals: [command, ...extra] } = parsed;
  if (help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (command === undefined) throw new StackError(USAGE);
  if (extra.length > 0) throw new StackError(`unexpected argument "${extra[0]}" (${USAGE})`);
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
  const from = overridden.map(([key]) => key).join(", ");
  log(
    `settings: ${path} ${changed ? "written" : "unchanged"}${
      from && ` (from the environment: ${from})`
    }`,
  );

  await ensureBridge(profile, settings, log);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  log(`stack '${profile}' is up in ${seconds} s; run the functions with: deno task dev`);
}

/** The other profiles whose bridge is still running (they still need PostgreSQL and Redis). */
function otherProfilesUp(profile: Profile): Profile[] {
  return PROFILE_NAMES.filter((p) => p !== profile && runningPid(bridgeDaemon(p)) !== undefined);
}

async function down(profile: Profile): Promise<void> {
  await stopBridge(profile, log);
  await stopPgbouncer(profile, log);
  const others = otherProfilesUp(profile);
  if (others.length > 0) {
    const still = `profile ${others.join(", ")} is still up`;
    for (const daemon of [POSTGRES_DAEMON, REDIS_DAEMON]) {
      if (readPidFile(daemon.pidFile) !== undefined) log(`${daemon.name}: left running (${still})`);
    }
  } else {
    await stopRedis(log);
    await stopPostgres(log);
  }
  log(`stack '${profile}' is down`);
}

async function status(profile: Profile): Promise<number> {
  const settings = currentSettings(profile);
  let db;
  try {
    db = parseDbUrl(settings.values.get("SUPABASE_DB_URL") ?? "");
  } catch {
    db = { host: "127.0.0.1", port: 5432 };
  }
  const pgUp = await postgresReady(db.host, db.port);
  const redisUp = await redisPing(REDIS_HOST, REDIS_PORT);
  const database = pgUp ? await databaseStatus(settings) : { up: false, detail: "no server" };
  const poolerPort = portOf(settings, "POOLER_PORT");
  const poolerUp = await tcpOpen("127.0.0.1", poolerPort);
  const bridgePort = portOf(settings, "BRIDGE_PORT");
  const bridgePid = runningPid(bridgeDaemon(profile));
  const bridgeUp = await bridgeHealthy(bridgePort);
  const base = settings.values.get("SUPABASE_URL") ?? "";
  const health = await httpStatus(`${base}/api/v1/health`, {}, 3_000);
  const note = (up: boolean, daemon: Parameters<typeof startedNote>[0]) =>
    up ? startedNote(daemon) : "";

  const lines: [string, boolean, string][] = [
    ["postgres", pgUp, `${db.host}:${db.port}${note(pgUp, POSTGRES_DAEMON)}`],
    ["redis", redisUp, `${REDIS_HOST}:${REDIS_PORT}${note(redisUp, REDIS_DAEMON)}`],
    ["database", database.up, database.detail],
    [
      "pgbouncer",
      poolerUp,
      `127.0.0.1:${poolerPort} (transaction mode)${note(poolerUp, pgbouncerDaemon(profile))}`,
    ],
    [
      "bridge",
      bridgeUp,
      `http://127.0.0.1:${bridgePort}` +
      (bridgePid === undefined
        ? (bridgeUp ? ", not started by this profile" : "")
        : `, pid ${bridgePid}`),
    ],
    [
      "dev server",
      health === 200,
      `${base}, ${
        health === undefined ? "not running (start it: deno task dev)" : `health ${health}`
      }`,
    ],
  ];
  const width = Math.max(...lines.map(([name]) => name.length));
  for (const [name, isUp, detail] of lines) {
    console.log(`${name.padEnd(width)}  ${isUp ? "up  " : "down"}  ${detail}`);
  }
  // The dev server runs separately (deno task dev), so it does not decide the exit code.
  return lines.slice(0, 5).every(([, isUp]) => isUp) ? 0 : 1;
}

function env(profile: Profile): number {
  const path = settingsPath(profile);
  if (readText(path) === undefined) {
    throw new StackError(`${path} does not exist yet: run deno task stack up --profile ${profile}`);
  }
  console.log(`# ${path}`);
  for (const [key, value] of readSettingsFile(profile)) console.log(maskLine(key, value));
  return 0;
}

const COMMANDS: Record<string, (profile: Profile) => Promise<number | void> | number> = {
  up,
  down,
  status,
  env,
};

async function main(args: string[]): Promise<number> {
  const { command, profile } = parseCommandLine(args);
  if (!Object.hasOwn(COMMANDS, command)) {
    throw new StackError(`unknown command "${command}" (${USAGE})`);
  }
  return await COMMANDS[command]!(profile) ?? 0;
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
