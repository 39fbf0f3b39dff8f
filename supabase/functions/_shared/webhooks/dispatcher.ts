/**
 * The dispatcher: sends the deliveries that are due, from any isolate.
 *
 * The outbox (`webhook_events`, `webhook_deliveries`) is written in the transaction of the
 * change that causes an event. A request that may have written one kicks the dispatcher of its
 * isolate after answering (the work is registered with `EdgeRuntime.waitUntil`); the scheduled
 * sweep kicks it too, which picks up retries and whatever a dropped isolate left behind.
 *
 * A delivery is claimed with a lease: one statement marks a batch of due rows as attempted,
 * gives each a fresh `lease_id` and moves its `next_attempt_at` past the attempt's deadline. A
 * dispatcher that dies mid-attempt records nothing, and the delivery is due again when the
 * lease ends: deliveries are sent at least once, and twice only when an attempt's outcome was
 * lost. Only the lease's holder records the outcome, so a late answer never overwrites a newer
 * attempt. Claims skip rows other dispatchers hold (`for update skip locked`).
 *
 * Each attempt resolves the target's host, refuses it unless every address is allowed
 * (address.ts), connects to an allowed address itself (http.ts: no second resolution, no
 * redirects, a deadline, a capped body), signs with the endpoint's secret (and the previous one
 * during a rotation's grace period) and records the answer. A failure is retried with
 * exponential backoff and jitter (backoff.ts) until the retry period ends, then marked failed;
 * an endpoint whose deliveries keep failing for `disableAfterMs` is disabled, with the reason.
 *
 * @module
 */
import type { Sql } from "../db/client.ts";
import { onConnection } from "../db/client.ts";
import type { WebhookConfig } from "../config.ts";
import { type Logger, throttled } from "../log.ts";
import { retryDelayMs } from "./backoff.ts";
import { signedHeaders } from "./signing.ts";
import { refusedAddress } from "./address.ts";
import { hostOf, refusedUrl, resolveHost } from "./target.ts";
import { DeliveryError, postWebhook, type WebhookRequest, type WebhookResponse } from "./http.ts";
import { delay } from "../deadline.ts";

/** Deliveries claimed (and sent concurrently) at a time by one isolate. */
const BATCH = 8;
/** Shortest time between two claims of one isolate: a burst of kicks makes one claim. */
const MIN_CLAIM_GAP_MS = 100;
/** Longest a dispatcher keeps claiming after a kick; the sweep takes over from there. */
const RUN_BUDGET_MS = 60_000;
/** A lease outlives its attempt's deadline by this much (time to record the outcome). */
const LEASE_MARGIN_MS = 5_000;

/** A claimed delivery with what sending it needs. */
interface Claimed {
  id: string;
  lease_id: string;
  attempts: number;
  event_id: string;
  url: string;
  mode: "live" | "test";
  secret: string;
  previous_secret: string | null;
  payload: string;
}

/** How one attempt went. */
export type AttemptOutcome =
  | { ok: true; status: number; body: string }
  | { ok: false; status: number | null; body: string | null; error: string };

/** Sends one request; replaced in tests. */
export type Send = (request: WebhookRequest) => Promise<WebhookResponse>;

/** Options of {@link createDispatcher}. */
export interface DispatcherOptions {
  sql: Sql;
  config: WebhookConfig;
  log: Logger;
  now: () => number;
  /** Keeps work alive after the response (the runtime's waitUntil). */
  background: (work: Promise<unknown>) => void;
  send?: Send;
  random?: () => number;
}

/** Sends due deliveries in the background of an isolate. */
export interface Dispatcher {
  /** Asks for a claim of due deliveries soon (coalesced: one run per isolate at a time). */
  kick(): void;
  /** The current run, if any (tests and shutdown wait for it). */
  readonly running: Promise<void> | undefined;
}

