/**
 * The admin CLI, run as a subprocess against the test database (`SUPABASE_DB_URL`), with its
 * signing key in a temporary file.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLocalJWKSet, errors, jwtVerify } from "jose";
import { hashApiKey, parseApiKey } from "../supabase/functions/_shared/auth/key_format.ts";
import { clearSigningKeyCache, publicJwks } from "../tools/local_auth.ts";
import { COMMANDS, commandsHelp } from "../tools/admin/commands.ts";
import { createApiKey, setKeyStatus } from "../tools/admin/ops.ts";
import { createRedis } from "../supabase/functions/_shared/redis.ts";
import { createRedisKeyEpoch } from "../supabase/functions/_shared/auth/key_epoch.ts";
import { connectTestDb } from "./_db.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SUPABASE_URL = Deno.env.get("SUPABASE_URL") ?? "http://127.0.0.1:54321";
const ISSUER = `${SUPABASE_URL.replace(/\/+$/, "")}/auth/v1`;
const keyDir = Deno.makeTempDirSync({ prefix: "torvus-admin-" });
const keyFile = join(keyDir, "signing-key.json");
globalThis.addEventListener("unload", () => Deno.removeSync(keyDir, { recursive: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Runs `tools/admin.ts` with these arguments; `unset` names variables to remove. */
async function admin(args: string[], unset: string[] = []): Promise<Run> {
  // No .local profile file (TORVUS_PROFILE names none): the test decides every setting.
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    SUPABASE_URL,
    TORVUS_AUTH_KEY_FILE: keyFile,
    TORVUS_PROFILE: "admin-test-none",
  };
  for (const name of unset) delete env[name];
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tools/admin.ts", ...args],
    cwd: ROOT,
    clearEnv: true,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  return { code: output.code, stdout, stderr, lines: stdout.split("\n").filter((l) => l !== "") };
}

/** Asserts a failure: this exit code, nothing on stdout, one `admin: …` line on stderr. */
async function fails(args: string[], code: 1 | 2, message: RegExp, unset: string[] = []) {
  const run = await admin(args, unset);
  assert.equal(run.code, code, `exit code of ${args.join(" ")}: ${run.stderr}`);
  assert.equal(run.stdout, "");
  const lines = run.stderr.trim().split("\n");
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0] ?? "", /^admin: /);
  assert.match(run.stderr, message);
}

async function ok(args: string[]): Promise<string[]> {
  const run = await admin(args);
  assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
  return run.lines;
}

const email = () => `admin-${crypto.randomUUID()}@test.local`;

Deno.test("usage: --help and no arguments exit 2 with usage on stderr", async () => {
  for (const args of [[], ["--help"], ["key", "create", "--help"]]) {
    const run = await admin(args);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /usage: deno task admin/);
  }
  await fails(["frobnicate"], 2, /unknown command/);
  await fails(["user", "create"], 2, /usage: user create <email>/);
  await fails(["key", "list", "--email", email(), "--ttl", "5"], 2, /--ttl is not an option/);
});

Deno.test("user create: prints the id, reuses an existing user", async () => {
  const address = email();
  const [id, ...rest] = await ok(["user", "create", address]);
  assert.match(id ?? "", UUID);
  assert.deepEqual(rest, []);
  assert.deepEqual(await ok(["user", "create", address.toUpperCase()]), [id]);
  const sql = connectTestDb(1);
  try {
    const rows =
      await sql`select t.name from public.accounts a join public.tiers t on t.id = a.tier_id
      where a.user_id = ${id ?? ""}`;
    assert.deepEqual(rows.map((r) => r.name), ["free"]);
  } finally {
    await sql.end();
  }
  await fails(["user", "create", "not-an-email"], 2, /admin: email: not a valid email address/);
});

Deno.test("token: one line that verifies, for a user created on demand", async () => {
  const address = email();
  const [token, ...rest] = await ok(["token", address]);
  assert.deepEqual(rest, []);
  clearSigningKeyCache();
  const jwks = createLocalJWKSet(await publicJwks(keyFile));
  const { payload, protectedHeader } = await jwtVerify(token ?? "", jwks, {
    issuer: ISSUER,
    audience: "authenticated",
  });
  assert.equal(protectedHeader.alg, "ES256");
  assert.deepEqual(await ok(["user", "create", address]), [payload.sub]);
  assert.equal(payload.email, address);
  assert.equal(payload.role, "authenticated");
  assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);

  const [expired] = await ok(["token", address, "--ttl", "-60"]);
  await assert.rejects(jwtVerify(expired ?? "", jwks, { issuer: ISSUER }), errors.JWTExpired);
  const [short] = await ok(["token", address, "--ttl=120"]);
  const claims = (await jwtVerify(short ?? "", jwks, { issuer: ISSUER })).payload;
  assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 120);

  await fails(["token", address], 2, /SUPABASE_URL/, ["SUPABASE_URL"]);
  await fails(["token", address, "--ttl", "soon"], 2, /--ttl/);
});

