/**
 * Profiles, paths and the settings file of the local stack.
 *
 * The settings file `.local/<profile>.env` (KEY=VALUE lines, read by tools/local_env.ts) is
 * created by the first `up` and kept: each `up` rewrites it with
 * - `UPSTASH_REDIS_REST_TOKEN`, `TORVUS_GATEWAY_SECRET`: the environment's value, else the
 *   file's, else 32 random bytes in hex (so each is generated once and then stable);
 * - `BRIDGE_PORT`, `POOLER_PORT` (the profile's PgBouncer), `TORVUS_DB_POOL_MODE`,
 *   `TORVUS_HOST`, `TORVUS_PORT`, `TORVUS_KEY_MODES`, `TORVUS_DIRECT_ACCESS`,
 *   `TORVUS_REDIS_PREFIX`, `TORVUS_DEV_PASS_FORWARDED` (the dev server passes clients'
 *   X-Forwarded-For through: `true` for `test`, whose tests act as many clients),
 *   `TORVUS_RUNTIME_CONTROL` (the dev server's `/_runtime/...` endpoints, `true` for `test`),
 *   `TORVUS_WEBHOOK_ALLOW_LOOPBACK` (`true`: local receivers), `TORVUS_WEBHOOK_RETRY_BASE_MS` and
 *   `TORVUS_WEBHOOK_SWEEP_EVERY_MS` (seconds for `test`), `TORVUS_CONSOLE_PORT` (where the dev
 *   server serves the console): the environment's value, else the
 *   file's (edits are kept), else the profile's default;
 * - `TORVUS_CRON_SECRET` (the webhook sweep's scheduler): as the tokens above;
 * - `SUPABASE_URL`, `UPSTASH_REDIS_REST_URL`, `SUPABASE_DB_URL`, `TORVUS_DB_URL` (the same
 *   database through the profile's PgBouncer): the environment's value, else derived from
 *   the values above and the profile's database, so they follow a changed port;
 * - `TORVUS_PROFILE`: always the profile.
 * Other keys someone added to the file are kept as they are.
 *
 * Environment overrides are ignored when the environment belongs to another profile
 * (`TORVUS_PROFILE` set to a different profile, e.g. after sourcing `.local/dev.env`), so a
 * shell prepared for `dev` can never point the `test` profile's `db reset` at the dev database.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { envFileUrl, LOCAL_DIR, parseEnvFile } from "../local_env.ts";
import { readText, redact, StackError } from "./process.ts";

/** The stack profiles: `dev` keeps its data, `test` gets a clean database on every `up`. */
export type Profile = "dev" | "test";

export const PROFILE_NAMES: readonly Profile[] = ["dev", "test"];

/**
 * Each profile's database and its defaults of the settings that differ between profiles. The
 * test profile trusts clients' X-Forwarded-For (its tests act as many clients), answers
 * `/_runtime/...` (isolate stats, early drop) and logs every request line (tests read them).
 */
export const PROFILES = {
  dev: {
    database: "torvus",
    defaults: {
      TORVUS_PORT: "54321",
      BRIDGE_PORT: "8079",
      // Supavisor's transaction mode port.
      POOLER_PORT: "6543",
      TORVUS_REDIS_PREFIX: "torvus",
      TORVUS_DEV_PASS_FORWARDED: "false",
      TORVUS_RUNTIME_CONTROL: "false",
      TORVUS_LOG_REQUESTS_PER_10S: "50",
      // First retry delay of a failed webhook delivery (production: 60 s), and how often the dev
      // server runs the webhook sweep (pg_cron does on hosted Supabase).
      TORVUS_WEBHOOK_RETRY_BASE_MS: "10000",
      TORVUS_WEBHOOK_SWEEP_EVERY_MS: "10000",
      // The console beside the API, as Supabase's local Studio sits at 54323.
      TORVUS_CONSOLE_PORT: "54323",
    },
  },
  test: {
    database: "torvus_test",
    defaults: {
      // Below Linux's ephemeral range (32768-60999): a busy machine's outgoing connections can
      // hold a port in that range and make the server's bind fail. 54321 stays for dev, as
      // Supabase's local API uses it.
      TORVUS_PORT: "29331",
      BRIDGE_PORT: "8089",
      // Its own PgBouncer, so two clones running different profiles never share one.
      POOLER_PORT: "6544",
      TORVUS_REDIS_PREFIX: "torvus-test",
      TORVUS_DEV_PASS_FORWARDED: "true",
      TORVUS_RUNTIME_CONTROL: "true",
      TORVUS_LOG_REQUESTS_PER_10S: "1000000",
      // Backoff measured in seconds, so the suites see a retry without waiting minutes.
      TORVUS_WEBHOOK_RETRY_BASE_MS: "1000",
      TORVUS_WEBHOOK_SWEEP_EVERY_MS: "1000",
      TORVUS_CONSOLE_PORT: "29333",
    },
  },
} as const satisfies Record<
  Profile,
  { database: string; defaults: Partial<Record<SettingKey, string>> }
