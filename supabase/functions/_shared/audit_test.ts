import assert from "node:assert/strict";
import {
  type AuditOptions,
  type AuditRecord,
  createAuditSink,
  FULL_REFUSALS_PER_MINUTE,
} from "./audit.ts";
import { createLogger } from "./log.ts";
import type { Sql } from "./db/client.ts";

/**
 * A database that records the request-log rows each transaction inserts, failing the first
 * `failures` connections, losing the answer to the first `lostAnswers` commits (committed, but
 * the connection dropped), and answering each after `delayMs`.
 */
function fakeSql(options: { failures?: number; lostAnswers?: number; delayMs?: number } = {}) {
  const batches: Array<Array<Record<string, unknown>>> = [];
  const counted: Array<Array<Record<string, unknown>>> = [];
  const shapes: Array<Array<Record<string, unknown>>> = [];
  const ids: string[] = [];
  let failures = options.failures ?? 0;
  let lostAnswers = options.lostAnswers ?? 0;
  let transactions = 0;
  /** A statement as postgres.js gives one: lazy and thenable, sent by `execute()`. */
  const query = (settle: () => Promise<unknown>) => {
    let resolve!: (v: unknown) => void, reject!: (e: unknown) => void;
    const p = new Promise((res, rej) => [resolve, reject] = [res, rej]);
    p.catch(() => {}); // as with postgres.js, a statement nobody awaits raises nothing
    let sent = false;
    const execute = () => {
      if (!sent) settle().then(resolve, reject);
      sent = true;
      return p;
    };
    const then: Promise<unknown>["then"] = (ok, fail) => {
      execute();
      return Promise.prototype.then.call(p, ok, fail) as never;
    };
    return Object.assign(p, { execute, then });
  };
  const statement = (first: TemplateStringsArray, ...values: unknown[]) => {
    const text = first.join("?");
    if (text.includes("insert into public.api_request_log")) {
      // A batch travels as its id and JSON text parameters: full rows, counters and shapes.
      ids.push(values[0] as string);
      batches.push(JSON.parse(values[1] as string));
      counted.push(JSON.parse(values[2] as string));
      shapes.push(JSON.parse(values[3] as string));
    }
    if (text.trim() === "commit" && lostAnswers > 0) {
      lostAnswers--;
      const reset = Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
      return query(() => Promise.reject(reset));
    }
    return query(() => Promise.resolve([]));
  };
  const sql = {
    timeouts: { statementMs: 1000, idleInTransactionMs: 2000 },
    deadlineMs: 5000,
    async reserve() {
      transactions++;
      await new Promise((r) => setTimeout(r, options.delayMs ?? 0));
      if (failures > 0) {
        failures--;
        throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
      }
      return Object.assign(statement, {
        unsafe: () => query(() => Promise.resolve([])),
        release: () => {},
      });
    },
  };
  return {
    sql: sql as unknown as Sql,
    batches,
    counted,
    shapes,
    ids,
    transactions: () => transactions,
  };
}

const record = (i: number): AuditRecord => ({
  requestId: crypto.randomUUID(),
  keyId: "01JBG7XKQM9F3Y8W2Z5N4P1R6T",
  method: "GET",
  path: `/v1-test/${i}`,
  status: 200,
  latencyMs: 1,
  at: new Date(0),
});

const quiet = createLogger({}, "error");

/**
 * A sink writing to `db` (a {@link fakeSql}) with `options`, and the background work it
 * registered, which a test awaits as the runtime would.
 */
function sinkOf(db: ReturnType<typeof fakeSql>, options: Partial<AuditOptions> = {}) {
  const background: Array<Promise<unknown>> = [];
  const sink = createAuditSink({
    sql: db.sql,
    log: quiet,
    background: (p) => background.push(p),
    ...options,
  });
  return { sink, background, settled: () => Promise.all(background) };
}

Deno.test("createAuditSink() writes at once, registering the write as background work", async () => {
  const db = fakeSql();
  const { sink, background, settled } = sinkOf(db);
  sink.record(record(1));
  assert.equal(background.length, 1, "registered when the first record arrived");
  await settled();
  assert.equal(db.batches.length, 1);
  assert.equal(db.batches[0]!.length, 1);
  assert.equal(sink.pending, 0);
});

Deno.test("createAuditSink() gathers the rows of the next moments into one write", async () => {
  const db = fakeSql();
  const { sink, background, settled } = sinkOf(db, { gatherMs: 500 });
  sink.record(record(0));
  for (let i = 1; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 1));
    sink.record(record(i));
  }
  assert.equal(background.length, 1);
  await settled();
  assert.deepEqual(db.batches.map((b) => b.length), [5], "one write for all five");
});