Deno.test("key create: id and key on two lines; only start and SHA-256 stored", async () => {
  const address = email();
  const run = await admin([
    "key",
    "create",
    "--email",
    address,
    "--tier",
    "professional",
    "--mode",
    "test",
    "--name",
    "ci key",
    "--scopes",
    "read,write",
    "--expires-at",
    "2031-01-02T03:04:05Z",
  ]); // deno-fmt-ignore
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.lines.length, 2);
  const [id = "", key = ""] = run.lines;
  assert.match(id, ULID);
  assert.deepEqual(parseApiKey(key), { ok: true, mode: "test" });
  assert.equal(run.stdout, `${id}\n${key}\n`, "the key appears only on its own line");
  assert.ok(!run.stderr.includes(key), "the key is not on stderr");

  const sql = connectTestDb(1);
  try {
    const [row] = await sql`
      select k.key_hash, k.start, k.name, k.mode, k.scopes, k.status, k.expires_at, t.name as tier,
        u.email
      from public.api_keys k join public.tiers t on t.id = k.tier_id
        join auth.users u on u.id = k.user_id
      where k.id = ${id}`;
    assert.ok(row);
    const hash = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
    assert.ok(hash.equals(row.key_hash));
    assert.equal(row.start, key.slice(0, 12));
    assert.deepEqual(
      [row.name, row.mode, row.scopes, row.status, row.tier, row.email],
      ["ci key", "test", ["read", "write"], "active", "professional", address],
    );
    assert.equal((row.expires_at as Date).toISOString(), "2031-01-02T03:04:05.000Z");
    const stored = await sql`select 1 from public.api_keys where start = ${key} or name = ${key}`;
    assert.equal(stored.length, 0, "the key itself is not stored");
    for (const text of [run.stdout, run.stderr]) {
      for (const form of ["hex", "base64", "base64url"] as const) {
        assert.ok(!text.includes(hash.toString(form)), `hash (${form}) printed`);
      }
    }
  } finally {
    await sql.end();
  }

  const lines = await ok(["key", "list", "--email", address]);
  assert.deepEqual(lines.map((l) => l.split("\t")), [
    [id, "ci key", "test", "active", key.slice(0, 12), "professional", "2031-01-02T03:04:05.000Z"],
  ]);
});

Deno.test("key status and expire-at update the key and print its id", async () => {
  const address = email();
  const [id = ""] = await ok([
    "key",
    "create",
    "--email",
    address,
    "--tier",
    "free",
    "--mode",
    "live",
  ]);
  assert.deepEqual(await ok(["key", "status", id, "revoked"]), [id]);
  assert.deepEqual(await ok(["key", "expire-at", id, "2030-06-01T00:00:00+02:00"]), [id]);
  let [line] = await ok(["key", "list", "--email", address]);
  let fields = line?.split("\t") ?? [];
  assert.equal(fields[3], "revoked");
  assert.equal(fields[6], "2030-05-31T22:00:00.000Z");
  assert.deepEqual(fields.slice(1, 3), ["live key", "live"]);

  assert.deepEqual(await ok(["key", "status", id, "active"]), [id]);
  assert.deepEqual(await ok(["key", "expire-at", id, "never"]), [id]);
  [line] = await ok(["key", "list", "--email", address]);
  fields = line?.split("\t") ?? [];
  assert.equal(fields[3], "active");
  assert.equal(fields[6], "never");

  await fails(["key", "status", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "revoked"], 2, /unknown key/);
  await fails(["key", "status", id, "paused"], 2, /status must be/);
  await fails(["key", "status", "not-a-key", "revoked"], 2, /key id/);
  await fails(["key", "expire-at", id, "tomorrow"], 2, /ISO 8601/);
  await fails(["key", "list", "--email", email()], 2, /unknown user/);
});