>;

const COMMON_DEFAULTS: Partial<Record<SettingKey, string>> = {
  TORVUS_HOST: "127.0.0.1",
  TORVUS_KEY_MODES: "live,test",
  // Direct calls stay possible locally (supabase.functions.invoke goes around the gateway).
  TORVUS_DIRECT_ACCESS: "allow",
  // The dev server, as the platform, overwrites this header with the client's address.
  TORVUS_DIRECT_IP_SOURCE: "header:cf-connecting-ip",
  // Said outright: the functions would only infer it from Supavisor's port, 6543.
  TORVUS_DB_POOL_MODE: "transaction",
  // Local receivers (tests, a developer's own) listen on loopback.
  TORVUS_WEBHOOK_ALLOW_LOOPBACK: "true",
};

export function isProfile(value: string): value is Profile {
  return (PROFILE_NAMES as readonly string[]).includes(value);
}

/** The repository root (absolute path, no trailing slash). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** `.local/` (absolute, no trailing slash): generated state, ignored by git. */
export const LOCAL = fileURLToPath(LOCAL_DIR).replace(/\/$/, "");
export const PIDS_DIR = `${LOCAL}/pids`;
export const LOGS_DIR = `${LOCAL}/logs`;

/** Where PostgreSQL and Redis are expected (the bridge's default REDIS_URL points here too). */
export const REDIS_HOST = "127.0.0.1";
export const REDIS_PORT = 6379;

/** The settings file of a profile (absolute path). */
export function settingsPath(profile: Profile): string {
  return fileURLToPath(envFileUrl(profile));
}

/** The keys every settings file has, in the order they are written. */
export const SETTING_KEYS = [
  "SUPABASE_URL",
  "SUPABASE_DB_URL",
  "UPSTASH_REDIS_REST_URL",
  "UPSTASH_REDIS_REST_TOKEN",
  "BRIDGE_PORT",
  "POOLER_PORT",
  "TORVUS_HOST",
  "TORVUS_PORT",
  "TORVUS_DB_URL",
  "TORVUS_DB_POOL_MODE",
  "TORVUS_GATEWAY_SECRET",
  "TORVUS_DIRECT_ACCESS",
  "TORVUS_DIRECT_IP_SOURCE",
  "TORVUS_KEY_MODES",
  "TORVUS_REDIS_PREFIX",
  "TORVUS_DEV_PASS_FORWARDED",
  "TORVUS_RUNTIME_CONTROL",
  "TORVUS_LOG_REQUESTS_PER_10S",
  "TORVUS_CRON_SECRET",
  "TORVUS_WEBHOOK_ALLOW_LOOPBACK",
  "TORVUS_WEBHOOK_RETRY_BASE_MS",
  "TORVUS_WEBHOOK_SWEEP_EVERY_MS",
  "TORVUS_CONSOLE_PORT",
  "TORVUS_PROFILE",
] as const;

export type SettingKey = (typeof SETTING_KEYS)[number];

export type Source = "environment" | "file" | "default" | "generated";

export interface Settings {
  profile: Profile;
  /** Every {@link SETTING_KEYS} key, then any extra keys of the file, in file order. */
  values: Map<string, string>;
  sources: Map<string, Source>;
  /** Whether environment overrides were ignored because the environment is another profile's. */
  ignoredForeignEnv: boolean;
}

/** The URL of a database of the local PostgreSQL, on its port or the pooler's. */
function pooledUrl(port: string | undefined, database: string): string {
  return `postgresql://postgres@127.0.0.1:${port}/${database}?sslmode=disable`;
}

/** The database a postgresql:// URL names (the profile's default when it names none). */
function databaseOf(url: string | undefined): string {
  const name = url === undefined ? "" : decodeURIComponent(new URL(url).pathname.slice(1));
  return name === "" ? "postgres" : name;
}

/** 32 random bytes, hex. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Computes the settings of a profile from the environment, the existing file (if any) and the
 * defaults; pure apart from `generate`, which is called only when no token exists yet.
 */
