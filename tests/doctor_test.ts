/**
 * `deno task doctor` (tools/doctor.ts) as a user runs it after deploying: a child process on
 * Deno 2.1, against a running server, with the service settings in its environment.
 *
 * - Against the dev server under test: every check passes but one: the test profile's dev
 *   server passes X-Forwarded-For on as the client's address on purpose (its tests act as many
 *   clients), which the doctor must catch.
 * - A deployment as Supabase's is built: the functions reach PostgreSQL over TLS, the server
 *   presenting its certificate and an intermediate under a private root (TORVUS_DB_CA_CERT), and
 *   the front end strips forged addresses: every check passes, exit 0.
 * - Failures are diagnosed: a wrong root (the cause named, the presented chain printed), Redis
 *   unreachable, a front end that forwards paths outside the public table.
 *
 * No run prints a secret: the API key, the Redis token, the gateway secret, the DB password.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { EDGE_DENO, EDGE_DENO_ENV } from "../tools/runtime/edge_deno.ts";
import { createApiKey } from "../tools/admin/ops.ts";
import { plan } from "../tools/doctor.ts";
import { BASE_URL, closeDbLast, e2e, newKey } from "./_harness.ts";
import {
  baseEnv,
  freePort,
  LOG_DIR,
  ROOT,
  stackEnv,
  startDevServer,
} from "./_support/dev_server.ts";
import { startPrivatePostgres } from "./_support/private_postgres.ts";
import { testCertificates } from "../supabase/functions/_shared/testing/tls.ts";

/** One doctor run: exit code, output, and each check's status and lines. */
interface Run {
  code: number;
  out: string;
  checks: Map<string, { status: string; text: string }>;
}

let runs = 0;

/**
 * Runs the doctor as `deno task doctor` does (Deno 2.1, no lock file) with only `env`; its
 * output also goes to .local/logs/doctor-<n>.log.
 */
async function doctor(base: string, env: Record<string, string>): Promise<Run> {
  const output = await new Deno.Command(EDGE_DENO, {
    args: ["run", "--no-lock", "--allow-all", "tools/doctor.ts", base],
    cwd: ROOT,
    env: { ...baseEnv(), ...EDGE_DENO_ENV, ...env },
    clearEnv: true,
    stdin: "null",
  }).output();
  const out = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  await Deno.writeTextFile(`${LOG_DIR}/doctor-${++runs}.log`, out);
  const checks = new Map<string, { status: string; text: string }>();
  let current: { status: string; text: string } | undefined;
  for (const line of out.split("\n")) {
    const head = /^(ok|FAIL|skip) +([^:]+): /.exec(line);
    if (head) {
      current = { status: head[1]!, text: line };
      checks.set(head[2]!, current);
    } else if (current && line.startsWith("      ")) {
      current.text += `\n${line}`;
    }
  }
  return { code: output.code, out, checks };
}

/** Every check the doctor runs, in order. */
const CHECKS = plan("http://127.0.0.1:1", {}).checks.map((c) => c.name);

/** Asserts each named check has `status`, with the whole output as the message. */
function assertStatus(run: Run, status: string, names: readonly string[]) {
  for (const name of names) {
    assert.equal(run.checks.get(name)?.status, status, `${name}:\n${run.out}`);
  }
}

function assertNoSecret(run: Run, secrets: readonly string[]) {
  for (const secret of secrets) {
    assert.ok(secret.length >= 8 && !run.out.includes(secret), `a secret was printed:\n${run.out}`);
  }
}

/** The test profile's settings, as scripts/test exports them. */
function profile(): Record<string, string> {
  const out: Record<string, string> = {};
  for (
    const name of [
      "SUPABASE_URL",
      "TORVUS_DB_URL",
      "TORVUS_DB_POOL_MODE",
      "UPSTASH_REDIS_REST_URL",
      "UPSTASH_REDIS_REST_TOKEN",
      "TORVUS_GATEWAY_SECRET",
    ]
  ) {
    const value = Deno.env.get(name);
    if (value) out[name] = value;
  }
  return out;
}

e2e("doctor: the dev server under test passes all but its deliberate X-Forwarded-For", async () => {
  const key = await newKey();
  const env: Record<string, string> = { ...profile(), TORVUS_DOCTOR_API_KEY: key.key };
  const run = await doctor(BASE_URL, env);
  assert.deepEqual([...run.checks.keys()], CHECKS, run.out);
  assertStatus(run, "ok", CHECKS.filter((c) => c !== "client addresses"));
  assertStatus(run, "FAIL", ["client addresses"]);
  assert.match(run.checks.get("client addresses")!.text, /cause: .*X-Forwarded-For/);
  assert.match(run.checks.get("database pool mode")!.text, /transaction pooler/);
  assert.match(run.checks.get("test key")!.text, new RegExp(`key ${key.id}`));
  assert.equal(run.code, 1, run.out);
  assertNoSecret(run, [key.key, env.UPSTASH_REDIS_REST_TOKEN!, env.TORVUS_GATEWAY_SECRET!]);
});

