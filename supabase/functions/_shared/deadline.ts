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
