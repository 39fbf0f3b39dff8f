/**
 * The request log: every authenticated or failed request becomes a row of `api_request_log`,
 * or, when it is one refusal among many, a count in `api_refusals`; each key's requests are
 * counted per hour in `api_usage_hourly` as the rows are written (migration `..._usage.sql`),
 * and each third-party app's in `api_app_usage_hourly` (its full rows; refusals beyond them are
 * counted per subject, not per app).
 *
 * Refusal floods become counters. The first {@link FULL_REFUSALS_PER_MINUTE} answers 4xx of a
 * subject (its API key, else its user, else its address) with one code in one minute are kept
 * as full rows, as the documentation asks ("failed authentication attempts are tracked"); the
 * others of that minute only add to one `api_refusals` row (subject, code, minute: count, first
 * and last seen). Nothing is lost: full rows plus counts add up to the requests answered. So a
 * client answered 429 fifty thousand times a minute costs a few rows, not fifty thousand.
 *
 * Writing. The first record starts a flush at once, registered with the runtime's `waitUntil`
 * (via `background`) when it is created, so the edge runtime never drops an isolate early while
 * rows are unwritten (it waits for `waitUntil` work; see tools/runtime). The flush gathers
 * records for `gatherMs` (50 ms) before each write, unless a full batch is already waiting; the
 * wait is after the response, so it costs a client nothing, and it makes a busy isolate write one
 * batch of hundreds of rows where it wrote one of a few rows per round trip. A batch is one
 * statement with three JSON parameters (the cheapest bulk path measured here; see `write`) and
 * carries an id: written twice, after an answer lost at commit, it changes nothing the second
 * time. The same statement moves `last_used_at` of the keys and apps' grants seen, at most once a minute each.
 *
 * Rows are written in the compact form of log_rows.ts (a shape per distinct method, route, code,
 * mode and user agent; the key as a uuid). Which rows the raw log keeps is the database's setting
 * `request_log_settings.raw_log` (all, only status 400 and above, none), applied in the same
 * statement; the hourly aggregates and the refusal counters count every request in every mode.
 *
 * A failed write keeps its batch and retries with backoff for a bounded time
 * ({@link AuditOptions.retryForMs}), so a database restart loses nothing; rows still unwritten
 * after that, or beyond the queue's bound, are dropped and counted in an error line.
 * `beforeunload` is a last resort: it starts a flush of whatever is queued.
 *
 * @module
 */
import { inTransaction, type Sql } from "./db/client.ts";
import type { Logger } from "./log.ts";
import { type LoggedRequest, logRows } from "./log_rows.ts";
import { delay as sleep } from "./deadline.ts";

/** One request, as logged. Never holds a credential. */
export type AuditRecord = LoggedRequest;

/** Accepts records and persists them soon after. */
export interface AuditSink {
  record(entry: AuditRecord): void;
  /** Writes everything queued now; resolves when the queue is empty or retries ran out. */
  flush(): Promise<void>;
  /** Flushes and resolves when done. */
  close(): Promise<void>;
  /** Rows and counters waiting to be written. */
  readonly pending: number;
}

/** Options of {@link createAuditSink}. */
export interface AuditOptions {
  sql: Sql;
  log: Logger;
  /** Registers work that must finish after the response (the runtime's waitUntil). */
  background: (work: Promise<unknown>) => void;
  batchSize?: number;
  /** How long a flush gathers rows before each write (unless a full batch waits), in ms. */
  gatherMs?: number;
  maxQueue?: number;
  /** How long a failing batch is retried before it is dropped (with an error line). */
  retryForMs?: number;
  /** The clock, epoch ms. */
  now?: () => number;
}

/** Answers 4xx of one subject, code and minute kept as full rows; the rest are counted. */
export const FULL_REFUSALS_PER_MINUTE = 10;
/** Subjects tracked per minute; past this every refusal is counted, none kept in full. */
const MAX_SUBJECTS = 20_000;

/** Refusals of one subject, code and minute beyond the full rows. */
interface Counter {
  subject: string;
  code: string;
  status: number;
  minute: number;
  count: number;
  first: number;
  last: number;
  keyId: string | undefined;
  userId: string | undefined;
  mode: string | undefined;
  ip: string | undefined;
}

/** What one write carries; kept whole across retries, so its id makes it idempotent. */
interface Batch {
  id: string;
  rows: AuditRecord[];
  counters: Counter[];
}

/** How an hourly usage row (keys' and apps' alike) takes in a batch's counts. */
const ADD_COUNTS = "requests = u.requests + excluded.requests, " +
  "success = u.success + excluded.success, " +
  "rate_limited = u.rate_limited + excluded.rate_limited, " +
  "client_errors = u.client_errors + excluded.client_errors, " +
  "server_errors = u.server_errors + excluded.server_errors";