e2e("doctor: TLS through a private root and an intermediate, and the diagnoses", async () => {
  const stack = stackEnv();
  await using pg = await startPrivatePostgres({
    port: freePort(),
    database: "doctor",
    log: () => {},
    tls: true,
  });
  const password = `pw-${crypto.randomUUID()}`;
  // Trust authentication ignores the password; the doctor must still never print it.
  const tlsUrl = pg.url.replace("postgres@", `postgres:${password}@`)
    .replace("sslmode=disable", "sslmode=require");
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  const key = await createApiKey(admin, {
    tier: "free",
    mode: "test",
    email: `doctor-${crypto.randomUUID()}@test.local`,
  });
  await admin.end();
  const server = await startDevServer({
    port: freePort(),
    dbUrl: tlsUrl,
    redisUrl: stack.redisUrl,
    redisToken: stack.redisToken,
    redisPrefix: `torvus-test-doctor-${crypto.randomUUID().slice(0, 8)}`,
    logName: "doctor",
    // A front end that strips clients' addresses, as the Tyk definition does.
    extraEnv: { TORVUS_DEV_PASS_FORWARDED: "false", TORVUS_DB_CA_CERT: pg.certificate! },
  });
  try {
    const env = {
      SUPABASE_URL: server.url,
      TORVUS_DB_URL: tlsUrl,
      TORVUS_DB_CA_CERT: pg.certificate!,
      UPSTASH_REDIS_REST_URL: stack.redisUrl,
      UPSTASH_REDIS_REST_TOKEN: stack.redisToken,
      TORVUS_DOCTOR_API_KEY: key.key,
    };
    const secrets = [key.key, password, stack.redisToken];

    const healthy = await doctor(server.url, env);
    assertStatus(healthy, "ok", CHECKS);
    assert.match(
      healthy.checks.get("database TLS")!.text,
      /chain verified against TORVUS_DB_CA_CERT/,
    );
    assert.match(healthy.checks.get("database pool mode")!.text, /direct or session/);
    assert.equal(healthy.code, 0, healthy.out);
    assertNoSecret(healthy, secrets);

    // Another root: the handshake fails, the cause is named and the presented chain printed.
    const otherRoot = (await testCertificates("DNS:localhost")).ca;
    const wrongRoot = await doctor(server.url, { ...env, TORVUS_DB_CA_CERT: otherRoot });
    assertStatus(wrongRoot, "FAIL", ["database TLS"]);
    const tls = wrongRoot.checks.get("database TLS")!.text;
    assert.match(tls, /cause: the chain does not end at a trusted root/);
    assert.match(tls, /fix: .*TORVUS_DB_CA_CERT/);
    assert.match(tls, /chain presented by 127\.0\.0\.1:\d+ \(2 certificate\(s\)\)/);
    assert.match(tls, /CN = localhost[\s\S]*CN = Torvus Test Intermediate CA/);
    assert.match(tls, /trusted roots from TORVUS_DB_CA_CERT \(1\):\n.*CN = torvus test CA/);
    // The functions' own settings are right: they are healthy.
    assertStatus(wrongRoot, "ok", ["health", "redis"]);
    assert.equal(wrongRoot.code, 1);
    assertNoSecret(wrongRoot, secrets);

    // Redis where nothing listens.
    const deadRedis = `http://127.0.0.1:${freePort()}`;
    const noRedis = await doctor(server.url, { ...env, UPSTASH_REDIS_REST_URL: deadRedis });
    assertStatus(noRedis, "FAIL", ["redis"]);
    assert.match(noRedis.checks.get("redis")!.text, /cause: nothing listens at 127\.0\.0\.1:\d+/);
    assert.match(noRedis.checks.get("redis")!.text, /UPSTASH_REDIS_REST_URL/);
    assert.equal(noRedis.code, 1);
    assertNoSecret(noRedis, secrets);

    // A front end that forwards anything outside /api/ to a function of that name.
    const proxy = Deno.serve({ port: freePort(), hostname: "127.0.0.1", onListen() {} }, (req) => {
      const url = new URL(req.url);
      const path = url.pathname.startsWith("/api/") ? url.pathname : `/functions/v1${url.pathname}`;
      return fetch(`${server.url}${path}${url.search}`, { headers: req.headers });
    });
    try {
      const open = await doctor(`http://127.0.0.1:${proxy.addr.port}`, env);
      assertStatus(open, "FAIL", ["routing"]);
      const routing = open.checks.get("routing")!.text;
      assert.match(routing, /answered: \/health \(200\), \/v1-test \(401\)/);
      assert.match(routing, /cause: the gateway forwards paths outside the public route table/);
      assertStatus(open, "ok", ["health", "client addresses", "test key"]);
      assert.equal(open.code, 1);
    } finally {
      await proxy.shutdown();
    }
  } finally {
    await server.stop();
  }
});

e2e("doctor: functions that cannot reach Redis are named by the health check", async () => {
  const stack = stackEnv();
  const server = await startDevServer({
    port: freePort(),
    dbUrl: stack.dbUrl,
    redisUrl: `http://127.0.0.1:${freePort()}`,
    redisToken: stack.redisToken,
    redisPrefix: `torvus-test-doctor-${crypto.randomUUID().slice(0, 8)}`,
    logName: "doctor-no-redis",
  });
  try {
    const run = await doctor(server.url, { SUPABASE_URL: server.url });
    assertStatus(run, "FAIL", ["health"]);
    const health = run.checks.get("health")!.text;
    assert.match(health, /unavailable: redis/);
    assert.match(health, /cause: the functions cannot reach redis/);
    assert.match(health, /fix: +check UPSTASH_REDIS_REST_URL/);
    // Nothing is counted without Redis: the doctor says so rather than blame the front end.
    assertStatus(run, "FAIL", ["client addresses"]);
    assert.match(run.checks.get("client addresses")!.text, /rate limiter did not count/);
    assertStatus(run, "skip", ["functions region", "database TLS", "redis"]);
    assert.equal(run.code, 1);
  } finally {
    await server.stop();
  }
});

closeDbLast("doctor");
