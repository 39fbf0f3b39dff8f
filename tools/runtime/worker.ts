/**
 * Inside one function's isolate: the part of Supabase's Edge Runtime that user code sees.
 *
 * - `Deno.serve(handler)` does not listen: it hands the handler to the runtime, which calls it
 *   for every request routed to this isolate (the hosted runtime ignores `port` and `hostname`
 *   too, and gives the handler a meaningless `remoteAddr` of 0.0.0.0:9999).
 * - `EdgeRuntime.waitUntil(promise)` registers work that must finish before the isolate may be
 *   dropped early; it returns the promise.
 * - `beforeunload` (a `CustomEvent` with `detail.reason`: `early_drop`, `wall_clock`, `cpu`,
 *   `memory` or `termination`) is dispatched before the isolate ends. An early drop happens
 *   only once every request is answered and every `waitUntil` promise has settled; termination
 *   follows as soon as the listeners return, so async work they start does not finish.
 * - `drain` is dispatched when the runtime retires the isolate (no new requests will come).
 *
 * The supervisor (`supervisor.ts`) loads this module as a Worker named after the function's
 * entry point and talks to it with the messages of `protocol.ts`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { FromWorker, ToWorker, WireRequest } from "./protocol.ts";

type ServeHandler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

const scope = self as unknown as DedicatedWorkerGlobalScope & { EdgeRuntime?: unknown };
const post = (message: FromWorker, transfer: Transferable[] = []) =>
  scope.postMessage(message, transfer);

let handler: ServeHandler | undefined;
let inFlight = 0;
let pending = 0;
let retiring = false;
let dropped = false;

/** What the hosted runtime passes as the connection info: nothing real. */
const INFO: Deno.ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "0.0.0.0", port: 9999 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo;

function report(): void {
  post({ type: "load", inFlight, pending });
  if (retiring && !dropped && inFlight === 0 && pending === 0) earlyDrop();
}

function earlyDrop(): void {
  dropped = true;
  dispatch("beforeunload", "early_drop");
  post({ type: "dropped" });
}

function dispatch(type: "beforeunload" | "drain", reason?: string): void {
  try {
    scope.dispatchEvent(
      type === "beforeunload"
        ? new CustomEvent(type, { detail: { reason }, cancelable: true })
        : new Event(type),
    );
  } catch (error) {
    console.error(`${type} listener failed:`, error);
  }
}

scope.EdgeRuntime = {
  waitUntil<T>(promise: Promise<T>): Promise<T> {
    pending++;
    const settle = () => {
      pending--;
      report();
    };
    Promise.resolve(promise).then(settle, settle);
    return promise;
  },
};

function captureServe(...args: unknown[]): Deno.HttpServer {
  const [first, second] = args;
  const found = typeof first === "function"
    ? first
    : typeof second === "function"
    ? second
    : (first as { handler?: unknown } | undefined)?.handler;
  if (typeof found !== "function") throw new TypeError("Deno.serve needs a handler");
  handler = found as ServeHandler;
  const finished = new Promise<void>(() => {});
  return {
    finished,
    addr: INFO.remoteAddr,
    ref() {},
    unref() {},
    shutdown: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  } as unknown as Deno.HttpServer;
}
(Deno as { serve: unknown }).serve = captureServe;

/**
 * The request as the function's `Deno.serve` handler would receive it. Deno 2.1's `Request`
 * constructor looks methods up in a plain object, so "constructor" or "toString" become that
 * object's members; such a request is built as a POST (which may carry a body) and given its
 * real method as an own property, as a served request has it.
 */
function toRequest(wire: WireRequest): Request {
  // Likewise a GET or HEAD that carries a body, which a server accepts and the constructor not.
  const disguised = wire.method in Object.prototype ||
    (wire.body !== null && (wire.method === "GET" || wire.method === "HEAD"));
  const request = new Request(wire.url, {
    method: disguised ? "POST" : wire.method,
    headers: wire.headers,
    body: wire.body,
  });
  if (disguised) Object.defineProperty(request, "method", { value: wire.method });
  return request;
}

async function answer(id: number, wire: WireRequest): Promise<void> {
  inFlight++;
  try {
    if (!handler) throw new Error("the function never called Deno.serve");
    const request = toRequest(wire);
    const response = await handler(request, INFO);
    const body = response.body === null ? null : await response.arrayBuffer();
    post({
      type: "response",
      id,
      status: response.status,
      statusText: response.statusText,
      headers: [...response.headers],
      body,
    }, body ? [body] : []);
  } catch (error) {
    // The hosted runtime answers an uncaught exception with a 500 of its own.
    console.error("uncaught exception in the handler:", error);
    post({ type: "response", id, status: 500, statusText: "", headers: [], body: null });
  } finally {
    inFlight--;
    report();
  }
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "request":
      void answer(message.id, message.request);
      break;
    case "retire":
      retiring = true;
      dispatch("drain");
      report();
      break;
    case "beforeunload":
      dispatch("beforeunload", message.reason);
      break;
  }
};

// The isolate's heap, for the memory limit.
const sampler = setInterval(
  () => post({ type: "memory", heapUsed: Deno.memoryUsage().heapUsed }),
  500,
);
Deno.unrefTimer(sampler);

try {
  await import(scope.name);
  post({ type: "ready" });
} catch (error) {
  post({
    type: "failed",
    message: error instanceof Error ? error.stack ?? error.message : String(error),
  });
}
