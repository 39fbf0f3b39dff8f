/**
 * Building blocks shared by the response schemas: identifiers, timestamps and pagination.
 *
 * The response schemas are the single source of each body's shape: handlers type what they
 * answer against them (see `respond.ts`) and the OpenAPI document is generated from them. They
 * are never run on the request path; only the test suite validates real answers against the
 * document.
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";

/**
 * The body of an update operation, registered as component `id`: the fields it may change, each
 * optional, of which it must name at least one (else a 400 saying `message`).
 */
export function updateBody<F extends z.ZodRawShape>(
  fields: F,
  id: string,
  message = "at least one field is required",
) {
  return z.strictObject(fields).refine((v) => Object.keys(v).length > 0, { message })
    .register(components, { id });
}

/** The columns an update body sets: the fields it names (one left out is not changed). */
export function changesOf(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (v !== undefined) changes[k] = v;
  return changes;
}

/** A ULID as the database generates it (Crockford base32, upper case). */
export const Ulid = z.string().length(26).regex(/^[0-9A-HJKMNP-TV-Z]{26}$/).meta({
  description: "A ULID (26 characters, Crockford base32)",
  examples: ["01JBG7XKQM9F3Y8W2Z5N4P1R6T"],
});

/** A UUID (users, vaults, request ids). */
export const Uuid = z.uuid().length(36);

/** The request id of the answer, equal to its `X-Request-ID` header. */
export const RequestId = z.uuid().length(36).meta({
  description: "The request's id, also sent as the X-Request-ID header; quote it to support",
  examples: ["a1b2c3d4-e5f6-4890-abcd-ef1234567890"],
});

/** An instant in ISO 8601, UTC (`Date.prototype.toISOString`: always 24 characters). */
export const Timestamp = z.iso.datetime().length(24).meta({
  examples: ["2025-10-17T14:30:00.000Z"],
});

/**
 * Longest ISO 8601 instant a client may send: `2026-11-30T12:00:00.123456789+05:30` is 35
 * characters (nanoseconds and an offset); zod's pattern alone would take any number of digits.
 */
export const MAX_INSTANT_LENGTH = 35;

/** Most items one page of a list holds (`limit`). */
export const MAX_PAGE_ITEMS = 100;
/** Largest `offset` a list query takes. */
export const MAX_OFFSET = 1_000_000;

/** Where a page of a list starts and how many items the list holds in all. */
export const PaginationSchema = z.object({
  limit: z.int().min(1).max(MAX_PAGE_ITEMS),
  offset: z.int().min(0).max(MAX_OFFSET),
  total: z.int().min(0),
}).meta({ description: "The page returned and the number of items in all" }).register(components, {
  id: "Pagination",
});

/**
 * The paging fields every list's query starts with: a page of `limit` items (1 to 100, 20 by
 * default) from `offset` on. Spread into the list's own query with its filters.
 */
const PAGE_QUERY = {
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_ITEMS).default(20),
  offset: z.coerce.number().int().min(0).max(MAX_OFFSET).default(0),
};

/** The query of a list operation: the paging fields, then the list's own `filters`. */
export function listQuery<F extends z.ZodRawShape>(filters: F) {
  return z.strictObject({ ...PAGE_QUERY, ...filters });
}

/** A page of a list: its `item`s and the {@link PaginationSchema}, described as `description`. */
export function pageOf<T extends z.ZodType>(item: T, description: string) {
  return z.object({ data: z.array(item).max(MAX_PAGE_ITEMS), pagination: PaginationSchema })
    .meta({ description });
}

/** A key's or a vault's data mode: test data never mixes with live data. */
export const ModeSchema = z.enum(["live", "test"]).register(components, { id: "Mode" });
