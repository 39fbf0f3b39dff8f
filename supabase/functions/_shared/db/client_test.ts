import assert from "node:assert/strict";
import { isDatabaseUnavailable, onConnection, type Sql } from "./client.ts";
import { delay as sleep } from "../deadline.ts";

/**
 * A pool of one connection whose reservation arrives after `reserveMs` and whose statements are
 * answered after `answerMs` (never, when undefined); it records what ran and what was released or
 * terminated.
 */
function slowPool(options: { deadlineMs: number; reserveMs: number; answerMs?: number }) {
  const events: string[] = [];
  const statement = (strings: TemplateStringsArray) => {
    events.push(`run ${strings.join("?")}`);
    return new Promise((resolve) => {
      if (options.answerMs !== undefined) setTimeout(() => resolve([]), options.answerMs);
    });
  };
  const connection = Object.assign(statement, {
    release: () => void events.push("release"),
    terminate: () => void events.push("terminate"),
  });
  const sql = {
    deadlineMs: options.deadlineMs,
    reserve: () =>
      new Promise((resolve) => setTimeout(() => resolve(connection), options.reserveMs)),
  };
  return { sql: sql as unknown as Sql, events };
}

const timedOut = (e: { code?: string }) => e.code === "DB_DEADLINE";

Deno.test("onConnection() runs nothing on a connection reserved after the deadline", async () => {
  const pool = slowPool({ deadlineMs: 30, reserveMs: 80, answerMs: 0 });
  await assert.rejects(() => onConnection(pool.sql, (c) => c`insert`), timedOut);
  await sleep(120);
  assert.deepEqual(pool.events, ["release"], "handed back unused");
});

Deno.test("onConnection() ends the session of a statement unanswered at the deadline", async () => {
  const pool = slowPool({ deadlineMs: 30, reserveMs: 0 });
  await assert.rejects(() => onConnection(pool.sql, (c) => c`select`), timedOut);
  assert.deepEqual(pool.events, ["run select", "terminate"]);
});

Deno.test("onConnection() releases the connection after its statement", async () => {
  const pool = slowPool({ deadlineMs: 1_000, reserveMs: 0, answerMs: 1 });
  assert.deepEqual(await onConnection(pool.sql, (c) => c`select`), []);
  assert.deepEqual(pool.events, ["run select", "release"]);
});

/** An error as postgres.js raises one the server sent: its fields on an Error. */
const serverError = (code: string, message: string, severity = "FATAL") =>
  Object.assign(new Error(message), { code, severity });

Deno.test("isDatabaseUnavailable() is true for a pooler with no room for another client", () => {
  // Supavisor, over its compute size's client limit (transaction and session mode).
  assert.equal(isDatabaseUnavailable(serverError("XX000", "Max client connections reached")), true);
  assert.equal(
    isDatabaseUnavailable(serverError(
      "XX000",
      "MaxClientsInSessionMode: max clients reached - in Session mode max clients are limited " +
        "to pool_size",
    )),
    true,
  );
  // PgBouncer's max_client_conn.
  assert.equal(
    isDatabaseUnavailable(serverError("08P01", "no more connections allowed (max_client_conn)")),
    true,
  );
  // PostgreSQL's own max_connections.
  assert.equal(
    isDatabaseUnavailable(serverError("53300", "sorry, too many clients already")),
    true,
  );
});

Deno.test("isDatabaseUnavailable() is false for other internal errors and query errors", () => {
  assert.equal(isDatabaseUnavailable(serverError("XX000", "Tenant or user not found")), false);
  assert.equal(
    isDatabaseUnavailable(serverError("42P01", 'relation "x" does not exist', "ERROR")),
    false,
  );
  assert.equal(isDatabaseUnavailable(serverError("23505", "duplicate key value", "ERROR")), false);
});
