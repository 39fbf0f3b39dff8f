/**
 * The request log's row format (migration `..._request_log_partitioned.sql`): what a request
 * looked like (method, route, code, mode, user agent, third-party app) is a "shape" stored once in
 * `api_request_shapes`, and a row of `api_request_log` names its shape, its key as a uuid and
 * its user only when no key was used. About 100 bytes a request, indexes included, where the
 * text columns cost 240 (README "Capacity").
 *
 * This module turns a batch of records into those parameters; the database hashes each distinct
 * shape (`public.request_shape_id`), so rows written here and rows migrated by SQL name the same
 * shape rows.
 *
 * @module
 */
import { redact } from "./log.ts";

/** What the sink knows of a request (see `AuditRecord` in audit.ts). */
export interface LoggedRequest {
  requestId: string;
  keyId?: string | undefined;
  userId?: string | undefined;
  mode?: "live" | "test" | undefined;
  method: string;
  path: string;
  status: number;
  code?: string | undefined;
  latencyMs: number;
  ip?: string | undefined;
  userAgent?: string | undefined;
  /** The third-party app whose token made the request (its `client_id`). */
  clientId?: string | undefined;
  /** That app's grant, whose `last_used_at` the write moves. */
  grantId?: string | undefined;
  at: Date;
}

/** One row as the write statement unpacks it; `shape` indexes the batch's shapes. */
export interface LogRow {
  created_at: string;
  request_id: string;
  shape: number;
  /** The key's id as text: the hourly aggregates are kept per key id. */
  key_id: string | null;
  /** The same key as the uuid of its 128 bits: what the log stores. */
  key: string | null;
  user_id: string | null;
  mode: string | null;
  status: number;
  latency_ms: number;
  ip: string | null;
  /** The app's client id: its hourly usage is kept per client id. */
  client_id: string | null;
}

/** One distinct shape of a batch; `n` is the index rows refer to. */
export interface LogShape {
  n: number;
  method: string;
  route: string;
  code: string | null;
  mode: string | null;
  user_agent: string | null;
  client_id: string | null;
}

const MAX_USER_AGENT = 256;
const MAX_ROUTE = 256;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Path segments that are ids: a ULID, a UUID, a number (as `public.request_route` in SQL). */
const ID_SEGMENT = new RegExp(
  "/([0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-" +
    "[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9]+)(?=/|$)",
  "g",
);

/** A path as a route: every id segment becomes `{id}`, so a client's calls share few shapes. */
export function routeOf(path: string): string {
  return path.replace(ID_SEGMENT, "/{id}").slice(0, MAX_ROUTE);
}

/**
 * A ULID (26 characters of Crockford's base32) as the uuid of the same 128 bits, as
 * `public.key_uuid` computes it; undefined for anything else, so a malformed id can never fail
 * a batch.
 */
export function ulidToUuid(ulid: string): string | undefined {
  if (!/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i.test(ulid)) return undefined;
  let value = 0n;
  for (const ch of ulid.toUpperCase()) value = (value << 5n) | BigInt(CROCKFORD.indexOf(ch));
  const hex = value.toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/** The parameters of one write: rows and the distinct shapes they use. */
export function logRows(records: readonly LoggedRequest[]): { rows: LogRow[]; shapes: LogShape[] } {
  const shapes: LogShape[] = [];
  const index = new Map<string, number>();
  const rows = records.map((r): LogRow => {
    // Clients have put keys in their User-Agent; the log must never keep one, nor a piece of
    // one: redacted whole, then cut.
    const ua = r.userAgent ? redact(r.userAgent).slice(0, MAX_USER_AGENT) : null;
    const shape: LogShape = {
      n: shapes.length,
      method: r.method.slice(0, 16),
      route: routeOf(r.path),
      code: r.code ?? null,
      mode: r.mode ?? null,
      user_agent: ua,
      client_id: r.clientId ?? null,
    };
    const id =
      `${shape.method}\n${shape.route}\n${shape.code}\n${shape.mode}\n${ua}\n${shape.client_id}`;
    let n = index.get(id);
    if (n === undefined) {
      n = shapes.push(shape) - 1;
      index.set(id, n);
    }
    const key = r.keyId === undefined ? undefined : ulidToUuid(r.keyId);
    return {
      created_at: r.at.toISOString(),
      request_id: r.requestId,
      shape: n,
      key_id: r.keyId ?? null,
      key: key ?? null,
      user_id: r.userId ?? null,
      mode: r.mode ?? null,
      status: r.status,
      latency_ms: Math.round(r.latencyMs * 1000) / 1000,
      ip: r.ip ?? null,
      client_id: r.clientId ?? null,
    };
  });
  return { rows, shapes };
}
