/**
 * The database through the pooler Supabase recommends for edge functions: the test profile's
 * functions reach PostgreSQL only through PgBouncer in transaction mode (the local stand-in for
 * Supavisor's transaction mode, the profile's own on POOLER_PORT), which keeps nothing of a client's session between transactions. Bursts
 * that broke on prepared statements and startup parameters are served, and the timeouts each
 * transaction sets for itself hold there.
 *
 * @module
 */
import assert from "node:assert/strict";
import { api, e2e, uniqueIp } from "./_harness.ts";
import { closeDbLast, newKey, newUser } from "./_fixtures.ts";
import { createSql, inTransaction } from "../supabase/functions/_shared/db/client.ts";
import { parseConfig } from "../supabase/functions/_shared/config.ts";

const POOLED = Deno.env.get("TORVUS_DB_URL") ?? "";

/** PgBouncer's counters for the test database (its admin console speaks simple queries only). */
async function transactions(): Promise<number> {
  const out = await new Deno.Command("psql", {
    args: [
      "-X",
      "-At",
      "-h",
      "127.0.0.1",
      "-p",
      new URL(POOLED.replace(/^postgresql:/, "http:")).port,
      "-U",
      "postgres",
      "pgbouncer",
      "-c",
      "SHOW STATS",
    ],
    stdin: "null",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const database = new URL(POOLED.replace(/^postgresql:/, "http:")).pathname.slice(1);
  const row = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
    l.startsWith(`${database}|`)
  );
  return Number(row?.split("|")[1] ?? 0);
}

e2e("the functions' database URL is PgBouncer's, in transaction mode", () => {
  assert.match(POOLED, /^postgresql:\/\/postgres@127\.0\.0\.1:6544\//);
  assert.equal(Deno.env.get("TORVUS_DB_POOL_MODE"), "transaction");
  const config = parseConfig(Deno.env.toObject());
  assert.equal(config.db.url, POOLED, "TORVUS_DB_URL wins over SUPABASE_DB_URL");
  assert.equal(config.db.transactionPooler, true);
  assert.equal(config.db.prepare, false);
  return Promise.resolve();
});

e2e(
  "30 concurrent vault creations and 20 profile reads through the pooler all succeed",
  async () => {
    const before = await transactions();
    const user = await newUser();
    const key = await newKey({ mode: "test", scopes: ["read", "write"] });
    const headers = { Authorization: `Bearer ${user.token}`, "Content-Type": "application/json" };
    const created = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        api("/api/vaults", {
          method: "POST",
          ip: uniqueIp(),
          headers,
          body: JSON.stringify({ name: `enc:v1:pooled-${i}` }),
        })),
    );
    const read = await Promise.all(
      Array.from({ length: 20 }, () => api("/api/me", { ip: uniqueIp(), headers })),
    );
    const listed = await Promise.all(
      Array.from(
        { length: 10 },
        () => api("/api/v1/vaults", { ip: uniqueIp(), headers: { "X-API-Key": key.key } }),
      ),
    );
    const statuses = (rs: typeof created) => rs.map((r) => r.status).sort().join(",");
    assert.equal(
      statuses(created),
      Array(30).fill(201).join(","),
      created.find((r) => r.status !== 201)?.text,
    );
    assert.equal(
      statuses(read),
      Array(20).fill(200).join(","),
      read.find((r) => r.status !== 200)?.text,
    );
    assert.equal(statuses(listed), Array(10).fill(200).join(","));
    const after = await transactions();
    assert.ok(after - before >= 60, `PgBouncer served the transactions (${after - before})`);
  },
);

e2e("a transaction through the pooler runs with its own timeouts and settings", async () => {
  const config = parseConfig(Deno.env.toObject());
  const sql = createSql(config.db);
  try {
    const [settings] = await inTransaction(
      sql,
      { "request.torvus_probe": "set" },
      async (tx) =>
        await tx<{ statement_timeout: number; idle: number; probe: string }[]>`select
        (select setting::int from pg_settings where name = 'statement_timeout') as statement_timeout,
        (select setting::int from pg_settings
          where name = 'idle_in_transaction_session_timeout') as idle,
        current_setting('request.torvus_probe', true) as probe`,
    );
    assert.equal(settings?.statement_timeout, config.db.timeoutMs);
    assert.equal(settings?.idle, config.db.timeoutMs * 2);
    assert.equal(settings?.probe, "set");
    // Nothing of it outlives the transaction on the shared server connection.
    const [after] = await sql<{ probe: string | null }[]>`
      select nullif(current_setting('request.torvus_probe', true), '') as probe`;
    assert.equal(after?.probe ?? null, null);
  } finally {
    await sql.end({ timeout: 2 });
  }
});

closeDbLast("pooler");
