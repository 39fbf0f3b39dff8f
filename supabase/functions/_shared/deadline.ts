/**
 * Bounding a wait: every call to a dependency (Redis, PostgreSQL, a health probe) races a timer,
 * so no request waits longer than its dependency's budget.
 *
 * @module
 */

/**
 * Races a promise against a deadline; after `ms` it rejects with `timeout()` (by default a
 * `TimeoutError` naming `what`). The loser may still settle later; it is marked handled so it
 * never becomes an unhandled rejection.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  timeout: () => Error = () => new DOMException(`${what} timed out after ${ms} ms`, "TimeoutError"),
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeout()), ms);
  });
  promise.catch(() => {});
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Settles as `work` does, or rejects with the signal's reason when `signal` aborts first; what
 * `work` yields after that goes to `cleanup` (a connection opened too late is closed, say).
 */
export function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal,
  cleanup?: (value: T) => void,
): Promise<T> {
  const late = () => void work.then((v) => cleanup?.(v), () => {});
  if (signal.aborted) {
    late();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      late();
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    work.then(
      (v) => (signal.removeEventListener("abort", abort), resolve(v)),
      (e) => (signal.removeEventListener("abort", abort), reject(e)),
    );
  });
}

/** Resolves after `ms` (the one pause of the tree: retries, backoff, tests). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