/** Builds an isolate's dispatcher. */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { sql, config, log, now } = options;
  const send = options.send ?? postWebhook;
  const random = options.random ?? Math.random;
  const leaseMs = config.timeoutMs + LEASE_MARGIN_MS;
  let running: Promise<void> | undefined;
  let again = false;
  // One line per 10 s at most (the platform caps log lines per function), with what it skipped.
  const summary = throttled(
    (counts, skipped) =>
      log.info("webhooks dispatched", { ...counts as object, runs_not_logged: skipped }),
    now,
    10_000,
  );
  let lastClaim = -Infinity;

  async function claim(): Promise<Claimed[]> {
    return await onConnection(
      sql,
      (c) =>
        c<Claimed[]>`
      with due as (
        select d.id from public.webhook_deliveries d
        where d.status = 'pending' and d.next_attempt_at <= now()
          and exists (select 1 from public.webhook_endpoints e
            where e.id = d.endpoint_id and e.status = 'enabled')
        order by d.next_attempt_at
        limit ${BATCH}
        for update of d skip locked
      )
      update public.webhook_deliveries d
      set attempts = d.attempts + 1, lease_id = gen_random_uuid(), last_attempt_at = now(),
        next_attempt_at = now() + ${leaseMs}::int * interval '1 millisecond'
      from due, public.webhook_endpoints e, public.webhook_events ev
      where d.id = due.id and e.id = d.endpoint_id and ev.id = d.event_id
      returning d.id, d.lease_id, d.attempts, d.event_id, e.url, e.mode, e.secret,
        case when e.previous_secret_expires_at > now() then e.previous_secret end
          as previous_secret,
        ev.payload::text as payload`,
    );
  }

  /** One attempt at one delivery: never throws. */
  async function attempt(d: Claimed): Promise<AttemptOutcome> {
    const signal = AbortSignal.timeout(config.timeoutMs);
    try {
      const policy = { allowLoopback: config.allowLoopback };
      const invalid = refusedUrl(d.url, d.mode, policy);
      if (invalid) return failed(`The endpoint's URL ${invalid}`);
      const url = new URL(d.url);
      const host = hostOf(url);
      const addresses = await resolveHost(host, { nameServer: config.dnsServer, signal });
      const refused = addresses.map((a) => refusedAddress(a, config.allowLoopback))
        .find((reason) => reason !== undefined);
      // One refused address refuses the target: the name could be answered with it next time.
      if (refused) return failed(`Refused: ${host} resolved to ${refused}`);
      const timestamp = Math.floor(now() / 1000);
      const secrets = d.previous_secret ? [d.secret, d.previous_secret] : [d.secret];
      const headers = await signedHeaders(secrets, d.event_id, timestamp, d.payload);
      let last: unknown;
      for (const address of addresses) {
        try {
          const r = await send({ url, address, headers, body: d.payload, signal });
          if (r.status >= 200 && r.status < 300) return { ok: true, ...r };
          const note = r.status >= 300 && r.status < 400 ? " (redirects are not followed)" : "";
          return { ok: false, status: r.status, body: r.body, error: `HTTP ${r.status}${note}` };
        } catch (error) {
          last = error;
          // Another address may accept the connection; any other failure is the answer.
          if (!(error instanceof DeliveryError && error.code === "connect")) break;
        }
      }
      throw last;
    } catch (error) {
      if (signal.aborted) return failed(`Timed out after ${config.timeoutMs / 1000} s`);
      if (
        error instanceof DeliveryError || error instanceof Error && error.name === "ResolveError"
      ) {
        return failed(error.message);
      }
      log.warn("webhook attempt failed unexpectedly", { err: error, delivery_id: d.id });
      return failed("Internal error while sending");
    }
  }

  async function record(d: Claimed, outcome: AttemptOutcome): Promise<void> {
    if (outcome.ok) {
      await onConnection(
        sql,
        (c) =>
          c`
        with d as (
          update public.webhook_deliveries
          set status = 'succeeded', lease_id = null, next_attempt_at = now(), completed_at = now(),
            response_status = ${outcome.status}, response_body = ${outcome.body}, last_error = null
          where id = ${d.id} and lease_id = ${d.lease_id}::uuid
          returning endpoint_id
        )
        update public.webhook_endpoints e set failing_since = null
        from d where e.id = d.endpoint_id and e.failing_since is not null`,
      );
      return;
    }
    const delayMs = retryDelayMs(d.attempts, config.retryBaseMs, config.retryMaxDelayMs, random);
    const [row] = await onConnection(
      sql,
      (c) =>
        c<{ status: string; disabled: boolean }[]>`
      with d as (
        update public.webhook_deliveries
        set lease_id = null, response_status = ${outcome.status}, response_body = ${outcome.body},
          last_error = ${outcome.error.slice(0, 1000)},
          next_attempt_at = now() + ${delayMs}::int * interval '1 millisecond',
          status = case when now() + ${delayMs}::int * interval '1 millisecond' >
              coalesce(not_after, created_at + ${config.retryForMs}::bigint * interval '1 millisecond')
            then 'failed' else 'pending' end,
          completed_at = case when now() + ${delayMs}::int * interval '1 millisecond' >
              coalesce(not_after, created_at + ${config.retryForMs}::bigint * interval '1 millisecond')
            then now() end
        where id = ${d.id} and lease_id = ${d.lease_id}::uuid
        returning endpoint_id, status
      ), x as (
        select e.id, e.failing_since, e.status = 'enabled' and e.failing_since < now() -
          ${config.disableAfterMs}::bigint * interval '1 millisecond' as disabling
        from public.webhook_endpoints e join d on e.id = d.endpoint_id
      ), e as (
        update public.webhook_endpoints e
        set failing_since = coalesce(e.failing_since, now()),
          status = case when x.disabling then 'disabled' else e.status end,
          disabled_reason = case when x.disabling then format(
            'Deliveries failed without a success since %s (last: %s)',
            public.webhook_iso(x.failing_since), ${outcome.error.slice(0, 300)}::text)
            else e.disabled_reason end
        from x where e.id = x.id
        returning x.disabling
      )
      select d.status, coalesce((select disabling from e), false) as disabled from d`,
    );
    if (row?.disabled) log.warn("webhook endpoint disabled after failing", { delivery_id: d.id });
  }

  async function deliver(d: Claimed): Promise<boolean> {
    const outcome = await attempt(d);
    try {
      await record(d, outcome);
    } catch (error) {
      // The lease ends and the delivery is claimed again: sent at least once.
      log.warn("webhook attempt not recorded; it will be retried", {
        err: error,
        delivery_id: d.id,
      });
    }
    return outcome.ok;
  }

  async function run(): Promise<void> {
    const started = now();
    let sent = 0;
    let failedCount = 0;
    try {
      while (now() - started < RUN_BUDGET_MS) {
        const wait = lastClaim + MIN_CLAIM_GAP_MS - now();
        if (wait > 0) await delay(wait);
        again = false;
        lastClaim = now();
        const batch = await claim();
        const results = await Promise.all(batch.map(deliver));
        sent += results.filter(Boolean).length;
        failedCount += results.length - results.filter(Boolean).length;
        if (batch.length < BATCH && !again) break;
      }
    } catch (error) {
      log.warn("webhook dispatch failed; the sweep retries", { err: error });
    } finally {
      running = undefined;
      if (sent + failedCount > 0) summary({ succeeded: sent, failed: failedCount });
    }
  }

  return {
    kick() {
      if (running) {
        again = true;
        return;
      }
      running = run();
      options.background(running);
    },
    get running() {
      return running;
    },
  };

  function failed(error: string): AttemptOutcome {
    return { ok: false, status: null, body: null, error };
  }
}
