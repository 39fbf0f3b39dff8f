/**
 * The functions' pool (`createSql`, the vendored postgres.js) after its connections die: a
 * connection that closed while a transaction held it must go back to the pool as closed, to be
 * reconnected, never as open, and its new session must not inherit the old one's error. Before
 * the vendor patches (see `_vendor/postgres/README.md`), the release that ends every transaction
 * put such a connection, without a socket, into the open queue, and after a PostgreSQL restart
 * about half of an isolate's requests kept failing with CONNECTION_CLOSED for as long as the
 * isolate lived (the fault suite met it as request-log rows never written); and a session ended
 * by the server (57P01) failed the next connection's first statement with that error.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createSql, inTransaction } from "../supabase/functions/_shared/db/client.ts";
import type { DbConfig } from "../supabase/functions/_shared/db/settings.ts";
import { startPrivatePostgres } from "./_support/private_postgres.ts";
import { testDbUrl } from "./_db.ts";
import { delay as sleep } from "../supabase/functions/_shared/deadline.ts";

const PORT = 5492;
/** A private server of its own for a test that stops, restarts or stalls it. */
const privateServer = (port: number, database: string) =>
  startPrivatePostgres({ port, database, log: () => {}, migrate: false });

const poolOf = (url: string, poolMax: number) =>
  createSql(
    {
      url,
      poolMax,
      prepare: false,
      timeoutMs: 1000,
      transactionPooler: true,
      ssl: false,
      caCerts: [],
    } satisfies DbConfig,
  );

Deno.test({
  name: "pool: a connection that closed while a transaction held it is reconnected, not reused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const sql = poolOf(testDbUrl(), 1);
    const admin = postgres(testDbUrl(), { max: 1, onnotice: () => {} });
    try {
      const tx = await sql.reserve();
      const [held] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const pid = held!.pid;
      // Terminated while a statement runs on it, as a server restart ends a session.
      const sleeping = tx`select pg_sleep(10)`.execute();
      sleeping.catch(() => {});
      await sleep(50);
      await admin`select pg_terminate_backend(${pid})`;
      await assert.rejects(sleeping, (e: { code?: string }) => {
        assert.ok(e.code === "57P01" || e.code === "CONNECTION_CLOSED", String(e.code));
        return true;
      });
      // The transaction ends (its release) only after the connection has closed.
      await sleep(100);
      tx.release();
      // The pool's only connection: it must connect again, not fail without a socket.
      for (let i = 0; i < 3; i++) {
        const [row] = await inTransaction(
          sql,
          {},
          (t) => t<{ n: number }[]>`select ${i}::int as n`,
        );
        assert.equal(row?.n, i);
      }
      const [fresh] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
      assert.notEqual(fresh?.pid, pid, "a new session");
    } finally {
      await sql.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
    }
  },
});

Deno.test({
  name: "pool: after PostgreSQL restarts under load, every transaction succeeds again",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using pg = await privateServer(PORT, "pool");
    const sql = poolOf(pg.url, 3);
    let running = true;
    const outcomes: Array<{ at: number; error?: string }> = [];
    // Eight clients, as concurrent requests of one isolate: one-statement transactions (one
    // round trip) and transactions of two awaited statements.
    const clients = Array.from({ length: 8 }, async (_, i) => {
      while (running) {
        try {
          if (i % 2 === 0) await inTransaction(sql, { role: "postgres" }, (tx) => tx`select 1`);
          else {
            await inTransaction(sql, {}, async (tx) => {
              await tx`select 1`;
              await tx`select 2`;
            });
          }
          outcomes.push({ at: performance.now() });
        } catch (error) {
          outcomes.push({ at: performance.now(), error: (error as { code?: string }).code ?? "?" });
        }
        await sleep(5);
      }
    });
    try {
      await sleep(500);
      await pg.stop();
      await sleep(1000);
      await pg.start();
      const started = performance.now();
      while (!outcomes.some((o) => o.at > started && !o.error)) {
        // Reconnection attempts back off to at most 1 s apart (createSql's `backoff`).
        assert.ok(performance.now() - started < 3_000, "a success within 3 s of the restart");
        await sleep(20);
      }
      const recovered = outcomes.find((o) => o.at > started && !o.error)!.at;
      // Transactions waiting for a connection when the server came back may still fail; after
      // a second, none may.
      await sleep(2_500);
      const after = outcomes.filter((o) => o.at > recovered + 1_000);
      const failed = after.filter((o) => o.error);
      const codes = [...new Set(failed.map((o) => o.error))].join(", ");
      console.log(
        `pool: first success ${(recovered - started).toFixed(0)} ms after the restart; then ` +
          `${after.length - failed.length} of ${after.length} transactions succeeded`,
      );
      assert.ok(after.length >= 100, `${after.length} transactions in 1.5 s`);
      assert.equal(failed.length, 0, `failed after recovery: ${failed.length} (${codes})`);
    } finally {
      running = false;
      await Promise.allSettled(clients);
      await sql.end({ timeout: 1 });
    }
  },
});

