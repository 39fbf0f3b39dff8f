/**
 * Webhook receivers for the suites: a `Deno.serve` on loopback that records every request and
 * answers as the test says (by the request's number, from 1), and can wait for requests.
 *
 * @module
 */
import {
  type LoopbackServer,
  serveLoopback,
} from "../../supabase/functions/_shared/testing/loopback.ts";

/** One request a receiver got. */
export interface Received {
  headers: Record<string, string>;
  body: string;
  path: string;
  /** `performance.now()` when it arrived. */
  at: number;
}

/** A receiver on 127.0.0.1. */
export interface Receiver extends LoopbackServer {
  received: Received[];
  /** Resolves once `n` requests have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs: number): Promise<Received[]>;
}

/** How a receiver answers its n-th request (1-based). */
export type Answer = (n: number, request: Received) => Response | Promise<Response>;

/** Starts a receiver; by default it answers 204 to everything. */
export function startReceiver(
  answer: Answer = () => new Response(null, { status: 204 }),
): Receiver {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const server = serveLoopback(async (req) => {
    const request: Received = {
      headers: Object.fromEntries(req.headers),
      body: await req.text(),
      path: new URL(req.url).pathname,
      at: performance.now(),
    };
    received.push(request);
    for (const wake of waiters.splice(0)) wake();
    return await answer(received.length, request);
  });
  return {
    ...server,
    received,
    async waitFor(n, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (received.length < n) {
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new Error(
            `the receiver got ${received.length} request(s), not ${n}, in ${timeoutMs} ms`,
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => (clearTimeout(timer), resolve()));
        });
      }
      return received;
    },
  };
}
