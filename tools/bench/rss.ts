/**
 * Resident memory of a process, sampled from `/proc/<pid>/status` (`VmRSS`), and CPU use of
 * processes and of the machine over an interval (`/proc/<pid>/stat`, `/proc/stat`).
 *
 * @module
 */

/** A process's RSS in KiB, or undefined when it cannot be read (gone, not Linux). */
export function readRssKb(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** What a sampler saw. */
export interface RssSeries {
  intervalMs: number;
  /** [milliseconds since the start, KiB]. */
  samples: Array<[number, number]>;
  firstKb: number | undefined;
  lastKb: number | undefined;
  minKb: number | undefined;
  peakKb: number | undefined;
}

/** Samples `pid`'s RSS every `intervalMs` until the returned function is called. */
export function sampleRss(pid: number, intervalMs: number): () => RssSeries {
  const start = performance.now();
  const samples: Array<[number, number]> = [];
  const take = () => {
    const kb = readRssKb(pid);
    if (kb !== undefined) samples.push([Math.round(performance.now() - start), kb]);
  };
  const timer = setInterval(take, intervalMs);
  return () => {
    clearInterval(timer);
    take();
    const values = samples.map(([, kb]) => kb);
    return {
      intervalMs,
      samples,
      firstKb: values[0],
      lastKb: values[values.length - 1],
      minKb: values.length > 0 ? Math.min(...values) : undefined,
      peakKb: values.length > 0 ? Math.max(...values) : undefined,
    };
  };
}

/** CPU time a process used so far, in clock ticks (utime + stime; 100 per second on Linux). */
export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

function machineTicks(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0] ?? "";
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

/** CPU ticks of every process whose command name (`comm`) is in `names`, by pid. */
export function ticksByCommand(names: readonly string[]): Map<number, [string, number]> {
  const found = new Map<number, [string, number]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (!names.includes(comm)) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      found.set(Number(entry.name), [comm, Number(fields[11]) + Number(fields[12])]);
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

/** CPU use over an interval: per named process (% of one core) and the whole machine. */
export interface CpuUse {
  /** Busy share of all cores, in % of one core (200 = two cores busy). */
  machinePct: number;
  procs: Record<string, number>;
}

/**
 * Starts measuring CPU use of `pids` and of every process named in `commands` (all PostgreSQL
 * backends, say: other databases' work included); the returned function ends the interval.
 */
export function meterCpu(
  pids: Record<string, number>,
  commands: readonly string[] = [],
): () => CpuUse {
  const cores = navigator.hardwareConcurrency;
  const start = performance.now();
  const m0 = machineTicks();
  const p0 = Object.entries(pids).map(([name, pid]) => [name, pid, cpuTicks(pid)] as const);
  const c0 = ticksByCommand(commands);
  return () => {
    const seconds = (performance.now() - start) / 1000;
    const m1 = machineTicks();
    const procs: Record<string, number> = {};
    for (const [name, pid, t0] of p0) {
      const t1 = cpuTicks(pid);
      if (t0 !== undefined && t1 !== undefined) procs[name] = Math.round((t1 - t0) / seconds);
    }
    // Processes that ended meanwhile are not counted; new ones count from zero.
    for (const name of commands) procs[name] = 0;
    for (const [pid, [name, t1]] of ticksByCommand(commands)) {
      procs[name]! += (t1 - (c0.get(pid)?.[1] ?? 0)) / seconds;
    }
    for (const name of commands) procs[name] = Math.round(procs[name]!);
    const busy = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total);
    return { machinePct: Math.round(busy * cores * 100), procs };
  };
}
