import assert from "node:assert/strict";
import { ConfigError, parseConfig, parseDbConfig } from "./config.ts";

const base = {
  SUPABASE_URL: "https://abc.supabase.co",
  SUPABASE_DB_URL: "postgresql://postgres:pw@db.abc.supabase.co:5432/postgres",
  UPSTASH_REDIS_REST_URL: "https://eu1.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "t".repeat(32),
};
const SECRET = "s".repeat(40);

Deno.test("parseConfig() takes TORVUS_DB_URL over SUPABASE_DB_URL", () => {
  const pooled = "postgresql://postgres.abc:pw@aws-0-eu.pooler.supabase.com:6543/postgres";
  assert.equal(parseConfig(base).db.url, base.SUPABASE_DB_URL);
  assert.equal(parseConfig({ ...base, TORVUS_DB_URL: pooled }).db.url, pooled);
  assert.equal(parseConfig({ TORVUS_DB_URL: pooled, ...base, SUPABASE_DB_URL: "" }).db.url, pooled);
});

Deno.test("parseConfig() needs one database URL", () => {
  assert.throws(
    () => parseConfig({ ...base, SUPABASE_DB_URL: undefined }),
    (e: unknown) => e instanceof ConfigError && /TORVUS_DB_URL or SUPABASE_DB_URL/.test(e.message),
  );
});

Deno.test("parseConfig() treats port 6543 as a transaction pooler: no prepared statements", () => {
  const db = (env: Record<string, string>) => {
    const { transactionPooler, prepare } = parseConfig({ ...base, ...env }).db;
    return { transactionPooler, prepare };
  };
  const supavisor = "postgresql://u:p@aws-0-eu.pooler.supabase.com:6543/postgres";
  assert.deepEqual(db({}), { transactionPooler: false, prepare: true });
  assert.deepEqual(db({ TORVUS_DB_URL: supavisor }), { transactionPooler: true, prepare: false });
  // Named explicitly, for a pooler on another port (PgBouncer's 6432).
  assert.deepEqual(
    db({
      TORVUS_DB_URL: "postgresql://u:p@bouncer.internal:6432/postgres",
      TORVUS_DB_POOL_MODE: "transaction",
    }),
    { transactionPooler: true, prepare: false },
  );
  // A pooler that keeps statements may say so.
  assert.equal(db({ TORVUS_DB_URL: supavisor, TORVUS_DB_PREPARE: "true" }).prepare, true);
});

Deno.test("parseConfig() keeps a small pool per isolate by default", () => {
  assert.equal(parseConfig(base).db.poolMax, 3);
});

Deno.test("parseConfig() requires TLS for every database host but loopback", () => {
  assert.equal(parseConfig(base).db.ssl, "require");
  const url = (q: string) => ({ ...base, SUPABASE_DB_URL: `${base.SUPABASE_DB_URL}${q}` });
  assert.equal(parseConfig(url("?sslmode=verify-full")).db.ssl, "verify-full");
  for (const weak of ["disable", "allow", "prefer"]) {
    assert.throws(
      () => parseConfig(url(`?sslmode=${weak}`)),
      (e: unknown) =>
        e instanceof ConfigError && e.message.includes("must use TLS") &&
        !e.message.includes("pw@"),
    );
  }
  for (const host of ["127.0.0.1", "localhost", "[::1]", "127.0.0.9"]) {
    const local = parseConfig({
      ...base,
      SUPABASE_DB_URL: `postgresql://postgres@${host}:5432/torvus?sslmode=disable`,
    });
    assert.equal(local.db.ssl, false, host);
  }
});

Deno.test("parseConfig() serves direct requests unless a gateway secret is set", () => {
  assert.equal(parseConfig(base).clientAddress.directAccess, "allow");
  const guarded = parseConfig({ ...base, TORVUS_GATEWAY_SECRET: SECRET });
  assert.equal(guarded.clientAddress.directAccess, "deny");
  assert.equal(guarded.clientAddress.gatewaySecret, SECRET);
  const open = parseConfig({
    ...base,
    TORVUS_GATEWAY_SECRET: SECRET,
    TORVUS_DIRECT_ACCESS: "allow",
  });
  assert.equal(open.clientAddress.directAccess, "allow");
  assert.throws(() => parseConfig({ ...base, TORVUS_DIRECT_ACCESS: "deny" }), ConfigError);
  assert.throws(
    () => parseConfig({ ...base, TORVUS_GATEWAY_SECRET: "short" }),
    (e: unknown) => e instanceof ConfigError && !e.message.includes("short"),
  );
});

