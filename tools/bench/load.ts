/**
 * The closed-loop load runner: `wrk` (installed with apt when missing and running as root),
 * else autocannon from npm with a warning. Every case runs with the same tool, connections,
 * threads and script, so the numbers compare; only the URL and the request headers change.
 *
 * The wrk script cycles through pre-formatted requests (one per header set: the `/api/me` case
 * rotates many users' tokens, see setup.ts) and counts answers per status in a `response`
 * callback, also for the baseline.
 *
 * @module
 */
import { childEnv, track } from "./procs.ts";

/** The load tool in use. */
export type Tool = "wrk" | "autocannon";

/** What to load: one URL, and header sets used in turn. */
export interface Target {
  url: string;
  headers: ReadonlyArray<Record<string, string>>;
}

/** Settings shared by every run. */
export interface LoadSettings {
  connections: number;
  threads: number;
  timeoutS: number;
}

/** One run's figures. Latencies in milliseconds. */
export interface LoadResult {
  tool: Tool;
  durationS: number;
  requests: number;
  rps: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  statuses: Record<string, number>;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

const AUTOCANNON = "npm:autocannon@8.0.0";
const decoder = new TextDecoder();

function which(cmd: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return dir !== "" && Deno.statSync(`${dir}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

async function sh(cmd: string, args: string[]): Promise<boolean> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const out = await new Deno.Command(cmd, { args, env, stdout: "null", stderr: "null" }).output();
  return out.success;
}

/** Finds wrk, installing it as root; otherwise autocannon (with a warning). */
export async function pickTool(log: (line: string) => void, prefer?: Tool): Promise<Tool> {
  if (prefer === "autocannon") return "autocannon";
  if (which("wrk")) return "wrk";
  if (Deno.uid() === 0 && which("apt-get")) {
    log("load tool: wrk missing, installing it (apt-get update && apt-get install -y wrk)");
    if (await sh("apt-get", ["update"]) && await sh("apt-get", ["install", "-y", "wrk"])) {
      if (which("wrk")) return "wrk";
    }
  }
  log(`WARNING: wrk is not available; falling back to ${AUTOCANNON} (Node-based, slower`);
  log("WARNING: client: its numbers are lower than wrk's and do not compare with wrk runs)");
  return "autocannon";
}

function luaString(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error("header values must be printable ASCII");
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The wrk script: rotating pre-formatted requests, status counts, a JSON summary line. */
export function wrkScript(target: Target): string {
  const path = new URL(target.url);
  const sets = (target.headers.length > 0 ? target.headers : [{}]).map((h) =>
    `{${Object.entries(h).map(([k, v]) => `[${luaString(k)}]=${luaString(v)}`).join(",")}}`
  );
  return `
local sets = {${sets.join(",\n")}}
local reqs, n, i = {}, 0, 0
counts = {}
function init(args)
  for _, h in ipairs(sets) do
    h["Host"] = wrk.headers["Host"]
    n = n + 1
    reqs[n] = wrk.format("GET", ${luaString(path.pathname + path.search)}, h)
  end
end
function request()
  i = i % n + 1
  return reqs[i]
end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do parts[k] = (parts[k] or 0) + v end
  end
  local st = {}
  for k, v in pairs(parts) do table.insert(st, string.format('"%d":%d', k, v)) end
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%d,"duration_us":%d,"mean":%f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"statuses":{%s}}\\n', summary.requests, summary.duration, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, table.concat(st, ",")))
end
`;
}

function summarise(statuses: Record<string, number>): number {
  return Object.entries(statuses).reduce((n, [s, c]) => n + (s.startsWith("2") ? 0 : c), 0);
}

async function runWrk(target: Target, s: LoadSettings, seconds: number): Promise<LoadResult> {
  const script = await Deno.makeTempFile({ prefix: "torvus-bench-", suffix: ".lua" });
  try {
    await Deno.writeTextFile(script, wrkScript(target));
    const args = [`-t${s.threads}`, `-c${s.connections}`, `-d${seconds}s`];
    args.push(`--timeout`, `${s.timeoutS}s`, "-s", script, target.url);
    const child = new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).spawn();
    const untrack = track("wrk", child);
    const out = await child.output();
    untrack();
    const text = decoder.decode(out.stdout);
    const line = text.split("\n").find((l) => l.startsWith("BENCH_JSON "));
    if (!out.success || line === undefined) {
      throw new Error(`wrk failed (${out.code}): ${decoder.decode(out.stderr)}${text}`.trim());
    }
    const r = JSON.parse(line.slice("BENCH_JSON ".length)) as Record<string, number> & {
      statuses: Record<string, number>;
    };
    const durationS = (r.duration_us ?? 0) / 1e6;
    const ms = (us: number | undefined) => Math.round((us ?? 0) / 10) / 100;
    return {
      tool: "wrk",
      durationS,
      requests: r.requests ?? 0,
      rps: (r.requests ?? 0) / durationS,
      latencyMs: {
        mean: ms(r.mean),
        p50: ms(r.p50),
        p90: ms(r.p90),
        p99: ms(r.p99),
        max: ms(r.max),
      },
      statuses: r.statuses,
      non2xx: summarise(r.statuses),
      socketErrors: {
        connect: r.connect ?? 0,
        read: r.read ?? 0,
        write: r.write ?? 0,
        timeout: r.timeout ?? 0,
      },
    };
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}

/** The autocannon runner: a child Deno process that drives autocannon programmatically. */
const AUTOCANNON_RUNNER = `
const [spec, configPath] = Deno.args;
const { default: autocannon } = await import(spec);
const c = JSON.parse(await Deno.readTextFile(configPath));
const result = await autocannon({
  url: c.url, connections: c.connections, ...(c.threads > 1 ? { workers: c.threads } : {}),
  duration: c.seconds, timeout: c.timeoutS,
  requests: c.headers.map((headers) => ({ method: "GET", headers })),
});
console.log("BENCH_JSON " + JSON.stringify(result));
`;

async function runAutocannon(target: Target, s: LoadSettings, seconds: number) {
  const runner = await Deno.makeTempFile({ prefix: "torvus-bench-", suffix: ".ts" });
  const config = await Deno.makeTempFile({ prefix: "torvus-bench-", suffix: ".json" });
  try {
    await Deno.writeTextFile(runner, AUTOCANNON_RUNNER);
    const headers = target.headers.length > 0 ? target.headers : [{}];
    await Deno.writeTextFile(config, JSON.stringify({ ...s, url: target.url, seconds, headers }));
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", runner, AUTOCANNON, config],
      // Downloads autocannon on first use; trust the system's certificates as well.
      env: childEnv({ DENO_TLS_CA_STORE: Deno.env.get("DENO_TLS_CA_STORE") ?? "mozilla,system" }),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const untrack = track("autocannon", child);
    const out = await child.output();
    untrack();
    const text = decoder.decode(out.stdout);
    const line = text.split("\n").find((l) => l.startsWith("BENCH_JSON "));
    if (!out.success || line === undefined) {
      throw new Error(`autocannon failed: ${decoder.decode(out.stderr)}${text}`.trim());
    }
    const r = JSON.parse(line.slice("BENCH_JSON ".length));
    const statuses: Record<string, number> = {};
    for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) {
      statuses[code] = (v as { count: number }).count;
    }
    return {
      tool: "autocannon" as const,
      durationS: r.duration,
      requests: r.requests.total,
      rps: r.requests.total / r.duration,
      latencyMs: {
        mean: r.latency.mean,
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        max: r.latency.max,
      },
      statuses,
      non2xx: summarise(statuses),
      socketErrors: { connect: 0, read: r.errors - r.timeouts, write: 0, timeout: r.timeouts },
    };
  } finally {
    await Deno.remove(runner).catch(() => {});
    await Deno.remove(config).catch(() => {});
  }
}

/** One closed-loop run of `seconds`. */
export function runLoad(
  tool: Tool,
  target: Target,
  settings: LoadSettings,
  seconds: number,
): Promise<LoadResult> {
  return tool === "wrk"
    ? runWrk(target, settings, seconds)
    : runAutocannon(target, settings, seconds);
}
