/**
 * Webhook receivers for the suites: a `Deno.serve` on loopback that records every request and
 * answers as the test says (by the request's number, from 1), and can wait for requests.
 *
 * @module
 */

/** One request a receiver got. */
export interface Received {
  headers: Record<string, string>;
  body: string;
  path: string;
  /** `performance.now()` when it arrived. */
  at: number;
}

/** A receiver on 127.0.0.1. */
export interface Receiver extends AsyncDisposable {
  url: string;
  port: number;
  received: Received[];
  /** Resolves once `n` requests have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs: number): Promise<Received[]>;
  /** Stops the server (also what `await using` does at the end of the block). */
  close(): Promise<void>;
}

/** How a receiver answers its n-th request (1-based). */
export type Answer = (n: number, request: Received) => Response | Promise<Response>;

/** Starts a receiver; by default it answers 204 to everything. */
export function startReceiver(
  answer: Answer = () => new Response(null, { status: 204 }),
): Receiver {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen: () => {},
  }, async (req) => {
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
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
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
    async close() {
      controller.abort();
      await server.finished;
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}
