/**
 * An isolate's webhooks: its dispatcher, and the `rate_limit.exceeded` event of a key refused by
 * its limit (handed over by the request events, events.ts).
 *
 * `rate_limit.exceeded` is written at most once per key and window: the first refusal of a key
 * in a window wins `SET NX` on a Redis key named after the window's end (each isolate remembers
 * what it has already raised, so a flood of refusals costs one Redis call per key, window and
 * isolate), and only the winner writes the event. Without Redis nothing is raised (a limiter
 * without Redis lets requests through anyway).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { onConnection } from "../db/client.ts";
import type { KeyPrincipal } from "../auth/principal.ts";
import type { Decision } from "../ratelimit/limiter.ts";
import { createDispatcher, type Dispatcher, type DispatcherOptions } from "./dispatcher.ts";

/** Webhook work an isolate does. */
export interface Webhooks {
  /** After a request that may have written events: send what is due, after the response. */
  kick(): void;
  /** A key was refused by its rate limit: raise `rate_limit.exceeded` once per window. */
  rateLimited(principal: KeyPrincipal, decision: Decision): void;
  readonly dispatcher: Dispatcher;
}

/** Options of {@link createWebhooks}: its dispatcher's, and the Redis of the rate-limit events. */
export interface WebhooksOptions extends Omit<DispatcherOptions, "random"> {
  redis: Redis;
  redisPrefix: string;
}

/** Most windows an isolate remembers having raised; older ones are forgotten first. */
const REMEMBERED = 10_000;

/** Builds an isolate's webhooks. */
export function createWebhooks(options: WebhooksOptions): Webhooks {
  const { sql, redis, log, now, background } = options;
  const dispatcher = createDispatcher(options);
  /** `<key id>:<window>:<reset>` -> the window's end (ms). */
  const raised = new Map<string, number>();

  async function raise(p: KeyPrincipal, d: Decision): Promise<void> {
    const marker = `${options.redisPrefix}:webhooks:limited:${p.keyId}:${d.window}:${d.reset}`;
    const won = await redis.set(marker, "1", { nx: true, pxat: d.reset + 60_000 });
    if (won === null) return;
    const data = {
      key_id: p.keyId,
      key_name: p.keyName,
      mode: p.mode,
      tier: p.tierName,
      window: d.window,
      limit: d.limit,
      reset_at: new Date(d.reset).toISOString(),
    };
    const [row] = await onConnection(
      sql,
      (c) =>
        c<{ id: string | null }[]>`select public.webhook_enqueue(${p.userId}::uuid, ${p.mode},
        'rate_limit.exceeded', ${sql.json(data)}::jsonb) as id`,
    );
    if (row?.id) dispatcher.kick();
  }

  return {
    dispatcher,
    kick: () => dispatcher.kick(),
    rateLimited(p, d) {
      const key = `${p.keyId}:${d.window}:${d.reset}`;
      if (raised.has(key)) return;
      if (raised.size >= REMEMBERED) {
        const t = now();
        for (const [k, end] of raised) if (end <= t || raised.size >= REMEMBERED) raised.delete(k);
      }
      raised.set(key, d.reset);
      background(
        raise(p, d).catch((error) => log.warn("rate_limit.exceeded not raised", { err: error })),
      );
    },
  };
}