Deno.test("parseConfig() reads TORVUS_DIRECT_IP_SOURCE", () => {
  assert.deepEqual(parseConfig(base).clientAddress.directIpSource, { kind: "none" });
  assert.deepEqual(
    parseConfig({ ...base, TORVUS_DIRECT_IP_SOURCE: "peer" }).clientAddress.directIpSource,
    { kind: "peer" },
  );
  assert.deepEqual(
    parseConfig({ ...base, TORVUS_DIRECT_IP_SOURCE: "header:CF-Connecting-IP" }).clientAddress
      .directIpSource,
    { kind: "header", name: "cf-connecting-ip" },
  );
  for (const bad of ["header:", "xff", "header:a b"]) {
    assert.throws(() => parseConfig({ ...base, TORVUS_DIRECT_IP_SOURCE: bad }), ConfigError);
  }
});

Deno.test("parseConfig() warns that TORVUS_TRUST_PROXY is no longer read", () => {
  assert.deepEqual(parseConfig(base).warnings, []);
  const [warning] = parseConfig({ ...base, TORVUS_TRUST_PROXY: "true" }).warnings;
  assert.match(warning ?? "", /TORVUS_TRUST_PROXY is no longer read/);
});

Deno.test("parseConfig() reads the webhook settings, loopback refused by default", () => {
  const c = parseConfig(base);
  assert.deepEqual(c.webhooks, {
    allowLoopback: false,
    timeoutMs: 10_000,
    retryBaseMs: 60_000,
    retryMaxDelayMs: 6 * 3_600_000,
    retryForMs: 3 * 86_400_000,
    disableAfterMs: 5 * 86_400_000,
    dnsServer: undefined,
    cronSecret: undefined,
  });
  const local = parseConfig({
    ...base,
    TORVUS_WEBHOOK_ALLOW_LOOPBACK: "true",
    TORVUS_WEBHOOK_DNS_SERVER: "[::1]:5353",
    TORVUS_CRON_SECRET: SECRET,
  });
  assert.equal(local.webhooks.allowLoopback, true);
  assert.deepEqual(local.webhooks.dnsServer, { ipAddr: "::1", port: 5353 });
  assert.equal(local.webhooks.cronSecret, SECRET);
  const invalid = {
    TORVUS_WEBHOOK_DNS_SERVER: ["dns.example.com:53", "127.0.0.1:70000"],
    TORVUS_WEBHOOK_TIMEOUT_MS: ["60000"],
    TORVUS_WEBHOOK_ALLOW_LOOPBACK: ["yes"],
    TORVUS_CRON_SECRET: ["short"],
  };
  for (const [name, values] of Object.entries(invalid)) {
    for (const value of values) {
      assert.throws(
        () => parseConfig({ ...base, [name]: value }),
        (e: unknown) =>
          e instanceof ConfigError && e.message.includes(name) && !e.message.includes(value),
      );
    }
  }
});

Deno.test("parseDbConfig() makes the database settings alone, as parseConfig() does", () => {
  const pooled = "postgresql://postgres.abc:pw@aws-0-eu.pooler.supabase.com:6543/postgres";
  // The other required settings may be absent.
  assert.deepEqual(
    parseDbConfig({ TORVUS_DB_URL: pooled }),
    parseConfig({ ...base, TORVUS_DB_URL: pooled }).db,
  );
  assert.deepEqual(parseDbConfig(base), parseConfig(base).db);
  assert.equal(parseDbConfig({ SUPABASE_URL: base.SUPABASE_URL }), undefined);
  assert.throws(
    () => parseDbConfig({ TORVUS_DB_URL: `${pooled}?sslmode=disable` }),
    (e: unknown) => e instanceof ConfigError && /must use TLS/.test(e.message),
  );
  assert.throws(
    () => parseDbConfig({ TORVUS_DB_URL: pooled, TORVUS_DB_CA_CERT: "x" }),
    ConfigError,
  );
});
