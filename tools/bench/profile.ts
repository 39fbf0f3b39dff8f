/**
 * `deno task bench --profile`: a sampling CPU profile of each served function over a case's
 * measured seconds, taken through the V8 inspector (Chrome DevTools Protocol) that Deno 2.1
 * opens with `--inspect`. The stripped Deno binary leaves `--v8-flags=--prof` logs with nearly
 * every tick in unnamed C++, so the inspector's own profiler, which names JavaScript frames,
 * garbage collection and idle time, is what ranks where a request's CPU goes.
 *
 * Each profile is written as a `.cpuprofile` (open it in Chrome's DevTools or speedscope) and
 * summed up as self time per request, by function and by file, idle time left out.
 *
 * @module
 */

/** The inspector port of a served process: its own port + 1,000. */
export const inspectorPortOf = (servedPort: number) => servedPort + 1000;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
/** A CDP `Profiler.Profile`. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A CDP session over the inspector's WebSocket: one call at a time is all the bench needs. */
async function session(port: number) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const url = (list as Array<{ webSocketDebuggerUrl: string }>)[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(url);
  await new Promise((ok, fail) => {
    ws.onopen = ok;
    ws.onerror = () => fail(new Error(`inspector on port ${port} refused the WebSocket`));
  });
  let next = 0;
  const pending = new Map<number, (r: { result?: unknown; error?: unknown }) => void>();
  ws.onmessage = (e) => {
    const msg = JSON.parse(String(e.data));
    if (typeof msg.id === "number") pending.get(msg.id)?.(msg);
  };
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>((ok, fail) => {
      const id = ++next;
      pending.set(id, (r) => {
        pending.delete(id);
        if (r.error) fail(new Error(`${method}: ${JSON.stringify(r.error)}`));
        else ok(r.result);
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { call, close: () => ws.close() };
}

/** Starts sampling (every `intervalUs`); the returned function stops and hands the profile. */
export async function startProfile(
  port: number,
  intervalUs = 200,
): Promise<() => Promise<CpuProfile>> {
  const s = await session(port);
  await s.call("Profiler.enable");
  await s.call("Profiler.setSamplingInterval", { interval: intervalUs });
  await s.call("Profiler.start");
  return async () => {
    try {
      const { profile } = await s.call("Profiler.stop") as { profile: CpuProfile };
      await s.call("Profiler.disable");
      return profile;
    } finally {
      s.close();
    }
  };
}

/** Where a frame comes from, short: the project's files relative, Deno's `ext:` and npm kept. */
function place(url: string): string {
  if (url === "") return "(native)";
  const npm = url.match(/\/npm\/registry\.npmjs\.org\/([^/]+(?:\/[^/]+)?)\/[^/]+\/(.*)$/);
  if (npm) return `npm:${npm[1]}/${npm[2]}`;
  const here = url.indexOf("/supabase/functions/");
  if (here >= 0) return url.slice(here + "/supabase/functions/".length);
  const tool = url.indexOf("/tools/");
  return tool >= 0 ? url.slice(tool + 1) : url;
}

/** The key of a frame: its function and where it is. */
function frameKey(f: ProfileNode["callFrame"]): string {
  const where = place(f.url);
  return `${f.functionName || "(anonymous)"} ${where}${f.url ? `:${f.lineNumber + 1}` : ""}`;
}

/**
 * Self time per request, µs, by function and by file, and total time (self and callees, each
 * sample counted once per function on its stack) of the project's own functions; idle left out.
 * Work resumed after an `await` is a stack of its own, so totals cover synchronous stretches.
 */
export function summarize(profile: CpuProfile, requests: number, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  const totals = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
  let busy = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === "(idle)" || f.functionName === "(root)") continue;
    busy += us;
    add(fns, frameKey(f), us);
    add(files, place(f.url), us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (!frame.url.includes("/supabase/functions/") || frame.url.includes("/_vendor/")) continue;
      const key = frameKey(frame);
      if (!seen.has(key)) add(totals, key, us);
      seen.add(key);
    }
  }
  const n = Math.max(1, requests);
  const rows = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([k, us]) => `| ${(us / n).toFixed(1)} | ${(100 * us / busy).toFixed(1)} % | ${k} |`);
  const head = "| µs/request | share | %s |\n| ---: | ---: | --- |";
  return [
    `sampled busy time ${(busy / n).toFixed(0)} µs per request over ${requests} requests`,
    "",
    head.replace("%s", "function (self time)"),
    ...rows(fns),
    "",
    head.replace("%s", "file (self time)"),
    ...rows(files),
    "",
    head.replace("%s", "the project's function (total time: itself and what it calls)"),
    ...rows(totals),
  ].join("\n");
}
