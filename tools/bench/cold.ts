/**
 * Cold start: the time from spawning a fresh `deno run` of a function's `index.ts` to its first
 * successful answer, polled every 5 ms. `index.ts` only calls `Deno.serve(handler)`, whose
 * address Deno 2.x takes from `DENO_SERVE_ADDRESS` (`tcp:host:port`) when it is set, so the
 * function runs unchanged on a port of our choosing. Also: the time to the "Listening on" line
 * Deno prints, and, in separate fresh processes, the module import time of the handler alone.
 *
 * Deno's module cache is warm (one unmeasured run first), as on a deployed edge runtime.
 *
 * @module
 */
import { childEnv } from "./procs.ts";
import { percentile } from "./fixed_rate.ts";

/** One cold start. */
export interface ColdRun {
  /** Spawn → "Listening on" printed. */
  listenMs: number;
  /** Spawn → first 2xx answer. */
  firstOkMs: number;
  polls: number;
}

/** Cold-start figures. */
export interface ColdResult {
  entry: string;
  runs: ColdRun[];
  medianFirstOkMs: number;
  medianListenMs: number;
  importProbe: {
    module: string;
    runs: Array<{ bootMs: number; importMs: number; wallMs: number }>;
  };
  medianImportMs: number;
  medianBootMs: number;
}

/** Options of {@link measureColdStart}. */
export interface ColdOptions {
  root: string;
  /** Function entry, relative to root, e.g. `supabase/functions/v1-test/index.ts`. */
  entry: string;
  /** Handler module for the import probe. */
  handlerModule: string;
  env: Record<string, string>;
  port: number;
  /** Path requested on the function, e.g. `/v1-test`. */
  path: string;
  headers: Record<string, string>;
  runs: number;
}

const FLAGS = ["--allow-net", "--allow-env", "--allow-read", "--allow-sys"];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const round = (ms: number) => Math.round(ms * 10) / 10;

async function oneColdStart(o: ColdOptions): Promise<ColdRun> {
  const url = `http://127.0.0.1:${o.port}${o.path}`;
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, o.entry],
    cwd: o.root,
    env: childEnv({ ...o.env, DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${o.port}` }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let listenMs = NaN;
  // Deno prints "Listening on …" to stderr; request log lines go to stdout.
  const drain = Promise.all([child.stdout, child.stderr].map(async (stream) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      if (Number.isNaN(listenMs) && decoder.decode(chunk).includes("Listening on")) {
        listenMs = performance.now() - started;
      }
    }
  }));
  try {
    let polls = 0;
    const deadline = started + 20_000;
    while (performance.now() < deadline) {
      polls++;
      try {
        const res = await fetch(url, { headers: o.headers, signal: AbortSignal.timeout(5_000) });
        await res.arrayBuffer();
        if (res.ok) {
          return {
            listenMs: round(listenMs),
            firstOkMs: round(performance.now() - started),
            polls,
          };
        }
      } catch {
        // not listening yet
      }
      await sleep(5);
    }
    throw new Error(`${o.entry} gave no successful answer within 20 s`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    await drain.catch(() => {});
  }
}

async function importProbe(o: ColdOptions) {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, "tools/bench/import_probe.ts", o.handlerModule],
    cwd: o.root,
    env: childEnv(o.env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wallMs = performance.now() - started;
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`import probe failed: ${new TextDecoder().decode(out.stderr)}`);
  const r = JSON.parse(text.split("\n").pop() ?? "{}") as { bootMs: number; importMs: number };
  return { bootMs: round(r.bootMs), importMs: round(r.importMs), wallMs: round(wallMs) };
}

const median = (values: number[]) => round(percentile([...values].sort((a, b) => a - b), 50));

/** Measures `runs` cold starts and `runs` import probes, after one unmeasured warm-up of each. */
export async function measureColdStart(o: ColdOptions): Promise<ColdResult> {
  await oneColdStart(o);
  const runs: ColdRun[] = [];
  for (let i = 0; i < o.runs; i++) runs.push(await oneColdStart(o));
  await importProbe(o);
  const probes = [];
  for (let i = 0; i < o.runs; i++) probes.push(await importProbe(o));
  return {
    entry: o.entry,
    runs,
    medianFirstOkMs: median(runs.map((r) => r.firstOkMs)),
    medianListenMs: median(runs.map((r) => r.listenMs)),
    importProbe: { module: o.handlerModule, runs: probes },
    medianImportMs: median(probes.map((p) => p.importMs)),
    medianBootMs: median(probes.map((p) => p.bootMs)),
  };
}
