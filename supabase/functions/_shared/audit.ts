/**
 * The request log: every authenticated or failed request becomes a row of `api_request_log`,
 * written in batches off the response path.
 *
 * Records wait in memory and are flushed in one multi-row INSERT when a batch fills or a
 * short interval passes; the same flush moves `last_used_at` of the keys seen, at most once a
 * minute per key, so a busy key costs no write per request. A failed flush puts its batch back
 * and retries with backoff, so a database restart loses nothing; only a queue over its bound
 * drops its oldest rows, counted in a warning. {@link AuditSink.close} flushes what is left
 * (the dev server calls it on SIGTERM; the edge runtime on `beforeunload`).
 *
 * @module
 */
import { type Sql, withDbDeadline } from "./db/client.ts";
import { type Logger, redact } from "./log.ts";

/** One request, as logged. Never holds a credential. */
export interface AuditRecord {
  requestId: string;
  keyId?: string | undefined;
  userId?: string | undefined;
  mode?: "live" | "test" | undefined;
  method: string;
  path: string;
  status: number;
  code?: string | undefined;
  latencyMs: number;
  ip?: string | undefined;
  userAgent?: string | undefined;
  at: Date;
}

/** Accepts records and persists them eventually. */
export interface AuditSink {
  record(entry: AuditRecord): void;
  /** Writes everything queued now; resolves when done or failed (failed rows stay queued). */
  flush(): Promise<void>;
  /** Flushes and stops the timer. */
  close(): Promise<void>;
  /** Rows waiting to be written. */
  readonly pending: number;
}

/** Options of {@link createAuditSink}. */
export interface AuditOptions {
  sql: Sql;
  log: Logger;
  batchSize?: number;
  intervalMs?: number;
  maxQueue?: number;
}

const MAX_USER_AGENT = 512;
const MAX_PATH = 1024;

/** Creates the isolate's audit sink. */
export function createAuditSink(options: AuditOptions): AuditSink {
  const { sql, log } = options;
  const batchSize = options.batchSize ?? 500;
  const intervalMs = options.intervalMs ?? 1000;
  const maxQueue = options.maxQueue ?? 50_000;
  let queue: AuditRecord[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let flushing: Promise<void> | undefined;
  let failures = 0;
  let dropped = 0;

  const schedule = (delay: number) => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void sink.flush();
    }, delay);
    // A pending audit batch must not keep a CLI or test process alive; close() flushes it.
    if (typeof Deno !== "undefined" && typeof Deno.unrefTimer === "function") {
      Deno.unrefTimer(timer as unknown as number);
    }
  };

  const write = async (batch: AuditRecord[]) => {
    const rows = batch.map((r) => ({
      request_id: r.requestId,
      key_id: r.keyId ?? null,
      user_id: r.userId ?? null,
      mode: r.mode ?? null,
      method: r.method.slice(0, 16),
      path: r.path.slice(0, MAX_PATH),
      status: r.status,
      code: r.code ?? null,
      latency_ms: Math.round(r.latencyMs * 1000) / 1000,
      ip: r.ip ?? null,
      // Clients have put keys in their User-Agent; the log must never keep one.
      user_agent: r.userAgent === undefined ? null : redact(r.userAgent.slice(0, MAX_USER_AGENT)),
      created_at: r.at,
    }));
    const keyIds = [
      ...new Set(batch.filter((r) => r.keyId && r.status < 400).map((r) => r.keyId!)),
    ];
    await withDbDeadline(sql.begin(async (tx) => {
      await tx`insert into public.api_request_log ${tx(rows)} on conflict (request_id) do nothing`;
      if (keyIds.length > 0) {
        await tx`update public.api_keys set last_used_at = now()
          where id = any(${keyIds}) and (last_used_at is null or last_used_at < now() - interval '1 minute')`;
      }
    }));
  };

  const sink: AuditSink = {
    record(entry) {
      queue.push(entry);
      if (queue.length > maxQueue) {
        const excess = queue.length - maxQueue;
        queue.splice(0, excess);
        dropped += excess;
        log.warn("audit queue over its bound, oldest records dropped", { dropped });
      }
      schedule(queue.length >= batchSize ? 0 : intervalMs);
    },
    flush() {
      if (flushing) return flushing;
      flushing = (async () => {
        while (queue.length > 0) {
          const batch = queue.slice(0, batchSize);
          queue = queue.slice(batch.length);
          try {
            await write(batch);
            failures = 0;
          } catch (error) {
            queue = batch.concat(queue);
            failures++;
            log.warn("audit flush failed, will retry", { err: error, pending: queue.length });
            schedule(Math.min(30_000, intervalMs * 2 ** Math.min(failures, 5)));
            return;
          }
        }
      })().finally(() => {
        flushing = undefined;
      });
      return flushing;
    },
    async close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await sink.flush();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    get pending() {
      return queue.length;
    },
  };
  return sink;
}
