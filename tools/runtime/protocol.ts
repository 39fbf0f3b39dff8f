/**
 * Messages between the local Edge Runtime's supervisor and a function's isolate (a Worker).
 * Bodies travel as transferred ArrayBuffers: the API's bodies are small, and a copy-free
 * transfer is cheaper than streaming them.
 *
 * @module
 */

/** A request as it crosses into the isolate. */
export interface WireRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
}

/** Supervisor to isolate. */
export type ToWorker =
  | { type: "request"; id: number; request: WireRequest }
  /** No new requests will come; drop early once idle. */
  | { type: "retire" }
  /** A limit is near: the isolate will be terminated soon. */
  | { type: "beforeunload"; reason: "wall_clock" | "cpu" | "memory" };

/** Isolate to supervisor. */
export type FromWorker =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | {
    type: "response";
    id: number;
    status: number;
    statusText: string;
    headers: [string, string][];
    body: ArrayBuffer | null;
  }
  /** Requests being answered and `waitUntil` promises not yet settled. */
  | { type: "load"; inFlight: number; pending: number }
  | { type: "memory"; heapUsed: number }
  /** `beforeunload` (early_drop) was dispatched: terminate now. */
  | { type: "dropped" };
