/**
 * Serves one function alone, as the hosted Edge Runtime does, on a port of the benchmark's
 * choosing, and counts what the benchmark reads. Run by Deno 2.1 with the function's own
 * `deno.json` (tools/bench/stack.ts starts it):
 *
 *   deno run --no-lock --config supabase/functions/<fn>/deno.json --allow-net --allow-env \
 *     --allow-read --allow-sys tools/bench/serve.ts      (BENCH_FUNCTION=<fn>, BENCH_PORT=<n>)
 *
 * Before the function's `index.ts` is imported, `Deno.serve` is replaced by one that listens on
 * BENCH_PORT (Deno 2.1's own always takes 8000). `GET /__bench/counters`, answered in front of
 * the function's handler, returns the counts since the last such request (requests, by status,
 * and the REST calls the isolate's Redis client made and the commands they carried, from
 * `Services.redisStats`: every call is a pipeline; the commands are what Upstash bills, the
 * top-level commands redis-server runs) and starts them afresh. With BENCH_FUNCTION=baseline it serves a bare
 * `Deno.serve` handler through the same wrapper.
 *
 * @module
 */
const fn = Deno.env.get("BENCH_FUNCTION") ?? "baseline";
const port = Number(Deno.env.get("BENCH_PORT"));
const fresh = () => ({
  requests: 0,
  statuses: {} as Record<number, number>,
  redisCalls: 0,
  redisCommands: 0,
});
let counters = fresh();

/** Redis REST calls and the commands they carried so far (none for the baseline). */
let redisStats = () => ({ calls: 0, commands: 0 });
let taken0 = { calls: 0, commands: 0 };

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
      const now = { ...redisStats() };
      taken.redisCalls = now.calls - taken0.calls;
      taken.redisCommands = now.commands - taken0.commands;
      taken0 = now;
      counters = fresh();
      return Response.json(taken);
    }
    counters.requests++;
    const res = handler(req, info);
    return res instanceof Promise ? res.then(count) : count(res);
  });
};

if (fn === "floor") {
  const { floorHandler } = await import("./floor.ts");
  Deno.serve(floorHandler(Deno.env.toObject()));
} else if (fn === "baseline") {
  const body = JSON.stringify({ success: true, message: "ok" });
  Deno.serve(() => new Response(body, { headers: { "Content-Type": "application/json" } }));
} else {
  await import(new URL(`../../supabase/functions/${fn}/index.ts`, import.meta.url).href);
  const { bootIsolate } = await import("../../supabase/functions/_shared/services.ts");
  const boot = bootIsolate();
  if (boot instanceof Error) throw boot;
  redisStats = () => boot.services.redisStats;
}
