/**
 * The benchmark's report: markdown tables for the terminal and the goals of issue 6, checked.
 *
 * @module
 */
import type { LoadResult } from "./load.ts";
import type { CpuUse, RssSeries } from "./rss.ts";
import type { FixedRateResult } from "./fixed_rate.ts";
import type { ColdResult } from "./cold.ts";

/** One closed-loop case and what it measured. */
export interface CaseReport {
  id: string;
  label: string;
  url: string;
  result: LoadResult;
  rss: RssSeries;
  cpu: CpuUse;
  /** req/s divided by the baseline's. */
  ratio: number;
}

/** The fixed-rate phase: per case, and the added median over the baseline. */
export interface FixedReport {
  cases: Record<string, FixedRateResult>;
  addedMedianMs: Record<string, number>;
  /** The server's CPU time per request at that rate (all its threads), microseconds. */
  serverCpuUsPerRequest: Record<string, number>;
}

/** The soak run. */
export interface SoakReport {
  seconds: number;
  result: LoadResult;
  rss: RssSeries;
  /** (last − first) / first, percent. */
  changePct: number;
  /** (max − first) / first, percent. */
  peakChangePct: number;
}

/** A goal of issue 6 and whether this run met it. */
export interface Goal {
  goal: string;
  measured: string;
  met: boolean;
}

const mib = (kb: number | undefined) => kb === undefined ? "–" : (kb / 1024).toFixed(1);
const fmt = (n: number, digits = 2) => Number.isFinite(n) ? n.toFixed(digits) : "–";

/** Status counts as `429: 1,234; 401: 100`, most frequent first. */
export function statusMix(statuses: Record<string, number>, only = (_: string) => true): string {
  const parts = Object.entries(statuses).filter(([s]) => only(s)).sort((a, b) => b[1] - a[1]);
  return parts.length === 0 ? "0" : parts.map(([s, n]) => `${s}: ${n.toLocaleString("en")}`)
    .join("; ");
}

/** The server's CPU time per request (all its threads), in microseconds. */
export function cpuPerRequest(c: CaseReport): number {
  return Math.round(((c.cpu.procs.server ?? NaN) / 100) * 1e6 / c.result.rps);
}

const CPU_COLUMNS = ["server", "bridge", "postgres", "redis-server"];

/** The main table. */
export function caseTable(cases: readonly CaseReport[]): string {
  const rows = [
    "| case | req/s | vs baseline | p50 ms | p99 ms | non-2xx by status | peak RSS MiB " +
    "| CPU %: server / bridge / postgres / redis / machine | server CPU µs/req |",
    "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
  ];
  for (const c of cases) {
    const r = c.result;
    const errors = Object.values(r.socketErrors).reduce((a, b) => a + b, 0);
    const non2xx = statusMix(r.statuses, (s) => !s.startsWith("2")) +
      (errors > 0 ? ` (+${errors} socket errors)` : "");
    const cpu = CPU_COLUMNS.map((n) => c.cpu.procs[n] ?? "–").concat(c.cpu.machinePct);
    const cells = [
      c.label,
      Math.round(r.rps).toLocaleString("en"),
      `${fmt(c.ratio * 100, 1)} %`,
      fmt(r.latencyMs.p50),
      fmt(r.latencyMs.p99),
      non2xx,
      mib(c.rss.peakKb),
      cpu.join(" / "),
      String(cpuPerRequest(c)),
    ];
    rows.push(`| ${cells.join(" | ")} |`);
  }
  return rows.join("\n");
}

/** The fixed-rate table. */
export function fixedTable(f: FixedReport): string {
  const rows = [
    "| fixed rate | sent | achieved/s | p50 ms | p90 ms | p99 ms | added p50 ms | statuses | send lag p50/p99 ms | server-reported p50 ms | server CPU µs/req |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |",
  ];
  for (const [id, r] of Object.entries(f.cases)) {
    const added = f.addedMedianMs[id];
    rows.push(
      `| ${id} @ ${r.rate}/s | ${r.sent} | ${r.achievedRate} | ${fmt(r.latencyMs.p50, 3)} | ` +
        `${fmt(r.latencyMs.p90, 3)} | ${fmt(r.latencyMs.p99, 3)} | ` +
        `${added === undefined ? "–" : fmt(added, 3)} | ${statusMix(r.statuses)}` +
        `${r.failed + r.skipped > 0 ? ` (failed ${r.failed}, skipped ${r.skipped})` : ""} | ` +
        `${fmt(r.sendLagMs.p50, 3)} / ${fmt(r.sendLagMs.p99, 3)} | ` +
        `${Object.entries(r.serverMs).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", ") || "–"} | ` +
        `${f.serverCpuUsPerRequest[id] ?? "–"} |`,
    );
  }
  return rows.join("\n");
}

