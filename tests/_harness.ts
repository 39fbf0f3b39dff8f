/**
 * End-to-end test harness: talks to the dev server that `scripts/test` starts (real PostgreSQL,
 * real Redis through the bridge, real HTTP) and makes users, tokens and keys with the admin
 * operations, in-process.
 *
 * Each test acts from its own client address (`X-Forwarded-For`, which the test profile's dev
 * server passes through), so per-IP limits of one test never touch another's.
 *
 * @module
 */
import assert from "node:assert/strict";

export {
  closeDb,
  closeDbLast,
  db,
  newKey,
  newTier,
  newUser,
  type TestKey,
  type TestUser,
  uniqueEmail,
} from "./_fixtures.ts";
import { newUser } from "./_fixtures.ts";
import { delay } from "../supabase/functions/_shared/deadline.ts";

/** The dev server under test. */
export const BASE_URL = Deno.env.get("TORVUS_TEST_BASE_URL") ?? "http://127.0.0.1:29331";

/**
 * A client address no other test, file or run uses: a random one in 2001:db8::/32, the IPv6
 * documentation range (per-IP windows live in Redis for an hour, across runs).
 */
export function uniqueIp(): string {
  const words = [...crypto.getRandomValues(new Uint16Array(6))].map((w) => w.toString(16));
  return `2001:db8:${words.join(":")}`;
}

/** A response with its body read (so no connection is left open). */
export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Options of {@link api}: fetch options plus the client address to act from. */
export interface ApiInit extends RequestInit {
  ip?: string;
  /** A client of its own, for a request that must not reuse pooled connections. */
  client?: Deno.HttpClient;
}

/** Calls the API and reads the whole answer. */
export async function api(path: string, init: ApiInit = {}): Promise<ApiResponse> {
  const headers = new Headers(init.headers);
  if (init.ip !== undefined && !headers.has("x-forwarded-for")) {
    headers.set("x-forwarded-for", init.ip);
  }
  const response = await fetch(new URL(path, BASE_URL), { ...init, headers });
  const text = await response.text();
  let body: unknown = undefined;
  if (text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  return { status: response.status, headers: response.headers, text, body };
}

/**
 * A new signed-in user acting from a client address of their own: the user, and `as`, which
 * makes `init` one of their requests (their bearer token, a JSON body, that address).
 */
export async function signedIn() {
  const user = await newUser();
  const ip = uniqueIp();
  const as = (init: RequestInit = {}): ApiInit => ({
    ...init,
    ip,
    headers: {
      Authorization: `Bearer ${user.token}`,
      "Content-Type": "application/json",
      ...init.headers,
    },
  });
  return { user, as };
}

/** Creates a vault with the API key `key` (`POST /api/v1/vaults`, from an address of its own). */
export async function createVaultByKey(
  key: string,
  vault: Record<string, unknown>,
): Promise<ApiResponse> {
  const created = await api("/api/v1/vaults", {
    method: "POST",
    headers: { "X-API-Key": key, "Content-Type": "application/json" },
    body: JSON.stringify(vault),
    ip: uniqueIp(),
  });
  assert.equal(created.status, 201, created.text);
  return created;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Asserts the headers every response carries: request id, response time, CORS. */
export function assertCommonHeaders(r: ApiResponse): void {
  assert.match(r.headers.get("x-request-id") ?? "", UUID, "X-Request-ID is a UUID");
  assert.match(r.headers.get("x-response-time") ?? "", /^\d+(\.\d+)?$/, "X-Response-Time in ms");
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  const exposed = r.headers.get("access-control-expose-headers") ?? "";
  for (const h of ["X-Request-ID", "X-Response-Time", "X-RateLimit-Limit", "Retry-After"]) {
    assert.ok(exposed.includes(h), `Access-Control-Expose-Headers lists ${h}`);
  }
}

/** Asserts the three X-RateLimit headers are present and coherent. */
export function assertRateLimitHeaders(r: ApiResponse, limit?: number): void {
  const l = Number(r.headers.get("x-ratelimit-limit"));
  const rem = Number(r.headers.get("x-ratelimit-remaining"));
  const reset = Number(r.headers.get("x-ratelimit-reset"));
  assert.ok(Number.isInteger(l) && l > 0, "X-RateLimit-Limit is a positive integer");
  if (limit !== undefined) assert.equal(l, limit);
  assert.ok(Number.isInteger(rem) && rem >= 0 && rem <= l, "X-RateLimit-Remaining in [0, limit]");
  const now = Date.now() / 1000;
  assert.ok(reset >= Math.floor(now) && reset <= now + 86_400 + 1, "X-RateLimit-Reset is epoch s");
}

/** Asserts a catalogued error: status, code, request id equal to the header's. */
export function assertError(r: ApiResponse, status: number, code: string): void {
  assert.equal(r.status, status, `status of ${code}: ${r.text}`);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.equal(r.body?.code, code, r.text);
  assert.equal(r.body?.request_id, r.headers.get("x-request-id"));
  assertCommonHeaders(r);
}

/** Deno.test for end-to-end tests: fetch keep-alive sockets outlive a test by design. */
export function e2e(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/** Asserts a 400 VALIDATION_FAILED whose details name `path`. */
export function assertInvalid(r: ApiResponse, path: string): void {
  assertError(r, 400, "VALIDATION_FAILED");
  const paths = (r.body.details as { path: string }[]).map((d) => d.path);
  assert.ok(paths.includes(path), `details name ${path}: ${r.text}`);
}

/**
 * Paging every list refuses, as `[query, the field its 400 names]`: the list query's `limit`
 * (1 to 100, once) and `offset` (0 to 1,000,000), shared by all lists (`listQuery`).
 */
export const BAD_PAGE_QUERIES: ReadonlyArray<readonly [string, string]> = [
  ...["0", "101", "abc", "1.5", "", "1&limit=2"].map((v) => [`?limit=${v}`, "limit"] as const),
  ...["-1", "x", "1000001"].map((v) => [`?offset=${v}`, "offset"] as const),
];

/**
 * Asserts that a list answers each of {@link BAD_PAGE_QUERIES} and of its own `filters`
 * (`[query, the field its 400 names]`) with a 400 that names the field.
 */
export async function assertListRefuses(
  list: (query: string) => Promise<ApiResponse>,
  filters: ReadonlyArray<readonly [string, string]>,
): Promise<void> {
  for (const [query, field] of [...BAD_PAGE_QUERIES, ...filters]) {
    assertInvalid(await list(query), field);
  }
}

/**
 * Waits, when a rate-limit window of `windowSeconds` ends within `marginSeconds`, until just after
 * it ends, so that a short run of requests that counts exactly never straddles a boundary. The
 * limiter's windows are aligned to the epoch and slide: across a boundary the previous window's
 * count is weighted in (and floored), and exact arithmetic no longer holds.
 */
export async function awayFromWindowEnd(windowSeconds: number, marginSeconds: number) {
  const windowMs = windowSeconds * 1000;
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginSeconds * 1000) await delay(left + 100);
}
