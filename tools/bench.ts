/**
 * The performance benchmark of issue 6: `deno task bench [options]`.
 *
 * Starts the `bench` profile's stack (database `torvus_bench` reset, Redis bridge on 8090,
 * dev server on 29351, Redis prefix `torvus-bench`, no forwarded client addresses) and a bare
 * `Deno.serve` baseline on 29352, creates its data (tools/bench/setup.ts), then measures with
 * one load tool and one set of settings (wrk, else autocannon):
 * - closed loop, each case `--duration` s after a `--warmup` s warm-up: req/s, p50, p99,
 *   non-2xx by status, ratio to the baseline, peak RSS of the server (VmRSS every 200 ms), and
 *   CPU use of the server, the bridge, PostgreSQL, Redis and the machine (server CPU per
 *   request is the figure that compares best on a busy machine); `/api/me` rotates many users'
 *   tokens, since one user may make only 1,000 requests an hour;
 * - added median latency over the baseline at a fixed 1,000 req/s (tools/bench/fixed_rate.ts),
 *   with the server's own `X-Response-Time` / `Server-Timing` medians;
 * - cold start of `supabase/functions/v1-test/index.ts` and the handler's import time;
 * - with `--soak N`: RSS over an N-second run of /api/v1/test, sampled each second.
 * Prints markdown tables and the goals of issue 6, writes everything to
 * `.local/bench/<timestamp>.json`, and stops what it started (also on Ctrl-C or failure).
 * PostgreSQL and Redis are left running. `--cpu-prof` profiles the dev server
 * (tools/bench/profile.ts summarises the profile).
 *
 * @module
 */
import { ROOT } from "./stack/config.ts";
import { type LoadSettings, pickTool, runLoad, type Tool } from "./bench/load.ts";
import { CASE_IDS, type Options, parseArgs } from "./bench/options.ts";
import { caseDefs, expectStatus } from "./bench/cases.ts";
import { onInterrupt, type Proc, stop, stopAll } from "./bench/procs.ts";
import { meterCpu, sampleRss } from "./bench/rss.ts";
import { runFixedRate } from "./bench/fixed_rate.ts";
import { type ColdResult, measureColdStart } from "./bench/cold.ts";
import { summariseFile } from "./bench/profile.ts";
import {
  BENCH,
  benchSettings,
  clearRedisPrefix,
  createFixtures,
  ensureBridge,
  prepareDatabase,
  startBaseline,
  startServer,
} from "./bench/setup.ts";
import {
  type CaseReport,
  caseTable,
  checkGoals,
  coldLines,
  type FixedReport,
  fixedTable,
  goalTable,
  soakLines,
  type SoakReport,
} from "./bench/report.ts";

const log = (line: string) => console.log(`[bench] ${line}`);