Deno.test("user tier and tier create/list", async () => {
  const name = `t-${crypto.randomUUID().slice(0, 8)}`;
  const [tierId = "", ...rest] = await ok([
    "tier",
    "create",
    name,
    "--per-minute",
    "7",
    "--per-day",
    "700",
  ]);
  assert.match(tierId, ULID);
  assert.deepEqual(rest, []);
  const listed = (await ok(["tier", "list"])).map((l) => l.split("\t"));
  assert.deepEqual(listed.find((f) => f[1] === name), [tierId, name, "7", "700", "14", "1400"]);
  assert.ok(listed.some((f) => f[1] === "free"));
  await fails(
    ["tier", "create", name, "--per-minute", "7", "--per-day", "700"],
    2,
    /already exists/,
  );
  await fails(
    ["tier", "create", "Bad Name", "--per-minute", "1", "--per-day", "1"],
    2,
    /tier name/,
  );
  await fails(
    ["tier", "create", `${name}x`, "--per-minute", "0", "--per-day", "1"],
    2,
    /--per-minute/,
  );
  await fails(["tier", "create", `${name}y`, "--per-day", "1"], 2, /needs --per-minute/);

  const address = email();
  await ok(["user", "create", address]);
  assert.deepEqual(await ok(["user", "tier", address, name]), []);
  const [, key] = await ok(["key", "create", "--email", address, "--tier", name, "--mode", "live"]);
  assert.ok(key?.startsWith("sk_live_"));
  const sql = connectTestDb(1);
  try {
    const [row] =
      await sql`select a.tier_id from public.accounts a join auth.users u on u.id = a.user_id
      where u.email = ${address}`;
    assert.equal(row?.tier_id, tierId);
  } finally {
    await sql.end();
  }
  await fails(["user", "tier", address, "no-such-tier"], 2, /unknown tier: no-such-tier/);
  await fails(["user", "tier", email(), "free"], 2, /unknown user/);
});

Deno.test("key create: input and database errors", async () => {
  const address = email();
  const base = ["key", "create", "--email", address];
  await fails([...base, "--tier", "no-such-tier", "--mode", "live"], 2, /unknown tier/);
  await fails(["key", "create", "--email", "bad@", "--tier", "free", "--mode", "live"], 2, /email/);
  await fails(
    [...base, "--tier", "free", "--mode", "prod"],
    2,
    /--mode: mode must be live or test/,
  );
  await fails([...base, "--tier", "free"], 2, /needs --mode/);
  await fails([...base, "--tier", "free", "--mode", "live", "--scopes", "read,admin"], 2, /scopes/);
  await fails(
    [...base, "--tier", "free", "--mode", "live", "--expires-at", "2030-01-01"],
    2,
    /ISO/,
  );
  await fails([...base, "--tier", "free", "--mode", "live", "--ip-allowlist", "nope"], 2, /ip/);
  const allowing = (
    list: string,
  ) => [...base, "--tier", "enterprise", "--mode", "live", "--ip-allowlist", list];
  // Host bits set: valid to zod, refused by Postgres' cidr type (a data exception: exit 2).
  await fails(allowing("10.0.0.1/8"), 2, /admin: database: invalid cidr value/);
  const [, key] = await ok(allowing("10.0.0.0/8,::1"));
  assert.ok(key?.startsWith("sk_live_"));
  await fails(["tier", "list", "--db-url", "postgresql://postgres@127.0.0.1:1/none"], 1, /admin: /);
  await fails(["tier", "list"], 2, /SUPABASE_DB_URL/, ["SUPABASE_DB_URL"]);
});

// --- operator actions on tiers and key status ------------------------------------------------

/** The key-state epoch the API's caches are checked against (same Redis, same prefix). */
function keyEpoch() {
  const url = Deno.env.get("UPSTASH_REDIS_REST_URL");
  const token = Deno.env.get("UPSTASH_REDIS_REST_TOKEN");
  if (!url || !token) throw new Error("UPSTASH_REDIS_REST_URL/TOKEN are not set");
  const prefix = Deno.env.get("TORVUS_REDIS_PREFIX") ?? "torvus";
  const epoch = createRedisKeyEpoch(createRedis({ url, token, timeoutMs: 2000 }).redis, prefix);
  /** The epochs of these keys, in order. */
  return async (keys: string[]) =>
    await Promise.all(keys.map((key) => epoch.current(hashApiKey(key))));
}

