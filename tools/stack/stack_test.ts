/**
 * Tests of the local stack manager (tools/stack.ts). The pure parts (settings, masking) are
 * tested directly; the rest checks the `test` profile's stack that `scripts/test` brought up
 * (settings file, status, migrated database, bridge) without stopping anything it did not
 * start: the process tests only signal processes they spawn themselves.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { parseEnvFile } from "../local_env.ts";
import { BRIDGE_MARKER, bridgePidPath } from "./bridge.ts";
import {
  maskLine,
  readSettingsFile,
  renderSettings,
  resolveSettings,
  ROOT,
  SETTING_KEYS,
  settingsPath,
} from "./config.ts";
import {
  isAlive,
  isRecordedProcess,
  readPidFile,
  redact,
  spawnDetached,
  stopProcess,
} from "./process.ts";
import { parseDbUrl } from "./postgres.ts";
import { delay } from "../../supabase/functions/_shared/deadline.ts";

const TOKEN = "ab".repeat(32);
const noEnv = () => undefined;
const noGenerate = () => {
  throw new Error("the token must not be generated again");
};

Deno.test("stack settings: each profile's defaults have every key", () => {
  const test = resolveSettings("test", new Map(), noEnv, () => TOKEN);
  assert.deepEqual([...test.values.keys()], [...SETTING_KEYS]);
  assert.deepEqual(Object.fromEntries(test.values), {
    SUPABASE_URL: "http://127.0.0.1:29331",
    SUPABASE_DB_URL: "postgresql://postgres@127.0.0.1:5432/torvus_test?sslmode=disable",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8089",
    UPSTASH_REDIS_REST_TOKEN: TOKEN,
    BRIDGE_PORT: "8089",
    POOLER_PORT: "6544",
    TORVUS_HOST: "127.0.0.1",
    TORVUS_PORT: "29331",
    TORVUS_DB_URL: "postgresql://postgres@127.0.0.1:6544/torvus_test?sslmode=disable",
    TORVUS_DB_POOL_MODE: "transaction",
    TORVUS_GATEWAY_SECRET: TOKEN,
    TORVUS_DIRECT_ACCESS: "allow",
    TORVUS_DIRECT_IP_SOURCE: "header:cf-connecting-ip",
    TORVUS_KEY_MODES: "live,test",
    TORVUS_REDIS_PREFIX: "torvus-test",
    TORVUS_DEV_PASS_FORWARDED: "true",
    TORVUS_RUNTIME_CONTROL: "true",
    TORVUS_LOG_REQUESTS_PER_10S: "1000000",
    TORVUS_CRON_SECRET: TOKEN,
    TORVUS_WEBHOOK_ALLOW_LOOPBACK: "true",
    TORVUS_WEBHOOK_RETRY_BASE_MS: "1000",
    TORVUS_WEBHOOK_SWEEP_EVERY_MS: "1000",
    TORVUS_CONSOLE_PORT: "29333",
    TORVUS_PROFILE: "test",
  });
  const dev = resolveSettings("dev", new Map(), noEnv, () => TOKEN);
  assert.equal(dev.values.get("SUPABASE_URL"), "http://127.0.0.1:54321");
  assert.equal(
    dev.values.get("SUPABASE_DB_URL"),
    "postgresql://postgres@127.0.0.1:5432/torvus?sslmode=disable",
  );
  assert.equal(dev.values.get("UPSTASH_REDIS_REST_URL"), "http://127.0.0.1:8079");
  assert.equal(
    dev.values.get("TORVUS_DB_URL"),
    "postgresql://postgres@127.0.0.1:6543/torvus?sslmode=disable",
  );
  assert.equal(dev.values.get("TORVUS_REDIS_PREFIX"), "torvus");
  assert.equal(dev.values.get("TORVUS_DEV_PASS_FORWARDED"), "false");
  assert.equal(dev.values.get("TORVUS_RUNTIME_CONTROL"), "false");
  assert.equal(dev.values.get("TORVUS_PROFILE"), "dev");
});

Deno.test("stack settings: the token is generated once, then kept from the file", () => {
  const first = resolveSettings("dev", new Map(), noEnv);
  const token = first.values.get("UPSTASH_REDIS_REST_TOKEN") ?? "";
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(first.sources.get("UPSTASH_REDIS_REST_TOKEN"), "generated");

  const file = parseEnvFile(renderSettings(first));
  const second = resolveSettings("dev", file, noEnv, noGenerate);
  assert.equal(second.values.get("UPSTASH_REDIS_REST_TOKEN"), token);
  assert.equal(renderSettings(second), renderSettings(first));
});

Deno.test("stack settings: the environment overrides, derived URLs follow the ports", () => {
  const file = new Map([
    ["UPSTASH_REDIS_REST_TOKEN", TOKEN],
    ["TORVUS_GATEWAY_SECRET", TOKEN],
    ["TORVUS_CRON_SECRET", TOKEN],
    ["MY_EXTRA", "kept"],
  ]);
  const env: Record<string, string> = {
    TORVUS_PORT: "60001",
    BRIDGE_PORT: "60002",
    POOLER_PORT: "60004",
  };
  const settings = resolveSettings("test", file, (name) => env[name], noGenerate);
  assert.equal(settings.values.get("TORVUS_PORT"), "60001");
  assert.equal(settings.values.get("SUPABASE_URL"), "http://127.0.0.1:60001");
  assert.equal(settings.values.get("UPSTASH_REDIS_REST_URL"), "http://127.0.0.1:60002");
  assert.equal(
    settings.values.get("TORVUS_DB_URL"),
    "postgresql://postgres@127.0.0.1:60004/torvus_test?sslmode=disable",
  );
  assert.equal(settings.sources.get("TORVUS_PORT"), "environment");
  assert.equal(settings.values.get("UPSTASH_REDIS_REST_TOKEN"), TOKEN);
  assert.equal(settings.values.get("MY_EXTRA"), "kept");

  // Edited values in the file are kept when the environment says nothing.
  const edited = resolveSettings("test", new Map([...file, ["TORVUS_PORT", "60003"]]), noEnv);
  assert.equal(edited.values.get("SUPABASE_URL"), "http://127.0.0.1:60003");
});

Deno.test("stack settings: another profile's environment is not taken as overrides", () => {
  const devEnv: Record<string, string> = {
    TORVUS_PROFILE: "dev",
    SUPABASE_DB_URL: "postgresql://postgres@127.0.0.1:5432/torvus?sslmode=disable",
    TORVUS_PORT: "54321",
  };
  const settings = resolveSettings("test", new Map(), (name) => devEnv[name], () => TOKEN);
  assert.equal(settings.ignoredForeignEnv, true);
  assert.equal(parseDbUrl(settings.values.get("SUPABASE_DB_URL") ?? "").database, "torvus_test");
  assert.equal(settings.values.get("TORVUS_PORT"), "29331");
  assert.equal(settings.values.get("TORVUS_PROFILE"), "test");
});

Deno.test("stack env: secrets and URL passwords are masked", () => {
  assert.equal(
    maskLine("UPSTASH_REDIS_REST_TOKEN", TOKEN),
    "UPSTASH_REDIS_REST_TOKEN=**** (64 chars)",
  );
  assert.equal(maskLine("SOME_API_KEY", "x"), "SOME_API_KEY=****");
  assert.equal(maskLine("TORVUS_KEY_MODES", "live,test"), "TORVUS_KEY_MODES=live,test");
  assert.equal(
    maskLine("SUPABASE_DB_URL", "postgresql://postgres:hunter2@db.example:5432/x"),
    "SUPABASE_DB_URL=postgresql://postgres:***@db.example:5432/x",
  );
  assert.equal(redact("failed: postgres://u:pw@h/db"), "failed: postgres://u:***@h/db");
});

// --- the running test stack (brought up by scripts/test) ---------------------------------------

function testSettings(): Map<string, string> {
  const values = readSettingsFile("test");
  assert.ok(values.size > 0, `${settingsPath("test")} is missing: run ./scripts/test`);
  return values;
}

async function stack(...args: string[]): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tools/stack.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    out: decoder.decode(output.stdout) + decoder.decode(output.stderr),
  };
}

Deno.test("stack up: the test profile's settings file has every key and a private token", () => {
  const values = testSettings();
  for (const key of SETTING_KEYS) assert.ok(values.get(key), `${key} is missing or empty`);
  assert.match(values.get("UPSTASH_REDIS_REST_TOKEN") ?? "", /^[0-9a-f]{64}$/);
  assert.equal(values.get("TORVUS_PROFILE"), "test");
  assert.equal((Deno.statSync(settingsPath("test")).mode ?? 0) & 0o077, 0, "mode must be 0600");
});

Deno.test("stack status: postgres, redis, database and bridge are up", async () => {
  const { code, out } = await stack("status", "--profile", "test");
  for (const part of ["postgres", "redis", "database", "bridge"]) {
    assert.match(out, new RegExp(`^${part}\\s+up\\s`, "m"), out);
  }
  assert.match(out, /^dev server\s+(up|down)\s/m);
  assert.equal(code, 0, out);
});

Deno.test("stack env: prints the settings with the token masked", async () => {
  const token = testSettings().get("UPSTASH_REDIS_REST_TOKEN") ?? "";
  const { code, out } = await stack("env", "--profile", "test");
  assert.equal(code, 0, out);
  assert.ok(out.includes(settingsPath("test")));
  assert.match(out, /^UPSTASH_REDIS_REST_TOKEN=\*{4}/m);
  assert.ok(!out.includes(token), "the token must not be printed");
});

Deno.test("stack: an unknown profile or command fails with one clear line", async () => {
  const bad = await stack("up", "--profile", "prod");
  assert.equal(bad.code, 1);
  assert.match(bad.out.trim(), /^stack: unknown profile "prod"/);
  const unknown = await stack("launch");
  assert.equal(unknown.code, 1);
  assert.match(unknown.out.trim(), /^stack: unknown command "launch"/);
});

Deno.test("stack up: the test database is migrated", async () => {
  const url = Deno.env.get("SUPABASE_DB_URL") ?? testSettings().get("SUPABASE_DB_URL") ?? "";
  assert.equal(parseDbUrl(url).database, "torvus_test");
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const tables = await sql<{ name: string }[]>`
      select table_name as name from information_schema.tables where table_schema = 'public'`;
    const names = tables.map((t) => t.name);
    for (const table of ["tiers", "accounts", "api_keys", "vaults", "api_request_log"]) {
      assert.ok(names.includes(table), `public.${table} is missing (have ${names.join(", ")})`);
    }
    const applied = (await sql<{ version: string }[]>`
      select version from supabase_migrations.schema_migrations`).map((r) => r.version);
    const files = [...Deno.readDirSync(`${ROOT}/supabase/migrations`)]
      .filter((e) => e.name.endsWith(".sql"))
      .map((e) => e.name.split("_")[0] ?? "");
    assert.ok(files.length > 0);
    for (const version of files) assert.ok(applied.includes(version), `${version} not applied`);
  } finally {
    await sql.end({ timeout: 5 });
  }
});

Deno.test("stack up: the bridge runs detached, answers /health and accepts the token", async () => {
  const values = testSettings();
  const base = Deno.env.get("UPSTASH_REDIS_REST_URL") ?? values.get("UPSTASH_REDIS_REST_URL");
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { ok: true });

  const ping = await fetch(`${base}/`, {
    method: "POST",
    headers: { authorization: `Bearer ${values.get("UPSTASH_REDIS_REST_TOKEN")}` },
    body: '["PING"]',
  });
  assert.equal(ping.status, 200);
  assert.deepEqual(await ping.json(), { result: "PONG" });

  const pid = readPidFile(bridgePidPath("test"));
  assert.ok(pid !== undefined, "no bridge pid file");
  assert.ok(isRecordedProcess(pid, BRIDGE_MARKER), `pid ${pid} is not a running bridge`);
  // Its own session: Ctrl-C in the terminal and the end of the calling shell do not reach it.
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  assert.equal(Number(fields[3]), pid, "the bridge should lead its own session");
});

// --- process handling: only processes this test spawned are signalled --------------------------

Deno.test("stack process: a recorded pid must still be the recorded program", async () => {
  const child = new Deno.Command("sleep", { args: ["30"], stdin: "null" }).spawn();
  try {
    assert.ok(isAlive(child.pid));
    // Right after spawn the child may not have exec'd yet: its cmdline is still Deno's.
    for (let i = 0; i < 200 && !isRecordedProcess(child.pid, "sleep"); i++) {
      await delay(10);
    }
    assert.ok(isRecordedProcess(child.pid, "sleep"));
    // What `down` checks before signalling a pid from a pid file: a stranger is left alone.
    assert.equal(isRecordedProcess(child.pid, BRIDGE_MARKER), false);
    assert.equal(isRecordedProcess(child.pid, "redis-server"), false);
    assert.equal(isRecordedProcess(Deno.pid, BRIDGE_MARKER), false);
  } finally {
    assert.equal(await stopProcess(child.pid, ["SIGTERM", "SIGKILL"], 5_000), "SIGTERM");
    await child.status;
  }
  assert.equal(isAlive(child.pid), false);
  assert.equal(isRecordedProcess(child.pid, "sleep"), false);
});

Deno.test("stack process: SIGKILL follows when SIGTERM is ignored", async () => {
  const child = new Deno.Command("sh", {
    args: ["-c", 'trap "" TERM; exec sleep 30'],
    stdin: "null",
  }).spawn();
  try {
    await delay(200);
    assert.equal(await stopProcess(child.pid, ["SIGTERM", "SIGKILL"], 300), "SIGKILL");
  } finally {
    await child.status;
  }
});

Deno.test({
  name: "stack process: a detached process outlives its starter and logs to its file",
  // The detached child is unref'd on purpose; it is stopped below by its pid.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const logPath = await Deno.makeTempFile({ suffix: ".log" });
    const pid = spawnDetached({
      cmd: "sh",
      args: ["-c", "echo started; exec sleep 30"],
      cwd: ROOT,
      env: {},
      logPath,
    });
    try {
      const deadline = Date.now() + 5_000;
      while (Deno.readTextFileSync(logPath) === "" && Date.now() < deadline) {
        await delay(50);
      }
      assert.equal(Deno.readTextFileSync(logPath), "started\n");
      // The shell writes before it execs: wait for the exec too.
      while (!isRecordedProcess(pid, "sleep 30") && Date.now() < deadline) {
        await delay(20);
      }
      assert.ok(isRecordedProcess(pid, "sleep 30"));
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      assert.equal(Number(fields[3]), pid, "a detached process leads its own session");
    } finally {
      assert.ok(await stopProcess(pid, ["SIGTERM", "SIGKILL"], 5_000));
      Deno.removeSync(logPath);
    }
  },
});
