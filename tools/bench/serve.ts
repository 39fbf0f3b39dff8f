/**
 * Serves one function alone, as the hosted Edge Runtime does, on a port of the benchmark's
 * choosing, and counts what the benchmark reads. Run by Deno 2.1 with the function's own
 * `deno.json` (tools/bench/stack.ts starts it):
 *
 *   deno run --no-lock --config supabase/functions/<fn>/deno.json --allow-net --allow-env \
 *     --allow-read --allow-sys tools/bench/serve.ts      (BENCH_FUNCTION=<fn>, BENCH_PORT=<n>)
 *
 * Before the function's `index.ts` is imported, `Deno.serve` is replaced by one that listens on
 * BENCH_PORT (Deno 2.1's own always takes 8000) and `fetch` by one that counts calls to the
 * Redis REST URL, single commands and pipelines apart. `GET /__bench/counters`, answered in
 * front of the function's handler, returns the counts since the last such request (requests,
 * by status, and Redis calls) and starts them afresh. With
 * BENCH_FUNCTION=baseline it serves a bare `Deno.serve` handler through the same wrapper.
 *
 * @module
 */
const fn = Deno.env.get("BENCH_FUNCTION") ?? "baseline";
const port = Number(Deno.env.get("BENCH_PORT"));
const redisUrl = Deno.env.get("UPSTASH_REDIS_REST_URL") || "\0";
const fresh = () => ({
  requests: 0,
  statuses: {} as Record<number, number>,
  redis: 0,
  pipelines: 0,
});
let counters = fresh();

const realFetch = globalThis.fetch;
globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (url.startsWith(redisUrl)) {
    if (/\/(pipeline|multi-exec)\/?$/.test(url)) counters.pipelines++;
    else counters.redis++;
  }
  return realFetch(input, init);
};

type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
const count = (res: Response) => {
  counters.statuses[res.status] = (counters.statuses[res.status] ?? 0) + 1;
  return res;
};
const realServe = Deno.serve;
// deno-lint-ignore no-explicit-any
(Deno as any).serve = (...args: unknown[]) => {
  const handler = (args.find((a) => typeof a === "function") ??
    (args[0] as { handler: Handler }).handler) as Handler;
  return realServe({ hostname: "127.0.0.1", port, onListen: () => {} }, (req, info) => {
    if (req.url.endsWith("/__bench/counters")) {
      const taken = counters;
      counters = fresh();
      return Response.json(taken);
    }
    counters.requests++;
    const res = handler(req, info);
    return res instanceof Promise ? res.then(count) : count(res);
  });
};

if (fn === "baseline") {
  const body = JSON.stringify({ success: true, message: "ok" });
  Deno.serve(() => new Response(body, { headers: { "Content-Type": "application/json" } }));
} else {
  await import(new URL(`../../supabase/functions/${fn}/index.ts`, import.meta.url).href);
}
