/**
 * The options of `deno task bench` (see tools/bench.ts).
 *
 * @module
 */
import type { Tool } from "./load.ts";

/** The CLI usage text. */
export const USAGE = `usage: deno task bench [options]
  --duration <s>       measured seconds per case (default 10)
  --warmup <s>         warm-up seconds before each case (default 2)
  --connections <n>    load-tool connections (default 50)
  --threads <n>        load-tool threads (default 1: the machine has few cores)
  --soak <s>           also run /api/v1/test for <s> seconds, sampling RSS each second
  --cases <ids>        closed-loop cases to run (default all): ${"baseline,v1-test,me,vaults,invalid-key,limited-key"}
  --skip <phases>      any of load,fixed,cold
  --rate <n>           fixed-rate requests per second (default 1000)
  --fixed-requests <n> fixed-rate requests measured per endpoint (default 5000)
  --cold-runs <n>      cold starts measured (default 5)
  --users <n>          users whose tokens /api/me rotates (default 200; 1,000 requests/h each)
  --tool <wrk|autocannon>  force the load tool
  --cpu-prof           run the dev server with --cpu-prof and print its top self-time functions
  --server-env K=V     extra environment of the dev server (repeatable), e.g. TORVUS_LOG_LEVEL=warn`;

/** The CLI options. */
export interface Options {
  duration: number;
  warmup: number;
  connections: number;
  threads: number;
  soak: number;
  cases: string[] | undefined;
  skip: string[];
  rate: number;
  fixedRequests: number;
  coldRuns: number;
  users: number;
  tool: Tool | undefined;
  cpuProf: boolean;
  serverEnv: Record<string, string>;
}

/** The closed-loop cases, in the order they run. */
export const CASE_IDS = ["baseline", "v1-test", "me", "vaults", "invalid-key", "limited-key"];

/** Parses the CLI arguments; throws with a message on a bad one. */
export function parseArgs(args: string[]): Options {
  const o: Options = {
    duration: 10,
    warmup: 2,
    connections: 50,
    threads: 1,
    soak: 0,
    cases: undefined,
    skip: [],
    rate: 1000,
    fixedRequests: 5000,
    coldRuns: 5,
    users: 200,
    tool: undefined,
    cpuProf: false,
    serverEnv: {},
  };
  const num = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer ≥ ${min}`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const [flag = "", inline] = args[i]!.split(/=(.*)/s, 2);
    const value = () => inline ?? args[++i];
    switch (flag) {
      case "--duration":
        o.duration = num(flag, value(), 1);
        break;
      case "--warmup":
        o.warmup = num(flag, value(), 0);
        break;
      case "--connections":
        o.connections = num(flag, value(), 1);
        break;
      case "--threads":
        o.threads = num(flag, value(), 1);
        break;
      case "--soak":
        o.soak = num(flag, value(), 0);
        break;
      case "--cases":
        o.cases = (value() ?? "").split(",");
        break;
      case "--skip":
        o.skip = (value() ?? "").split(",");
        break;
      case "--rate":
        o.rate = num(flag, value(), 1);
        break;
      case "--fixed-requests":
        o.fixedRequests = num(flag, value(), 1);
        break;
      case "--cold-runs":
        o.coldRuns = num(flag, value(), 1);
        break;
      case "--users":
        o.users = num(flag, value(), 1);
        break;
      case "--tool": {
        const t = value();
        if (t !== "wrk" && t !== "autocannon") throw new Error("--tool is wrk or autocannon");
        o.tool = t;
        break;
      }
      case "--server-env": {
        const [k, v] = (value() ?? "").split(/=(.*)/s, 2);
        if (!k || v === undefined) throw new Error("--server-env needs KEY=VALUE");
        o.serverEnv[k] = v;
        break;
      }
      case "--cpu-prof":
        o.cpuProf = true;
        break;
      case "-h":
      case "--help":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown argument "${args[i]}"\n${USAGE}`);
    }
  }
  const unknown = (o.cases ?? []).filter((c) => !CASE_IDS.includes(c));
  if (unknown.length > 0) throw new Error(`unknown case(s): ${unknown.join(", ")}`);
  return o;
}