/** Tier names of these keys, by id. */
async function tiersOf(ids: string[]): Promise<Record<string, string>> {
  const sql = connectTestDb(1);
  try {
    const rows = await sql<{ id: string; tier: string }[]>`
      select k.id, t.name as tier from public.api_keys k join public.tiers t on t.id = k.tier_id
      where k.id = any(${ids})`;
    return Object.fromEntries(rows.map((r) => [r.id, r.tier]));
  } finally {
    await sql.end();
  }
}

Deno.test("key tier: moves one key to a tier, prints its id, announces the change", async () => {
  const address = email();
  const sql = connectTestDb(1);
  let id: string, other: string, key: string;
  try {
    ({ id, key } = await createApiKey(sql, { email: address, tier: "free", mode: "live" }));
    other = (await createApiKey(sql, { email: address, tier: "free", mode: "test" })).id;
  } finally {
    await sql.end();
  }
  const epochs = keyEpoch();
  const [before] = await epochs([key]);
  assert.deepEqual(await ok(["key", "tier", id.toLowerCase(), "professional"]), [id]);
  const [after] = await epochs([key]);
  assert.notEqual(after, before, "the change is announced (the key's epoch moved)");
  assert.deepEqual(await tiersOf([id, other]), { [id]: "professional", [other]: "free" });

  await fails(["key", "tier", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "free"], 2, /unknown key/);
  await fails(["key", "tier", id, "no-such-tier"], 2, /unknown tier: no-such-tier/);
  await fails(["key", "tier", "not-a-key", "free"], 2, /key id/);
  await fails(["key", "tier", id, "Bad Tier"], 2, /tier/);
  await fails(["key", "tier", id], 2, /usage: key tier <key-id> <tier>/);
  assert.deepEqual(await tiersOf([id]), { [id]: "professional" }, "failures change nothing");
});

Deno.test("user tier: moves the user's non-revoked keys too and announces it", async () => {
  const address = email();
  const bystander = email();
  const sql = connectTestDb(1);
  let active: string, suspended: string, revoked: string, theirs: string;
  const presented: string[] = [];
  try {
    const first = await createApiKey(sql, { email: address, tier: "free", mode: "live" });
    const second = await createApiKey(sql, { email: address, tier: "free", mode: "test" });
    [active, suspended] = [first.id, second.id];
    presented.push(first.key, second.key);
    revoked = (await createApiKey(sql, { email: address, tier: "free", mode: "live" })).id;
    theirs = (await createApiKey(sql, { email: bystander, tier: "free", mode: "live" })).id;
    await setKeyStatus(sql, suspended, "suspended");
    await setKeyStatus(sql, revoked, "revoked");
  } finally {
    await sql.end();
  }
  const epochs = keyEpoch();
  const before = await epochs(presented);
  const run = await admin(["user", "tier", address, "enterprise"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "");
  assert.match(run.stderr, /tier of .* is now enterprise; 2 keys moved to it/);
  const after = await epochs(presented);
  before.forEach((epoch, i) => assert.notEqual(after[i], epoch, "each moved key's epoch moved"));
  assert.deepEqual(await tiersOf([active, suspended, revoked, theirs]), {
    [active]: "enterprise",
    [suspended]: "enterprise",
    [revoked]: "free",
    [theirs]: "free",
  });
  // Setting the tier it already has moves nothing.
  const again = await admin(["user", "tier", address, "enterprise"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /0 keys moved/);
});

// The CLI's --help text is assembled in tools/admin.ts (USAGE), which does not render these
// lines yet: see the report's proposed diff. What the commands say is checked here.
Deno.test("help: key status names suspend/reactivate; user tier and key tier say what moves", () => {
  const status = COMMANDS["key status"]?.help.join("\n") ?? "";
  assert.match(status, /suspended: suspend the key/);
  assert.match(status, /active: reactivate a suspended key/);
  assert.match(status, /10 s/);
  const userTier = COMMANDS["user tier"]?.help.join("\n") ?? "";
  assert.match(userTier, /existing\s+non-revoked keys/);
  assert.match(userTier, /upgrade applies\s+to keys already issued/);
  assert.match(COMMANDS["key tier"]?.help.join("\n") ?? "", /^ {2}key tier <key-id> <tier>\s+move/);
  const text = commandsHelp();
  for (const name of Object.keys(COMMANDS)) {
    assert.ok(text.includes(`  ${name}`), `usage lists ${name}`);
  }
  for (const line of text.split("\n")) assert.ok(line.length <= 100, `line too long: ${line}`);
});
