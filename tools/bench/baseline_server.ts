/**
 * The benchmark's baseline: a bare `Deno.serve` answering a small JSON body, with no pipeline.
 * `deno run --allow-net --allow-env tools/bench/baseline_server.ts` (port: `BENCH_BASELINE_PORT`).
 *
 * @module
 */
const port = Number(Deno.env.get("BENCH_BASELINE_PORT") ?? "29352");
const body = JSON.stringify({ success: true, message: "ok" });

Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => console.log(`baseline listening on ${port}`) },
  () => new Response(body, { headers: { "Content-Type": "application/json" } }),
);