/** Cold-start lines. */
export function coldLines(c: ColdResult): string {
  return [
    `cold start (${c.entry}, ${c.runs.length} runs): first 2xx median ${c.medianFirstOkMs} ms ` +
    `[${c.runs.map((r) => r.firstOkMs).join(", ")}], "Listening on" median ${c.medianListenMs} ms`,
    `module import (${c.importProbe.module}, fresh process each): median ${c.medianImportMs} ms ` +
    `[${c.importProbe.runs.map((r) => r.importMs).join(", ")}]; runtime boot before user code ` +
    `median ${c.medianBootMs} ms`,
  ].join("\n");
}

/** Soak lines. */
export function soakLines(s: SoakReport): string {
  return `soak ${s.seconds} s on /api/v1/test: ${Math.round(s.result.rps)} req/s, RSS first ` +
    `${mib(s.rss.firstKb)} MiB, last ${mib(s.rss.lastKb)} MiB, max ${mib(s.rss.peakKb)} MiB, ` +
    `min ${mib(s.rss.minKb)} MiB: change ${s.changePct >= 0 ? "+" : ""}${fmt(s.changePct, 1)} % ` +
    `(max ${s.peakChangePct >= 0 ? "+" : ""}${fmt(s.peakChangePct, 1)} % over first)`;
}

/** Checks the goals of issue 6 against what was measured (skipping what was not). */
export function checkGoals(
  cases: readonly CaseReport[],
  fixed: FixedReport | undefined,
  cold: ColdResult | undefined,
  soak: SoakReport | undefined,
): Goal[] {
  const goals: Goal[] = [];
  const byId = new Map(cases.map((c) => [c.id, c]));
  for (const id of ["v1-test", "me"]) {
    const c = byId.get(id);
    if (!c) continue;
    goals.push({
      goal: `${c.label}: ≥ 25 % of baseline req/s, p99 ≤ 5 ms`,
      measured: `${(c.ratio * 100).toFixed(1)} %, p99 ${fmt(c.result.latencyMs.p99)} ms`,
      met: c.ratio >= 0.25 && c.result.latencyMs.p99 <= 5,
    });
  }
  const invalid = byId.get("invalid-key");
  if (invalid) {
    goals.push({
      goal: `${invalid.label}: ≥ 50 % of baseline req/s`,
      measured: `${(invalid.ratio * 100).toFixed(1)} %`,
      met: invalid.ratio >= 0.5,
    });
  }
  for (const [id, added] of Object.entries(fixed?.addedMedianMs ?? {})) {
    goals.push({
      goal: `${id}: added median latency at 1,000 req/s ≤ 1 ms`,
      measured: `${fmt(added, 3)} ms`,
      met: added <= 1,
    });
  }
  if (soak) {
    goals.push({
      goal: `server RSS flat ±10 % over ${soak.seconds} s`,
      measured: `${fmt(soak.changePct, 1)} % (max ${fmt(soak.peakChangePct, 1)} %)`,
      met: Math.abs(soak.changePct) <= 10 && soak.peakChangePct <= 10,
    });
  }
  if (cold) {
    goals.push({
      goal: "cold start ≤ 150 ms",
      measured: `${cold.medianFirstOkMs} ms`,
      met: cold.medianFirstOkMs <= 150,
    });
  }
  return goals;
}

/** The goals as a markdown table. */
export function goalTable(goals: readonly Goal[]): string {
  return ["| goal | measured | met |", "| --- | --- | --- |"]
    .concat(goals.map((g) => `| ${g.goal} | ${g.measured} | ${g.met ? "yes" : "**no**"} |`))
    .join("\n");
}
