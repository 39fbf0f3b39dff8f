/**
 * A pooler with no room for another client: Supavisor's client limit depends on the project's
 * compute size, and an isolate that meets it must answer 503 with `Retry-After`, never 500. Here
 * a PgBouncer of the test's own, `max_client_conn` 2, both taken, in front of the test database;
 * `me` served alone on Deno 2.1 reaches the database only through it.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { alone } from "./_support/alone.ts";
import { e2e } from "./_harness.ts";
import { closeDbLast, newUser } from "./_fixtures.ts";
import { pgbouncerIni } from "../tools/stack/pgbouncer.ts";
import { delay } from "../supabase/functions/_shared/deadline.ts";

const DIRECT = new URL((Deno.env.get("SUPABASE_DB_URL") ?? "").replace(/^postgres(ql)?:/, "http:"));

/** A free TCP port on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** PgBouncer in transaction mode with room for `maxClients` clients, until disposed. */
async function smallPgbouncer(maxClients: number) {
  const dir = await Deno.makeTempDir({ prefix: "torvus-pgbouncer-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/pgbouncer.ini`,
    pgbouncerIni({
      port,
      pgHost: DIRECT.hostname,
      pgPort: Number(DIRECT.port || 5432),
      dir,
      maxClientConn: maxClients,
    }),
  );
  const root = Deno.uid() === 0;
  if (root) await new Deno.Command("chown", { args: ["-R", "postgres", dir] }).output();
  const child = new Deno.Command("pgbouncer", {
    args: root ? ["-u", "postgres", `${dir}/pgbouncer.ini`] : [`${dir}/pgbouncer.ini`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await delay(50);
    }
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}${DIRECT.pathname}?sslmode=disable`,
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

e2e(
  "a pooler at its client limit is 503 SERVICE_UNAVAILABLE with Retry-After, not 500",
  async () => {
    const user = await newUser();
    await using pooler = await smallPgbouncer(2);
    // Both client slots taken, as by other isolates.
    const holders = [postgres(pooler.url, { max: 1 }), postgres(pooler.url, { max: 1 })];
    try {
      for (const h of holders) await h`select 1`;
      await assert.rejects(
        postgres(pooler.url, { max: 1, connect_timeout: 2 })`select 1`,
        (e: { code?: string; message?: string }) =>
          e.code === "08P01" && /max_client_conn/.test(e.message ?? ""),
      );
      await alone("me", async (base) => {
        const r = await fetch(`${base}/me`, { headers: { Authorization: `Bearer ${user.token}` } });
        const body = await r.json();
        assert.equal(r.status, 503, JSON.stringify(body));
        assert.equal(body.code, "SERVICE_UNAVAILABLE");
        assert.equal(r.headers.get("retry-after"), "1");
        assert.ok(r.headers.get("x-request-id"));
      }, { TORVUS_DB_URL: pooler.url, TORVUS_DB_POOL_MODE: "transaction" });
    } finally {
      for (const h of holders) await h.end({ timeout: 1 });
    }
  },
);

closeDbLast("pooler limit");