Deno.test("createAuditSink() writes a full batch without waiting", async () => {
  const db = fakeSql();
  const { sink, settled } = sinkOf(db, { batchSize: 10, gatherMs: 60_000 });
  for (let i = 0; i < 10; i++) sink.record(record(i));
  const started = performance.now();
  await settled();
  assert.ok(performance.now() - started < 1000, "no gathering wait for a full batch");
  assert.deepEqual(db.batches.map((b) => b.length), [10]);
});

Deno.test("createAuditSink() joins records that arrive during a write into the next batch", async () => {
  const db = fakeSql({ delayMs: 20 });
  const { sink, background, settled } = sinkOf(db, { gatherMs: 0 });
  sink.record(record(0));
  await new Promise((r) => setTimeout(r, 5));
  for (let i = 1; i <= 50; i++) sink.record(record(i));
  assert.equal(background.length, 1, "one flush carries them all");
  await settled();
  assert.deepEqual(db.batches.map((b) => b.length), [1, 50]);
});

Deno.test("createAuditSink() retries a failed write with backoff and loses nothing", async () => {
  const db = fakeSql({ failures: 2 });
  const { sink, settled } = sinkOf(db);
  const ids = [record(1), record(2)].map((r) => (sink.record(r), r.requestId));
  await settled();
  assert.equal(db.transactions(), 3, "two failures, then the write");
  assert.deepEqual(db.batches.flat().map((r) => r.request_id), ids);
});

Deno.test("createAuditSink() gives a failing batch up after its retry window, with an error line", async () => {
  const db = fakeSql({ failures: 1_000 });
  const lines: string[] = [];
  const log = { ...quiet, error: (msg: string) => void lines.push(msg), warn: () => {} };
  const { sink, settled } = sinkOf(db, { log: log as typeof quiet, retryForMs: 250 });
  sink.record(record(1));
  await settled();
  assert.deepEqual(lines, ["request log rows dropped after retries"]);
  assert.equal(sink.pending, 0);
});

Deno.test("createAuditSink() keeps no credential a client put in its User-Agent", async () => {
  const db = fakeSql();
  const { sink, settled } = sinkOf(db);
  const key = `sk_live_${"A".repeat(48)}`;
  sink.record({ ...record(1), userAgent: `curl ${key}` });
  await settled();
  assert.equal(db.shapes[0]![0]!.user_agent, "curl sk_live_[redacted]");
  assert.ok(!JSON.stringify(db.batches).includes(key) && !JSON.stringify(db.shapes).includes(key));
});

const refusal = (ip: string, code = "INVALID_API_KEY", status = 401): AuditRecord => ({
  requestId: crypto.randomUUID(),
  method: "GET",
  path: "/v1-test",
  status,
  code,
  latencyMs: 1,
  ip,
  at: new Date(Date.UTC(2026, 10, 30, 12, 0, 30)),
});

Deno.test("createAuditSink() keeps the first refusals of a subject in full and counts the rest", async () => {
  const db = fakeSql();
  const { sink, settled } = sinkOf(db);
  for (let i = 0; i < 25; i++) sink.record(refusal("203.0.113.9"));
  for (let i = 0; i < 12; i++) sink.record(refusal("203.0.113.9", "RATE_LIMIT_EXCEEDED", 429));
  for (let i = 0; i < 3; i++) sink.record(refusal("198.51.100.1"));
  await settled();
  const rows = db.batches.flat();
  const counters = db.counted.flat();
  assert.equal(rows.length, FULL_REFUSALS_PER_MINUTE * 2 + 3);
  assert.deepEqual(
    counters.map((c) => [c.subject, c.code, c.count, c.minute]),
    [
      ["ip:203.0.113.9", "INVALID_API_KEY", 15, "2026-11-30T12:00:00.000Z"],
      ["ip:203.0.113.9", "RATE_LIMIT_EXCEEDED", 2, "2026-11-30T12:00:00.000Z"],
    ],
  );
  const total = rows.length + counters.reduce((n, c) => n + (c.count as number), 0);
  assert.equal(total, 40, "full rows and counts add up to the requests");
});

Deno.test("createAuditSink() sends a batch whose answer was lost again with the same id", async () => {
  const db = fakeSql({ lostAnswers: 1 });
  const { sink, settled } = sinkOf(db, { gatherMs: 0 });
  sink.record(record(1));
  await settled();
  assert.equal(db.transactions(), 2);
  assert.equal(db.ids.length, 2);
  assert.equal(db.ids[0], db.ids[1], "the database sees the same batch id and skips it");
});