/** Creates the isolate's audit sink. */
export function createAuditSink(options: AuditOptions): AuditSink {
  const { sql, log } = options;
  const batchSize = options.batchSize ?? 500;
  const gatherMs = options.gatherMs ?? 50;
  const maxQueue = options.maxQueue ?? 50_000;
  const retryForMs = options.retryForMs ?? 60_000;
  const now = options.now ?? Date.now;
  let queue: AuditRecord[] = [];
  let counters = new Map<string, Counter>();
  /** Full rows kept this minute per subject and code. */
  let kept = new Map<string, number>();
  let keptMinute = -1;
  let flushing: Promise<void> | undefined;

  /** Whether a record is a refusal to count rather than keep, counting it if so. */
  const counted = (r: AuditRecord): boolean => {
    if (r.status < 400 || r.status >= 500) return false;
    const at = r.at.getTime();
    const minute = at - (at % 60_000);
    if (minute !== keptMinute) {
      kept = new Map();
      keptMinute = minute;
    }
    const subject = r.keyId ? `key:${r.keyId}` : r.userId ? `user:${r.userId}` : `ip:${r.ip ?? ""}`;
    const code = r.code ?? String(r.status);
    const id = `${subject}\n${code}`;
    const full = kept.get(id) ?? 0;
    if (full < FULL_REFUSALS_PER_MINUTE && (full > 0 || kept.size < MAX_SUBJECTS)) {
      kept.set(id, full + 1);
      return false;
    }
    const key = `${id}\n${minute}`;
    const c = counters.get(key);
    if (c) {
      c.count++;
      c.first = Math.min(c.first, at);
      c.last = Math.max(c.last, at);
    } else {
      counters.set(key, {
        subject,
        code,
        status: r.status,
        minute,
        count: 1,
        first: at,
        last: at,
        keyId: r.keyId,
        userId: r.userId,
        mode: r.mode,
        ip: r.ip,
      });
    }
    return true;
  };

  /**
   * One statement per batch (run in a transaction only for its timeouts): the batch id, the full
   * rows and the counters as JSON text parameters, each unpacked with `json_to_recordset`. For
   * batches of 20 and 200 rows this costs the writer 29 and 9 µs of CPU a row and PostgreSQL 35
   * and 24, against 91 and 20 / 50 and 38 for a multi-row VALUES list; postgres.js's COPY stream
   * took many times the wall time and 16-120 µs a row on the writer's side.
   */
  const write = async (batch: Batch) => {
    const { rows, shapes } = logRows(batch.rows);
    const refusals = batch.counters.map((c) => ({
      subject: c.subject,
      code: c.code,
      status: c.status,
      minute: new Date(c.minute).toISOString(),
      count: c.count,
      first_seen: new Date(c.first).toISOString(),
      last_seen: new Date(c.last).toISOString(),
      key_id: c.keyId ?? null,
      user_id: c.userId ?? null,
      mode: c.mode ?? null,
      ip: c.ip ?? null,
    }));
    const keyIds = [
      ...new Set(batch.rows.filter((r) => r.keyId && r.status < 400).map((r) => r.keyId!)),
    ];
    const grantIds = [
      ...new Set(batch.rows.filter((r) => r.grantId && r.status < 400).map((r) => r.grantId!)),
    ];
    // Returned, not awaited: BEGIN, the timeouts, the statement and COMMIT leave in one write.
    // Every parameter is text (no array), so postgres.js sends it without describing it first.
    // How much of the raw log to keep is the database's setting (request_log_settings.raw_log):
    // every row goes into the aggregates, only the kept ones into api_request_log.
    await inTransaction(sql, {}, (tx) =>
      tx`with batch as (
          insert into public.api_log_batches (id) values (${batch.id})
          on conflict do nothing returning id
        ), input as (
          select r.* from batch, json_to_recordset(${JSON.stringify(rows)}::text::json) as r(
            created_at timestamptz, request_id uuid, shape integer, key_id text, key uuid,
            user_id uuid, mode text, status smallint, latency_ms real, ip inet, client_id text)
        ), refused as (
          select c.* from batch, json_to_recordset(${JSON.stringify(refusals)}::text::json) as c(
            subject text, code text, status smallint, minute timestamptz, count integer,
            first_seen timestamptz, last_seen timestamptz, key_id text, user_id uuid, mode text,
            ip inet)
        ), shapes as (
          select public.request_shape_id(s.method, s.route, s.code, s.mode, s.user_agent,
            s.client_id) as id,
            s.* from json_to_recordset(${JSON.stringify(shapes)}::text::json) as s(n integer,
            method text, route text, code text, mode text, user_agent text, client_id text)
        ), kept as (
          select i.*, s.id as shape_id from input i
          join shapes s on s.n = i.shape
          join public.request_log_settings c
            on c.raw_log = 'all' or (c.raw_log = 'failed' and i.status >= 400)
        ), used_shapes as (
          select shape_id, max((created_at at time zone 'UTC')::date) as day from kept
          group by shape_id
        ), shaped as (
          insert into public.api_request_shapes (id, method, route, code, mode, user_agent,
            client_id, last_day)
          select s.id, s.method, s.route, s.code, s.mode, s.user_agent, s.client_id, u.day
          from used_shapes u join shapes s on s.id = u.shape_id
          on conflict (id) do nothing
        ), aged as (
          update public.api_request_shapes t set last_day = u.day from used_shapes u
          where t.id = u.shape_id and t.last_day < u.day
        ), logged as (
          insert into public.api_request_log (created_at, request_id, shape, key_id, user_id,
            latency_ms, status, ip)
          select created_at, request_id, shape_id, key, case when key is null then user_id end,
            latency_ms, status, ip
          from kept
        ), counted as (
          insert into public.api_refusals as t (subject, code, minute, status, count, first_seen,
            last_seen, key_id, user_id, mode, ip)
          select subject, code, minute, status, count, first_seen, last_seen, key_id, user_id,
            mode, ip from refused
          on conflict (subject, code, minute) do update set count = t.count + excluded.count,
            first_seen = least(t.first_seen, excluded.first_seen),
            last_seen = greatest(t.last_seen, excluded.last_seen)
        ), used as (
          insert into public.api_usage_hourly as u (key_id, hour, user_id, mode, requests,
            success, rate_limited, client_errors, server_errors)
          select key_id, date_trunc('hour', at, 'UTC'), (array_agg(user_id))[1],
            (array_agg(mode))[1], sum(n),
            coalesce(sum(n) filter (where status between 200 and 299), 0),
            coalesce(sum(n) filter (where status = 429), 0),
            coalesce(sum(n) filter (where status between 400 and 499 and status <> 429), 0),
            coalesce(sum(n) filter (where status >= 500), 0)
          from (
            select key_id, user_id, mode, status, created_at as at, 1 as n from input
            union all
            select key_id, user_id, mode, status, minute, count from refused
          ) e
          where key_id is not null and user_id is not null and mode is not null
          group by key_id, date_trunc('hour', at, 'UTC')
          on conflict (key_id, hour) do update set ${tx.unsafe(ADD_COUNTS)}
        ), app_used as (
          insert into public.api_app_usage_hourly as u (client_id, hour, requests, success,
            rate_limited, client_errors, server_errors)
          select client_id, date_trunc('hour', created_at, 'UTC'), count(*),
            count(*) filter (where status between 200 and 299),
            count(*) filter (where status = 429),
            count(*) filter (where status between 400 and 499 and status <> 429),
            count(*) filter (where status >= 500)
          from input where client_id is not null
          group by client_id, date_trunc('hour', created_at, 'UTC')
          on conflict (client_id, hour) do update set ${tx.unsafe(ADD_COUNTS)}
        ), grants_used as (
          update public.oauth_grants set last_used_at = now()
          where id in (select json_array_elements_text(${JSON.stringify(grantIds)}::text::json))
            and exists (select 1 from batch)
            and (last_used_at is null or last_used_at < now() - interval '1 minute')
        ), touched as (
          update public.api_keys set last_used_at = now()
          where id in (select json_array_elements_text(${JSON.stringify(keyIds)}::text::json))
            and exists (select 1 from batch)
            and (last_used_at is null or last_used_at < now() - interval '1 minute')
        )
        select count(*) from batch`);
  };

  /** Writes one batch, retrying with backoff until it succeeds or `retryForMs` passes. */
  const writeWithRetries = async (batch: Batch) => {
    const giveUpAt = now() + retryForMs;
    for (let attempt = 0;; attempt++) {
      try {
        await write(batch);
        return;
      } catch (error) {
        const wait = Math.min(5_000, 100 * 2 ** attempt);
        if (now() + wait > giveUpAt) {
          log.error("request log rows dropped after retries", {
            err: error,
            dropped: batch.rows.length,
            dropped_counted: batch.counters.reduce((n, c) => n + c.count, 0),
          });
          return;
        }
        log.warn("request log write failed, will retry", {
          err: error,
          attempt: attempt + 1,
          pending: queue.length + batch.rows.length,
        });
        await sleep(wait);
      }
    }
  };

  const drain = async () => {
    try {
      // Let the response that produced the first record leave before the write starts.
      await Promise.resolve();
      while (queue.length > 0 || counters.size > 0) {
        if (queue.length < batchSize && gatherMs > 0) await sleep(gatherMs);
        const rows = queue.slice(0, batchSize);
        queue = queue.slice(rows.length);
        const taken = [...counters.values()];
        counters = new Map();
        await writeWithRetries({ id: crypto.randomUUID(), rows, counters: taken });
      }
    } finally {
      flushing = undefined;
    }
  };

  const sink: AuditSink = {
    record(entry) {
      if (!counted(entry)) {
        queue.push(entry);
        if (queue.length > maxQueue) {
          const excess = queue.length - maxQueue;
          queue.splice(0, excess);
          log.error("request log queue over its bound, oldest rows dropped", { dropped: excess });
        }
      }
      if (!flushing) {
        flushing = drain();
        options.background(flushing);
      }
    },
    flush() {
      if (flushing) return flushing;
      if (queue.length === 0 && counters.size === 0) return Promise.resolve();
      flushing = drain();
      return flushing;
    },
    close() {
      return sink.flush();
    },
    get pending() {
      return queue.length + counters.size;
    },
  };
  return sink;
}
