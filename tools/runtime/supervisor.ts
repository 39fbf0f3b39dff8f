/**
 * A local stand-in for Supabase's Edge Runtime (supabase/edge-runtime, `per_worker` policy):
 * each function runs in isolates of its own, Workers loading the function's `index.ts`, and
 * nothing is shared between functions but the process.
 *
 * What it does as the hosted runtime does:
 * - one isolate per function serves concurrent requests and keeps its module state between them;
 *   it is created on the first request (a cold start) and replaced when it retires;
 * - limits, accumulated over the isolate's life: wall clock, CPU time (the isolate thread's CPU
 *   clock) and heap. Half the wall clock, the CPU soft limit or half the memory limit retire the
 *   isolate: it gets no new requests, `drain` is dispatched, and once every request is answered
 *   and every `EdgeRuntime.waitUntil` promise has settled it is dropped early (`beforeunload`
 *   with reason `early_drop`, then termination as soon as the listeners return). At 90 % of a
 *   hard limit `beforeunload` announces it (`wall_clock`, `cpu`, `memory`); at 100 % the isolate
 *   is terminated whatever it was doing, pending `waitUntil` work included;
 * - a function that fails to load answers 503 `BOOT_ERROR`; requests cut off by a hard limit
 *   answer 546 `WORKER_LIMIT`.
 *
 * - permissions: network, environment and reading; writing only under /tmp; no subprocess, no FFI.
 *
 * What it does not: give each function only the project's secrets (an isolate sees the process's
 * environment), the hosted runtime's memory allocator limit (the heap is sampled instead), and
 * more than one isolate per function at a time outside of retirement.
 *
 * @module
 */
import type { FromWorker, ToWorker, WireRequest } from "./protocol.ts";
import { readUpTo } from "../../supabase/functions/_shared/http/input.ts";

/** Limits of one isolate. */
export interface RuntimeLimits {
  /** Wall-clock life of an isolate (hosted: 150 s on Free, 400 s on paid plans). */
  wallClockMs: number;
  /** CPU time after which an isolate retires. */
  cpuSoftMs: number;
  /** CPU time after which it is terminated. */
  cpuHardMs: number;
  /** Heap limit (hosted: 256 MB). */
  memoryMb: number;
}

/** The hosted defaults (the Supabase CLI's local runtime uses the same). */
export const DEFAULT_LIMITS: RuntimeLimits = {
  wallClockMs: 400_000,
  cpuSoftMs: 1_000,
  cpuHardMs: 2_000,
  memoryMb: 256,
};

/** Why an isolate ended. */
export type EndReason =
  | "early_drop"
  | "wall_clock"
  | "cpu"
  | "memory"
  | "boot_error"
  | "uncaught_exception"
  | "shutdown";

/** Counters of one function. */
export interface FunctionStats {
  isolatesStarted: number;
  isolatesEnded: Partial<Record<EndReason, number>>;
  requests: number;
  /** The live isolates: age, CPU, heap and load. */
  live: Array<{
    id: number;
    state: IsolateState;
    ageMs: number;
    cpuMs: number;
    heapMb: number;
    inFlight: number;
    pending: number;
  }>;
}

