/**
 * API keys: what clients send (create, roll, list) and what they get back: a key's metadata
 * (never the key or its hash), the created key (the only time the key is shown), the rolled key
 * and a page of keys.
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import ipaddr from "ipaddr.js";
import type { Scope } from "../auth/principal.ts";
import { KEY_BODY_LENGTH, KEY_PREFIX } from "../auth/key_format.ts";
import { listQuery, MAX_INSTANT_LENGTH, ModeSchema, pageOf, Timestamp, Ulid } from "./common.ts";

/** A permission of a key. */
export const KeyScopeSchema = z.enum(["read", "write", "delete"] as const satisfies Scope[])
  .register(components, { id: "KeyScope" });

/** Longest key name (the database's check too). */
export const MAX_KEY_NAME = 100;
/** Longest CIDR range as sent (an IPv6 address in full with its prefix is 43). */
export const MAX_CIDR_LENGTH = 64;
/** Most ranges one key's allowlist may hold. */
export const MAX_ALLOWLIST = 100;
/** Longest grace period a rolled key may keep working: 30 days. */
export const MAX_GRACE_SECONDS = 30 * 86_400;
/** Default grace period of a roll: 24 hours. */
export const DEFAULT_GRACE_SECONDS = 86_400;

/** A CIDR range (or a single address, taken as /32 or /128) without host bits set. */
export const Cidr = z.string().max(MAX_CIDR_LENGTH).transform((value, ctx) => {
  try {
    const [address, bits] = value.includes("/") ? ipaddr.parseCIDR(value) : (() => {
      const a = ipaddr.parse(value);
      return [a, a.kind() === "ipv4" ? 32 : 128] as const;
    })();
    const network = address.kind() === "ipv4"
      ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${bits}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${bits}`);
    if (network.toString() !== address.toString()) {
      ctx.addIssue({ code: "custom", message: `host bits set; did you mean ${network}/${bits}?` });
      return z.NEVER;
    }
    return `${address}/${bits}`;
  } catch {
    ctx.addIssue({ code: "custom", message: "must be an IPv4 or IPv6 CIDR range" });
    return z.NEVER;
  }
});

/**
 * Body of `POST /api/keys`. Whether `expires_at` lies in the future is the handler's check, on
 * the service clock.
 */
export const CreateKey = z.strictObject({
  name: z.string().trim().min(1).max(MAX_KEY_NAME),
  mode: z.enum(["live", "test"]),
  scopes: z.array(KeyScopeSchema).min(1).max(3).default(["read"])
    .transform((s) => [...new Set(s)]),
  expires_in: z.enum(["90d", "1y", "never"]).optional(),
  expires_at: z.iso.datetime({ offset: true }).max(MAX_INSTANT_LENGTH).optional(),
  ip_allowlist: z.array(Cidr).min(1).max(MAX_ALLOWLIST).optional(),
}).check((ctx) => {
  const v = ctx.value;
  if (v.expires_in !== undefined && v.expires_at !== undefined) {
    ctx.issues.push({
      code: "custom",
      path: ["expires_at"],
      message: "give expires_in or expires_at, not both",
      input: v.expires_at,
    });
  }
}).register(components, { id: "CreateApiKeyRequest" });

/** Body of `POST /api/keys/{id}/roll` (may be empty). */
export const RollKey = z.strictObject({
  grace_period_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS)
    .default(DEFAULT_GRACE_SECONDS),
}).register(components, { id: "RollApiKeyRequest" });

/** Query of `GET /api/keys`. */
export const ListKeysQuery = listQuery({
  mode: z.enum(["live", "test"]).optional(),
  status: z.enum(["active", "revoked", "suspended", "expired"]).optional(),
});

/** A key's metadata. */
export const ApiKeySchema = z.object({
  id: Ulid,
  name: z.string().max(MAX_KEY_NAME),
  mode: ModeSchema,
  start: z.string().max(20).meta({
    description: "The key's first characters, to recognise it",
    examples: ["sk_test_Ab3d"],
  }),
  scopes: z.array(KeyScopeSchema).max(KeyScopeSchema.options.length),
  status: z.enum(["active", "revoked", "suspended", "expired"]).meta({
    description: "`expired` once `expires_at` has passed",
  }),
  tier_id: Ulid,
  ip_allowlist: z.array(z.string().max(MAX_CIDR_LENGTH)).max(MAX_ALLOWLIST).nullable().meta({
    description: "CIDR ranges the key may be used from (Enterprise); null: anywhere",
  }),
  created_at: Timestamp,
  expires_at: Timestamp.nullable(),
  last_used_at: Timestamp.nullable(),
  revoked_at: Timestamp.nullable(),
  rolled_from: Ulid.nullable().meta({ description: "The key this one replaced by a roll" }),
}).meta({ description: "An API key's metadata; the key itself is never shown again" }).register(
  components,
  { id: "ApiKey" },
);

/** The full key, shown once. */
const FullKey = z.string().length(KEY_PREFIX.live.length + KEY_BODY_LENGTH)
  .regex(/^sk_(live|test)_[A-Za-z0-9_-]+$/).meta({
    description: "The API key. Shown once: store it now, it cannot be recovered",
  });

/** `POST /api/keys` 201: the new key's metadata and the key. */
export const CreatedKeySchema = ApiKeySchema.extend({ key: FullKey }).meta({
  description: "The created key, with the key itself (shown this once)",
}).register(components, { id: "CreatedApiKey" });

/** `POST /api/keys/{id}/roll` 201: the replacement key, and the old key as it now stands. */
export const RolledKeySchema = CreatedKeySchema.extend({
  previous_key: ApiKeySchema,
}).meta({
  description: "The replacement key (shown this once) and, as `previous_key`, the key it " +
    "replaces, which keeps working until its `expires_at` (the grace period)",
}).register(components, { id: "RolledApiKey" });

/** `GET /api/keys` 200. */
export const KeyListSchema = pageOf(ApiKeySchema, "A page of the caller's API keys, newest first")
  .register(components, { id: "ApiKeyList" });