async function main(o: Options): Promise<void> {
  const startedAt = new Date();
  const loadAtStart = Deno.loadavg();
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const outDir = `${ROOT}/.local/bench`;
  const profDir = o.cpuProf ? `${outDir}/prof-${stamp}` : undefined;
  const settings: LoadSettings = { connections: o.connections, threads: o.threads, timeoutS: 5 };
  const cleanup = () => stopAll(log);
  onInterrupt(cleanup);

  const cases: CaseReport[] = [];
  let fixed: FixedReport | undefined;
  let cold: ColdResult | undefined;
  let soak: SoakReport | undefined;
  let tool: Tool = "wrk";
  let server: Proc | undefined;
  try {
    const load1 = loadAtStart[0] ?? 0;
    if (load1 > 1) {
      log(`WARNING: load average ${load1.toFixed(2)} before the run: other processes use the CPU,`);
      log("WARNING: so the figures will be lower and noisier than on an idle machine");
    }
    tool = await pickTool(log, o.tool);
    log(
      `load tool: ${tool}, ${o.threads} thread(s), ${o.connections} connections, ` +
        `${o.warmup} s warm-up + ${o.duration} s per case`,
    );
    const env = benchSettings();
    await prepareDatabase(env, log);
    const bridge = await ensureBridge(env, log);
    log(`redis: cleared ${await clearRedisPrefix(env)} keys under ${BENCH.redisPrefix}:`);
    server = await startServer({ ...env, ...o.serverEnv }, log, profDir);
    const baseline = await startBaseline(log);
    const fx = await createFixtures(env, o.users, 20, log);
    const defs = caseDefs(fx);
    for (const c of defs) await expectStatus(c);
    const byId = new Map(defs.map((c) => [c.id, c]));

    if (!o.skip.includes("load")) {
      let baseRps = NaN;
      for (const c of defs.filter((d) => (o.cases ?? CASE_IDS).includes(d.id))) {
        log(`${c.label}: warm-up ${o.warmup} s, then ${o.duration} s`);
        if (o.warmup > 0) await runLoad(tool, c.target, settings, o.warmup);
        const pid = c.id === "baseline" ? baseline.pid : server.pid;
        const pids: Record<string, number> = { server: pid };
        if (bridge && c.id !== "baseline") pids.bridge = bridge.pid;
        const stopRss = sampleRss(pid, 200);
        const stopCpu = meterCpu(pids, ["postgres", "redis-server"]);
        const result = await runLoad(tool, c.target, settings, o.duration);
        const cpu = stopCpu();
        const rss = stopRss();
        if (c.id === "baseline") baseRps = result.rps;
        cases.push({
          id: c.id,
          label: c.label,
          url: c.target.url,
          result,
          rss,
          cpu,
          ratio: result.rps / baseRps,
        });
        log(
          `  ${
            Math.round(result.rps)
          } req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms`,
        );
      }
    }

    if (!o.skip.includes("fixed")) {
      fixed = { cases: {}, addedMedianMs: {}, serverCpuUsPerRequest: {} };
      for (const id of ["baseline", "v1-test", "me"]) {
        log(`fixed rate: ${id} at ${o.rate}/s, ${o.fixedRequests} requests`);
        const warmup = Math.min(1000, Math.ceil(o.fixedRequests / 10));
        const stopCpu = meterCpu({ server: id === "baseline" ? baseline.pid : server.pid });
        const r = await runFixedRate(byId.get(id)!.target, {
          rate: o.rate,
          count: o.fixedRequests,
          warmup,
        });
        // Warm-up and measurement run at the same rate, so CPU over both is per-request fair.
        fixed.serverCpuUsPerRequest[id] = Math.round(
          (stopCpu().procs.server ?? NaN) / 100 * 1e6 / r.achievedRate,
        );
        fixed.cases[id] = r;
      }
      const base = fixed.cases.baseline!.latencyMs.p50;
      for (const id of ["v1-test", "me"]) {
        fixed.addedMedianMs[id] = Math.round((fixed.cases[id]!.latencyMs.p50 - base) * 1000) / 1000;
      }
    }

    if (!o.skip.includes("cold")) {
      log(`cold start: supabase/functions/v1-test/index.ts, ${o.coldRuns} runs`);
      cold = await measureColdStart({
        root: ROOT,
        entry: "supabase/functions/v1-test/index.ts",
        handlerModule: "supabase/functions/v1-test/handler.ts",
        env,
        port: BENCH.coldPort,
        path: "/v1-test",
        headers: { "X-API-Key": fx.validKey },
        runs: o.coldRuns,
      });
    }

    if (o.soak > 0) {
      log(`soak: /api/v1/test for ${o.soak} s, RSS each second`);
      const stopRss = sampleRss(server.pid, 1000);
      const result = await runLoad(tool, byId.get("v1-test")!.target, settings, o.soak);
      const rss = stopRss();
      const first = rss.firstKb ?? NaN;
      const pct = (kb: number | undefined) =>
        Math.round((((kb ?? NaN) - first) / first) * 1000) / 10;
      soak = {
        seconds: o.soak,
        result,
        rss,
        changePct: pct(rss.lastKb),
        peakChangePct: pct(rss.peakKb),
      };
    }
    if (profDir) await stop(server);
  } finally {
    await cleanup();
  }

  const goals = checkGoals(cases, fixed, cold, soak);
  const out = [
    `## Torvus benchmark ${startedAt.toISOString()}`,
    "",
    `${tool}, ${o.threads} thread(s), ${o.connections} connections, ${o.duration} s per case ` +
    `after ${o.warmup} s warm-up; ${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}`,
    "",
  ];
  if (cases.length > 0) out.push(caseTable(cases), "");
  if (fixed) out.push(fixedTable(fixed), "");
  if (cold) out.push(coldLines(cold), "");
  if (soak) out.push(soakLines(soak), "");
  if (goals.length > 0) out.push(goalTable(goals), "");
  console.log("\n" + out.join("\n"));

  Deno.mkdirSync(outDir, { recursive: true });
  const file = `${outDir}/${stamp}.json`;
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: navigator.hardwareConcurrency,
      deno: Deno.version,
      os: Deno.osRelease(),
      loadavgAtStart: loadAtStart,
    },
    settings: {
      tool,
      serverEnv: o.serverEnv,
      ...settings,
      durationS: o.duration,
      warmupS: o.warmup,
      users: o.users,
      ...BENCH,
    },
    cases,
    fixedRate: fixed,
    coldStart: cold,
    soak,
    goals,
  };
  Deno.writeTextFileSync(file, JSON.stringify(report, null, 2) + "\n");
  log(`written ${file}`);
  if (profDir) {
    for (const entry of Deno.readDirSync(profDir)) {
      if (!entry.name.endsWith(".cpuprofile")) continue;
      console.log(`\nCPU profile of the dev server (${profDir}/${entry.name}):`);
      console.log(summariseFile(`${profDir}/${entry.name}`, 25));
    }
  }
}

if (import.meta.main) {
  try {
    await main(parseArgs(Deno.args));
    Deno.exit(0);
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