type IsolateState = "starting" | "active" | "retiring" | "ended";
type Log = (
  level: "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

const RUNTIME_HEADERS = { "content-type": "application/json" };
/** Largest request body the runtime passes to an isolate; larger ones get 413 here. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
const MONITOR_MS = 50;
const BEFOREUNLOAD_RATIO = 0.9;

/**
 * What an isolate may do, as on the hosted runtime: network, environment, reading files, writing
 * only to /tmp; no subprocesses, no FFI. (The dev server itself needs more: it reads /proc.)
 */
const ISOLATE_PERMISSIONS: Deno.PermissionOptionsObject = {
  net: true,
  env: true,
  read: true,
  write: ["/tmp"],
  sys: true,
  run: false,
  ffi: false,
};

/** This process's threads (Linux; empty elsewhere, where CPU limits are not enforced). */
const TASKS = `/proc/${Deno.pid}/task`;
function threads(): Set<string> {
  try {
    return new Set([...Deno.readDirSync(TASKS)].map((e) => e.name));
  } catch {
    return new Set();
  }
}
function threadName(tid: string): string {
  try {
    return Deno.readTextFileSync(`${TASKS}/${tid}/comm`).trim();
  } catch {
    return "";
  }
}

let nextIsolateId = 1;

class Isolate {
  readonly id = nextIsolateId++;
  readonly worker: Worker;
  readonly started = performance.now();
  readonly ready: Promise<void>;
  state: IsolateState = "starting";
  readonly tid: string | undefined;
  cpuMs = 0;
  heapUsed = 0;
  inFlight = 0;
  pending = 0;
  announced = false;
  bootError: string | undefined;
  readonly #waiting = new Map<number, (r: Response) => void>();
  #nextId = 1;
  #ended?: (reason: EndReason) => void;

  constructor(entry: string, onEnd: (isolate: Isolate, reason: EndReason) => void) {
    // The isolate's thread is the one `new Worker` creates, named "worker-<n>" by Deno.
    const before = threads();
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), {
      type: "module",
      name: entry,
      deno: { permissions: ISOLATE_PERMISSIONS },
    });
    this.tid = [...threads()].find((t) => !before.has(t) && threadName(t).startsWith("worker-"));
    this.#ended = (reason) => onEnd(this, reason);
    let settle!: () => void;
    this.ready = new Promise<void>((resolve) => (settle = resolve));
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const m = event.data;
      switch (m.type) {
        case "ready":
          if (this.state === "starting") this.state = "active";
          settle();
          break;
        case "failed":
          this.bootError = m.message;
          settle();
          this.end("boot_error");
          break;
        case "response": {
          const resolve = this.#waiting.get(m.id);
          this.#waiting.delete(m.id);
          const nullBody = m.status === 204 || m.status === 304 || m.body === null;
          resolve?.(
            new Response(nullBody ? null : m.body, {
              status: m.status,
              statusText: m.statusText,
              headers: m.headers,
            }),
          );
          break;
        }
        case "load":
          this.inFlight = m.inFlight;
          this.pending = m.pending;
          break;
        case "memory":
          this.heapUsed = m.heapUsed;
          break;
        case "dropped":
          this.end("early_drop");
          break;
      }
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.bootError ??= event.message;
      settle();
      this.end(this.state === "starting" ? "boot_error" : "uncaught_exception");
    };
  }

  send(message: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  /** Hands a request to the isolate; resolves with its answer. */
  request(request: WireRequest): Promise<Response> {
    const id = this.#nextId++;
    const answer = new Promise<Response>((resolve) => this.#waiting.set(id, resolve));
    this.send({ type: "request", id, request }, request.body ? [request.body] : []);
    return answer;
  }

  /** No new requests; drop early once idle. */
  retire(): void {
    if (this.state !== "active" && this.state !== "starting") return;
    this.state = "retiring";
    this.send({ type: "retire" });
  }

  /** Terminates the isolate; requests still waiting get 546. */
  end(reason: EndReason): void {
    if (this.state === "ended") return;
    this.state = "ended";
    this.worker.terminate();
    for (const resolve of this.#waiting.values()) {
      resolve(
        runtimeError(546, "WORKER_LIMIT", `The function's isolate was terminated (${reason})`),
      );
    }
    this.#waiting.clear();
    this.#ended?.(reason);
  }

  /** The thread's CPU time so far, in ms (0 where the kernel does not say). */
  sampleCpu(): number {
    if (this.tid === undefined) return this.cpuMs;
    try {
      const schedstat = Deno.readTextFileSync(`${TASKS}/${this.tid}/schedstat`);
      this.cpuMs = Number(schedstat.split(" ")[0]) / 1e6;
    } catch {
      // the thread is gone
    }
    return this.cpuMs;
  }
}

/**
 * A request's body for {@link EdgeRuntime.fetch}, read up to {@link MAX_BODY_BYTES}; undefined
 * when it is larger (the caller answers 413 without reading the rest).
 */
export async function readBody(req: Request): Promise<ArrayBuffer | null | undefined> {
  if (req.body === null) return null;
  if (Number(req.headers.get("content-length") ?? "0") > MAX_BODY_BYTES) return undefined;
  return (await readUpTo(req.body, MAX_BODY_BYTES))?.buffer as ArrayBuffer | undefined;
}

/** An answer of the runtime itself (not of a function). */
export function runtimeError(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ code, message }), { status, headers: RUNTIME_HEADERS });
}

/** One function: its current isolate and the ones retiring. */
class FunctionHost {
  current: Isolate | undefined;
  readonly retiring = new Set<Isolate>();
  readonly stats: Omit<FunctionStats, "live"> = {
    isolatesStarted: 0,
    isolatesEnded: {},
    requests: 0,
  };

  constructor(readonly name: string, readonly entry: string, readonly log: Log) {}

  isolate(): Isolate {
    if (this.current && (this.current.state === "active" || this.current.state === "starting")) {
      return this.current;
    }
    const isolate = new Isolate(this.entry, (i, reason) => this.ended(i, reason));
    this.current = isolate;
    this.stats.isolatesStarted++;
    return isolate;
  }

  ended(isolate: Isolate, reason: EndReason): void {
    this.retiring.delete(isolate);
    if (this.current === isolate) this.current = undefined;
    this.stats.isolatesEnded[reason] = (this.stats.isolatesEnded[reason] ?? 0) + 1;
    const fields = {
      function: this.name,
      isolate: isolate.id,
      reason,
      age_ms: Math.round(performance.now() - isolate.started),
      cpu_ms: Math.round(isolate.cpuMs),
    };
    if (reason === "boot_error") {
      this.log("error", "function failed to boot", { ...fields, error: isolate.bootError });
    } else {
      this.log(
        reason === "early_drop" || reason === "shutdown" ? "info" : "warn",
        "isolate ended",
        fields,
      );
    }
  }

  retire(isolate: Isolate, why: string): void {
    if (isolate.state !== "active" && isolate.state !== "starting") return;
    isolate.retire();
    this.retiring.add(isolate);
    if (this.current === isolate) this.current = undefined;
    this.log("info", "isolate retired", { function: this.name, isolate: isolate.id, why });
  }