Deno.test({
  name: "pool: a session that stops answering is ended at the deadline, and the pool reconnects",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using pg = await privateServer(PORT + 1, "stall");
    // One connection: if the stalled one were kept, every later transaction would wait for it.
    const sql = poolOf(pg.url, 1);
    let stalled: number | undefined;
    try {
      const [row] = await inTransaction(
        sql,
        {},
        (tx) => tx<{ pid: number }[]>`select pg_backend_pid() as pid`,
      );
      stalled = row!.pid;
      // The backend stops (SIGSTOP): the socket stays open and nothing answers, as when a
      // server or the network stalls.
      Deno.kill(stalled, "SIGSTOP");
      const started = performance.now();
      await assert.rejects(
        () => inTransaction(sql, {}, (tx) => tx`select 1`),
        (e: { code?: string }) => e.code === "DB_DEADLINE",
      );
      const cut = performance.now() - started;
      assert.ok(cut < 2_500, `cut at the deadline (1.5 s), not ${cut.toFixed(0)} ms`);
      const [again] = await inTransaction(
        sql,
        {},
        (tx) => tx<{ pid: number }[]>`select pg_backend_pid() as pid`,
      );
      assert.notEqual(again?.pid, stalled, "a new session");
    } finally {
      if (stalled !== undefined) Deno.kill(stalled, "SIGCONT");
      await sql.end({ timeout: 1 });
    }
  },
});

/**
 * A server that answers PostgreSQL's startup as a trusting server does, then closes each session
 * when its first statement arrives: the session ends while the client fetches its array types,
 * a moment a real server's restart hits only by chance.
 */
function closingAfterStartup(): { url: string; sessions: () => number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let sessions = 0;
  const message = (type: string, body: number[]) => {
    const out = new Uint8Array(5 + body.length);
    out[0] = type.charCodeAt(0);
    new DataView(out.buffer).setInt32(1, 4 + body.length);
    out.set(body, 5);
    return out;
  };
  (async () => {
    for await (const conn of listener) {
      sessions++;
      (async () => {
        const buffer = new Uint8Array(4096);
        try {
          await conn.read(buffer); // StartupMessage
          await conn.write(message("R", [0, 0, 0, 0])); // AuthenticationOk
          await conn.write(message("Z", ["I".charCodeAt(0)])); // ReadyForQuery
          await conn.read(buffer); // the first statement: the array types
        } catch {
          // the client went away first
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/x?sslmode=disable`,
    sessions: () => sessions,
    close: () => listener.close(),
  };
}

Deno.test({
  name: "pool: a session that closes while it fetches its types fails no promise unhandled",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const unhandled: unknown[] = [];
    const record = (e: PromiseRejectionEvent) => {
      e.preventDefault();
      unhandled.push(e.reason);
    };
    globalThis.addEventListener("unhandledrejection", record);
    const server = closingAfterStartup();
    const sql = poolOf(server.url, 1);
    try {
      await assert.rejects(
        () => inTransaction(sql, {}, (tx) => tx`select 1`),
        (e: { code?: string }) => e.code === "DB_DEADLINE",
      );
      await sleep(100);
      assert.ok(server.sessions() >= 2, `${server.sessions()} sessions: it tried again`);
      assert.deepEqual(unhandled.map(String), [], "no unhandled rejection");
    } finally {
      globalThis.removeEventListener("unhandledrejection", record);
      await sql.end({ timeout: 0 });
      server.close();
    }
  },
});
