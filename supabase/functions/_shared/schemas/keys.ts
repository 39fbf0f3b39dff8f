/**
 * API-key bodies: a key's metadata (never the key or its hash), the created key (the only time
 * the key is shown), the rolled key and a page of keys.
 *
 * @module
 */
import { z } from "zod";
import type { Scope } from "../auth/principal.ts";
import { ModeSchema, PaginationSchema, Timestamp, Ulid } from "./common.ts";

/** A permission of a key. */
export const KeyScopeSchema = z.enum(["read", "write", "delete"] as const satisfies Scope[]);

/** A key's metadata. */
export const ApiKeySchema = z.object({
  id: Ulid,
  name: z.string(),
  mode: ModeSchema,
  start: z.string().meta({
    description: "The key's first characters, to recognise it",
    examples: ["sk_test_Ab3d"],
  }),
  scopes: z.array(KeyScopeSchema),
  status: z.enum(["active", "revoked", "suspended", "expired"]).meta({
    description: "`expired` once `expires_at` has passed",
  }),
  tier_id: Ulid,
  ip_allowlist: z.array(z.string()).nullable().meta({
    description: "CIDR ranges the key may be used from (Enterprise); null: anywhere",
  }),
  created_at: Timestamp,
  expires_at: Timestamp.nullable(),
  last_used_at: Timestamp.nullable(),
  revoked_at: Timestamp.nullable(),
  rolled_from: Ulid.nullable().meta({ description: "The key this one replaced by a roll" }),
}).meta({ description: "An API key's metadata; the key itself is never shown again" });

/** The full key, shown once. */
const FullKey = z.string().regex(/^sk_(live|test)_[A-Za-z0-9_-]+$/).meta({
  description: "The API key. Shown once: store it now, it cannot be recovered",
});

/** `POST /api/keys` 201: the new key's metadata and the key. */
export const CreatedKeySchema = ApiKeySchema.extend({ key: FullKey }).meta({
  description: "The created key, with the key itself (shown this once)",
});

/** `POST /api/keys/{id}/roll` 201: the replacement key, and the old key as it now stands. */
export const RolledKeySchema = CreatedKeySchema.extend({
  previous_key: ApiKeySchema,
}).meta({
  description: "The replacement key (shown this once) and, as `previous_key`, the key it " +
    "replaces, which keeps working until its `expires_at` (the grace period)",
});

/** `GET /api/keys` 200. */
export const KeyListSchema = z.object({
  data: z.array(ApiKeySchema),
  pagination: PaginationSchema,
}).meta({ description: "A page of the caller's API keys, newest first" });