  live(): Isolate[] {
    return [...(this.current ? [this.current] : []), ...this.retiring];
  }
}

/** The runtime: every function's isolates, their limits and the monitor that enforces them. */
export class EdgeRuntime {
  readonly #hosts = new Map<string, FunctionHost>();
  readonly #monitor: ReturnType<typeof setInterval>;

  /**
   * @param functions function name -> URL of its `index.ts`
   */
  constructor(
    functions: Record<string, URL>,
    readonly limits: RuntimeLimits = DEFAULT_LIMITS,
    log: Log = () => {},
  ) {
    for (const [name, entry] of Object.entries(functions)) {
      this.#hosts.set(name, new FunctionHost(name, entry.href, log));
    }
    this.#monitor = setInterval(() => this.#enforce(), MONITOR_MS);
    Deno.unrefTimer(this.#monitor);
  }

  /** Whether a function of this name exists. */
  has(name: string): boolean {
    return this.#hosts.has(name);
  }

  /**
   * Serves a request with the function's current isolate, starting one if needed. The request
   * arrives as parts, not a `Request`: Deno 2.1's `Request` constructor turns a method named like
   * an `Object.prototype` member ("constructor") into that member, and the method must reach
   * the function as the client sent it.
   */
  async fetch(name: string, request: WireRequest): Promise<Response> {
    const host = this.#hosts.get(name);
    if (!host) return runtimeError(404, "NOT_FOUND", "Requested function was not found");
    if (request.body !== null && request.body.byteLength > MAX_BODY_BYTES) {
      return runtimeError(413, "PAYLOAD_TOO_LARGE", "Request body is too large");
    }
    host.stats.requests++;
    const isolate = host.isolate();
    await isolate.ready;
    if (isolate.state === "ended") {
      return runtimeError(503, "BOOT_ERROR", "Function failed to start (please check logs)");
    }
    return await isolate.request(request);
  }

  /**
   * Retires the function's current isolate as if the platform requested its termination: it
   * takes no new requests and is dropped early once idle. Resolves when every isolate of the
   * function (one a limit retired already included) has ended; false when none was live.
   */
  async drop(name: string): Promise<boolean> {
    const host = this.#hosts.get(name);
    const isolates = host?.live() ?? [];
    if (!host || isolates.length === 0) return false;
    if (host.current) host.retire(host.current, "termination requested");
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (isolates.every((i) => i.state === "ended")) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    return true;
  }

  /** Per-function counters and live isolates. */
  stats(): Record<string, FunctionStats> {
    const out: Record<string, FunctionStats> = {};
    for (const [name, host] of this.#hosts) {
      out[name] = {
        ...structuredClone(host.stats),
        live: host.live().map((i) => ({
          id: i.id,
          state: i.state,
          ageMs: Math.round(performance.now() - i.started),
          cpuMs: Math.round(i.sampleCpu()),
          heapMb: Math.round(i.heapUsed / 1048576),
          inFlight: i.inFlight,
          pending: i.pending,
        })),
      };
    }
    return out;
  }

  /**
   * Stops: every isolate is retired and dropped early once idle (its `waitUntil` work done),
   * or terminated when `graceMs` runs out.
   */
  async shutdown(graceMs = 5_000): Promise<void> {
    clearInterval(this.#monitor);
    const all = [...this.#hosts.values()].flatMap((h) => {
      const live = h.live();
      for (const i of live) h.retire(i, "shutdown");
      return live;
    });
    const deadline = performance.now() + graceMs;
    while (all.some((i) => i.state !== "ended") && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const i of all) i.end("shutdown");
  }

  #enforce(): void {
    const { wallClockMs, cpuSoftMs, cpuHardMs, memoryMb } = this.limits;
    const heapLimit = memoryMb * 1048576;
    for (const host of this.#hosts.values()) {
      for (const isolate of host.live()) {
        if (isolate.state === "starting") continue;
        const age = performance.now() - isolate.started;
        const cpu = isolate.sampleCpu();
        const heap = isolate.heapUsed;
        // Hard limits: terminated, whatever it was doing.
        const hard = age >= wallClockMs
          ? "wall_clock"
          : cpu >= cpuHardMs
          ? "cpu"
          : heap >= heapLimit
          ? "memory"
          : undefined;
        if (hard) {
          isolate.end(hard);
          continue;
        }
        const near = age >= wallClockMs * BEFOREUNLOAD_RATIO
          ? "wall_clock"
          : cpu >= cpuHardMs * BEFOREUNLOAD_RATIO
          ? "cpu"
          : heap >= heapLimit * BEFOREUNLOAD_RATIO
          ? "memory"
          : undefined;
        if (near && !isolate.announced) {
          isolate.announced = true;
          isolate.send({ type: "beforeunload", reason: near });
        }
        if (age >= wallClockMs / 2) host.retire(isolate, "half the wall clock");
        else if (cpu >= cpuSoftMs) host.retire(isolate, "CPU soft limit");
        else if (heap >= heapLimit / 2) host.retire(isolate, "half the memory limit");
      }
    }
  }
}
