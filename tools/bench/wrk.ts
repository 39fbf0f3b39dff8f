/**
 * The one wrk driver, for `deno task bench` and the load test (tests/_support/load.ts).
 *
 * A load with one header set and no POSTs runs as wrk's static request (no Lua per request);
 * header sets used in turn and every n-th request a POST are pre-formatted in `init` and picked
 * by `request`. Counting statuses (and 200s by `X-RateLimit-Reset`, the limiter's window) needs
 * wrk's `response` callback, which costs wrk CPU, so only loads that ask for it get one.
 *
 * @module
 */
import { run } from "../stack/process.ts";

/** What one wrk process sends. */
export interface WrkLoad {
  url: string;
  connections: number;
  seconds: number;
  /** Headers of every request. */
  headers?: Record<string, string>;
  /** Header sets used in turn, on top of `headers`. */
  rotate?: ReadonlyArray<Record<string, string>>;
  /** Every `every`-th request is a POST of `body` (JSON) to `path`. */
  post?: { every: number; path: string; body: string };
  /** Count statuses, and 200s by their X-RateLimit-Reset. */
  countStatuses?: boolean;
  /** wrk's socket timeout, seconds (default 2). */
  timeoutS?: number;
}

/** What wrk measured. Latencies in milliseconds. */
export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  latencyMs: { p50: number; p99: number; max: number };
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** Only with `countStatuses`. */
  statuses: Record<string, number>;
  /** 200s per X-RateLimit-Reset value ("none" without one); only with `countStatuses`. */
  windows: Record<string, number>;
}

const lua = (s: string): string => {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error("wrk scripts take printable ASCII only");
  return JSON.stringify(s);
};
const table = (h: Record<string, string>) =>
  `{${Object.entries(h).map(([k, v]) => `[${lua(k)}]=${lua(v)}`).join(",")}}`;

/** The Lua script of a load. */
export function wrkScript(load: WrkLoad): string {
  const url = new URL(load.url);
  const sets = load.rotate ?? [];
  const dynamic = sets.length > 1 || load.post !== undefined;
  const lines = [`for k, v in pairs(${table({ ...load.headers, ...sets[0] })}) do`];
  lines.push("  wrk.headers[k] = v", "end");
  if (dynamic) {
    const post = load.post ?? { every: 0, path: "", body: "" };
    lines.push(`
local sets = {${sets.map(table).join(",\n")}}
local gets, posts, n, i = {}, {}, 0, 0
function init(args)
  for _, set in ipairs(sets) do
    local h = {}
    for k, v in pairs(wrk.headers) do h[k] = v end
    for k, v in pairs(set) do h[k] = v end
    n = n + 1
    gets[n] = wrk.format("GET", ${lua(url.pathname + url.search)}, h)
    h["Content-Type"] = "application/json"
    posts[n] = wrk.format("POST", ${lua(post.path)}, h, ${lua(post.body)})
  end
end
function request()
  i = i + 1
  if ${post.every} > 0 and i % ${post.every} == 0 then return posts[i % n + 1] end
  return gets[i % n + 1]
end`);
  }
  if (load.countStatuses) {
    lines.push(`
counts, windows = {}, {}
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status == 200 then
    local reset = headers["x-ratelimit-reset"] or headers["X-RateLimit-Reset"] or "none"
    windows[reset] = (windows[reset] or 0) + 1
  end
end`);
  }
  lines.push(`
local threads = {}
function setup(thread) table.insert(threads, thread) end
local function encode(name)
  local all, parts = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get(name) or {}) do all[k] = (all[k] or 0) + v end
  end
  for k, v in pairs(all) do table.insert(parts, string.format('"%s":%d', k, v)) end
  return "{" .. table.concat(parts, ",") .. "}"
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK-RESULT {"requests":%d,"us":%d,"p50":%d,"p99":%d,"max":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"statuses":%s,"windows":%s}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, encode("counts"), encode("windows")))
end`);
  return lines.join("\n") + "\n";
}

/** Runs wrk (one thread) for `load.seconds`. */
export async function runWrk(load: WrkLoad): Promise<WrkResult> {
  const dir = await Deno.makeTempDir({ prefix: "torvus-wrk-" });
  try {
    // The script holds credentials: readable by us only, removed with the directory.
    const script = `${dir}/load.lua`;
    await Deno.writeTextFile(script, wrkScript(load), { mode: 0o600 });
    const args = ["-t1", `-c${load.connections}`, `-d${load.seconds}s`];
    args.push("--timeout", `${load.timeoutS ?? 2}s`, "-s", script, load.url);
    const out = await run("wrk", args, { timeoutMs: (load.seconds + 30) * 1000 });
    const line = out.stdout.split("\n").find((l) => l.startsWith("WRK-RESULT "));
    if (!out.success || line === undefined) {
      throw new Error(`wrk failed on ${load.url} (exit ${out.code}): ${out.stderr}${out.stdout}`);
    }
    const r = JSON.parse(line.slice("WRK-RESULT ".length));
    const seconds = r.us / 1e6;
    return {
      requests: r.requests,
      seconds,
      rps: r.requests / seconds,
      latencyMs: { p50: r.p50 / 1000, p99: r.p99 / 1000, max: r.max / 1000 },
      socketErrors: { connect: r.connect, read: r.read, write: r.write, timeout: r.timeout },
      statuses: r.statuses,
      windows: r.windows,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
