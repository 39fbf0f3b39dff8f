/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`, which `deno task bench --cpu-prof`
 * passes to the dev server): self time per function and per origin (project file, npm package,
 * Deno runtime extension, idle, GC), and total time (self + callees) per function.
 *
 * `deno run --allow-read tools/bench/profile.ts <file.cpuprofile> [top]`
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One row of the summary. */
export interface Row {
  name: string;
  ms: number;
  pct: number;
}

/** A profile's summary. */
export interface Summary {
  totalMs: number;
  origins: Row[];
  functions: Row[];
  inclusive: Row[];
}

/** Where a function comes from: `(idle)`, `npm:pkg`, `ext:…`, a project path, … */
export function originOf(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  const npm = /\/npm\/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm) return `npm:${npm[1]}`;
  if (url.startsWith("ext:") || url.startsWith("node:")) return url.split("/")[0]!;
  const project = /\/(supabase\/functions\/.*|tools\/.*)$/.exec(url);
  return project ? project[1]! : url;
}

/** Self time by origin and function, total time by function; largest first. */
export function summarise(profile: CpuProfile, top = 25): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (id: number): string => {
    const f = byId.get(id)?.callFrame;
    if (!f) return "?";
    return `${f.functionName || "(anonymous)"} ${originOf(f.url, f.functionName)}:${
      f.lineNumber + 1
    }`;
  };
  const self = new Map<string, number>();
  const origins = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const f = byId.get(id)?.callFrame;
    if (!f) return;
    total += us;
    add(self, keyOf(id), us);
    add(origins, originOf(f.url, f.functionName), us);
    // Each function once per sample, however often it recurs on the stack.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      seen.add(keyOf(at));
    }
    seen.delete("(root) (root):0");
    for (const key of seen) add(inclusive, key, us);
  });
  const rows = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({
      name,
      ms: Math.round(us / 100) / 10,
      pct: Math.round((us / total) * 1000) / 10,
    }));
  return {
    totalMs: Math.round(total / 1000),
    origins: rows(origins),
    functions: rows(self),
    inclusive: rows(inclusive),
  };
}

/** The summary as text. */
export function formatSummary(s: Summary): string {
  const lines = [`sampled ${s.totalMs} ms`];
  const section = (title: string, rows: Row[]) => {
    lines.push("", title);
    for (const r of rows) lines.push(`  ${r.pct.toFixed(1).padStart(5)} %  ${r.ms} ms  ${r.name}`);
  };
  section("self time by origin:", s.origins);
  section("self time by function:", s.functions);
  section("total time (self + callees) by function:", s.inclusive);
  return lines.join("\n");
}

/** Reads and summarises a profile file. */
export function summariseFile(path: string, top = 25): string {
  return formatSummary(summarise(JSON.parse(Deno.readTextFileSync(path)) as CpuProfile, top));
}

if (import.meta.main) {
  const [path, top] = Deno.args;
  if (path === undefined) {
    console.error("usage: profile.ts <file.cpuprofile> [top]");
    Deno.exit(2);
  }
  console.log(summariseFile(path, Number(top ?? "25")));
}
