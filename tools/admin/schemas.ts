/**
 * Validation of operator input: each schema turns a command-line string (or an in-process
 * value) into the typed value the operations take, with a message fit for one stderr line.
 *
 * @module
 */
import { z } from "zod";
import { AdminError } from "./errors.ts";

/** An email address, trimmed and lower-cased as Supabase Auth stores it. */
export const emailSchema = z.string().trim().toLowerCase().pipe(
  z.email({ error: "not a valid email address" }).max(255, "email longer than 255 characters"),
);

/** A tier name, with the same rule as the `tiers.name` check constraint. */
export const tierNameSchema = z.string().regex(
  /^[a-z0-9][a-z0-9_-]{0,39}$/,
  "tier names are 1-40 of a-z 0-9 _ - and start with a letter or digit",
);

/** A ULID, the id format of keys and tiers. */
export const ulidSchema = z.string().trim().toUpperCase().regex(
  /^[0-9A-HJKMNP-TV-Z]{26}$/,
  "not a valid id (26-character ULID)",
);

/** An API-key mode. */
export const modeSchema = z.enum(["live", "test"], { error: "mode must be live or test" });

/** An API-key status. */
export const statusSchema = z.enum(["active", "revoked", "suspended", "expired"], {
  error: "status must be active, revoked, suspended or expired",
});

/** Key scopes: a comma-separated list (or array) of read, write, delete; deduplicated. */
export const scopesSchema = z.preprocess(
  (value) => typeof value === "string" ? value.split(",").map((s) => s.trim()) : value,
  z.array(z.enum(["read", "write", "delete"], { error: "scopes are read, write or delete" }))
    .min(1, "at least one scope is needed")
    .transform((scopes) => [...new Set(scopes)]),
);

/** A key name, as the `api_keys.name` check allows. */
export const keyNameSchema = z.string().min(1, "name is empty").max(
  100,
  "name over 100 characters",
);

/** An ISO 8601 date-time with a zone (`Z` or an offset), as a Date. */
export const instantSchema = z.iso.datetime({
  offset: true,
  error: "expected an ISO 8601 date-time with a zone, e.g. 2027-01-31T00:00:00Z",
}).transform((text) => new Date(text));

/** An expiry: an ISO 8601 date-time, or `never` (null). */
export const expirySchema = z.union([z.literal("never").transform(() => null), instantSchema], {
  error: "expected an ISO 8601 date-time with a zone or never",
});

/** An IP allowlist: comma-separated IPv4/IPv6 addresses or CIDR blocks. */
export const ipAllowlistSchema = z.preprocess(
  (value) => typeof value === "string" ? value.split(",").map((s) => s.trim()) : value,
  z.array(
    z.union([z.cidrv4(), z.cidrv6(), z.ipv4(), z.ipv6()], {
      error: "ip allowlist entries are IPv4/IPv6 addresses or CIDR blocks",
    }),
  ).min(1, "ip allowlist is empty"),
);

/** A positive integer (rate limits), from a string or a number. */
export const limitSchema = z.coerce.number({ error: "expected a number" })
  .int("expected a whole number").positive("expected a positive number").max(2_147_483_647);

/** A token lifetime in seconds; negative for an already expired token, never zero. */
export const ttlSchema = z.coerce.number({ error: "ttl must be a number of seconds" })
  .int("ttl must be whole seconds").min(-31_536_000).max(31_536_000)
  .refine((n) => n !== 0, "ttl must not be 0");

/** Parses `value` with `schema`, or throws an {@link AdminError} (exit 2) naming `what`. */
export function parseOr<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new AdminError(`${what}: ${issue?.message ?? "invalid value"}`, 2);
}