export function resolveSettings(
  profile: Profile,
  file: Map<string, string>,
  env: (name: string) => string | undefined,
  generate: () => string = randomToken,
): Settings {
  const { database, defaults } = PROFILES[profile];
  const envProfile = env("TORVUS_PROFILE");
  const ignoredForeignEnv = envProfile !== undefined && envProfile !== "" && envProfile !== profile;
  const fromEnv = (key: string): string | undefined => {
    if (ignoredForeignEnv) return undefined;
    const value = env(key);
    return value === undefined || value === "" ? undefined : value;
  };
  const values = new Map<string, string>();
  const sources = new Map<string, Source>();
  const set = (key: string, value: string, source: Source) => {
    values.set(key, value);
    sources.set(key, source);
  };
  /** The environment's value, else the fallback's. */
  const pick = (key: SettingKey, fallback: () => [string, Source]) => {
    const value = fromEnv(key);
    if (value !== undefined) set(key, value, "environment");
    else set(key, ...fallback());
  };
  /** The environment's value, else the file's (edits are kept), else `fallback`. */
  const keep = (key: SettingKey, fallback: string | (() => string)) =>
    pick(key, () => {
      const value = file.get(key);
      if (value !== undefined && value !== "") return [value, "file"];
      return typeof fallback === "string" ? [fallback, "default"] : [fallback(), "generated"];
    });

  for (const [key, value] of Object.entries({ ...COMMON_DEFAULTS, ...defaults })) {
    keep(key as SettingKey, value);
  }
  keep("UPSTASH_REDIS_REST_TOKEN", generate);
  keep("TORVUS_GATEWAY_SECRET", generate);
  // The scheduler's secret for the webhook sweep (pg_cron's on hosted Supabase).
  keep("TORVUS_CRON_SECRET", generate);
  const host = values.get("TORVUS_HOST") ?? "127.0.0.1";
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const derive = (key: SettingKey, value: () => string) => pick(key, () => [value(), "default"]);
  derive("SUPABASE_URL", () => `http://${urlHost}:${values.get("TORVUS_PORT")}`);
  derive("UPSTASH_REDIS_REST_URL", () => `http://127.0.0.1:${values.get("BRIDGE_PORT")}`);
  derive("SUPABASE_DB_URL", () => pooledUrl("5432", database));
  // The functions go through the pooler, as Supabase recommends for edge functions.
  derive("TORVUS_DB_URL", () => {
    return pooledUrl(values.get("POOLER_PORT"), databaseOf(values.get("SUPABASE_DB_URL")));
  });
  set("TORVUS_PROFILE", profile, "default");

  // Fixed order for the known keys, then whatever else the file holds.
  const ordered = new Map<string, string>();
  for (const key of SETTING_KEYS) ordered.set(key, values.get(key) ?? "");
  for (const [key, value] of file) {
    if (!ordered.has(key)) {
      ordered.set(key, value);
      sources.set(key, "file");
    }
  }
  return { profile, values: ordered, sources, ignoredForeignEnv };
}

/** Reads a profile's settings file (empty map if there is none). */
export function readSettingsFile(profile: Profile): Map<string, string> {
  try {
    return parseEnvFile(Deno.readTextFileSync(settingsPath(profile)));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new Map();
    throw error;
  }
}

/** The effective settings without writing anything (for `status` and `down`). */
export function currentSettings(profile: Profile): Settings {
  return resolveSettings(profile, readSettingsFile(profile), (n) => Deno.env.get(n), () => "");
}

export function renderSettings(settings: Settings): string {
  const lines = [
    `# Local stack settings of the '${settings.profile}' profile, written by`,
    `# \`deno task stack up --profile ${settings.profile}\`. Values are kept between runs (edit them`,
    "# here or override them with environment variables of the same name when running `up`).",
    "# Contains secrets: never commit or share this file.",
  ];
  for (const [key, value] of settings.values) lines.push(`${key}=${value}`);
  return lines.join("\n") + "\n";
}

/** Writes the settings file (mode 0600, it holds a token) if its content changed. */
export function writeSettings(settings: Settings): { path: string; changed: boolean } {
  const path = settingsPath(settings.profile);
  const text = renderSettings(settings);
  Deno.mkdirSync(LOCAL, { recursive: true });
  if (readText(path) === text) return { path, changed: false };
  Deno.writeTextFileSync(path, text, { mode: 0o600 });
  Deno.chmodSync(path, 0o600);
  return { path, changed: true };
}

/** A settings line for printing: secret values masked, URL passwords removed. */
export function maskLine(key: string, value: string): string {
  if (!/TOKEN|SECRET|PASSWORD|PRIVATE|SERVICE_ROLE/i.test(key) && !/_KEY$/.test(key)) {
    return `${key}=${redact(value)}`;
  }
  return `${key}=${
    value === "" ? "" : `****${value.length >= 16 ? ` (${value.length} chars)` : ""}`
  }`;
}

/** A port number from a setting (a StackError if it is not one). */
export function portOf(settings: Settings, key: SettingKey): number {
  const raw = settings.values.get(key) ?? "";
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new StackError(`${key} must be a port number (1-65535), got "${raw}"`);
  }
  return port;
}
