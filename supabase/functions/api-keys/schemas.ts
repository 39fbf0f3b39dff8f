/**
 * Request schemas of the api-keys function, shared with the OpenAPI document.
 *
 * @module
 */
import { z } from "zod";
import ipaddr from "ipaddr.js";

/** Most ranges one key's allowlist may hold. */
export const MAX_ALLOWLIST = 100;
/** Longest grace period a rolled key may keep working: 30 days. */
export const MAX_GRACE_SECONDS = 30 * 86_400;
/** Default grace period of a roll: 24 hours. */
export const DEFAULT_GRACE_SECONDS = 86_400;
/** Furthest expiry a key may be given: 5 years. */
const MAX_EXPIRY_MS = 5 * 366 * 86_400_000;

/** A CIDR range (or a single address, taken as /32 or /128) without host bits set. */
export const Cidr = z.string().max(64).transform((value, ctx) => {
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

/** Permissions of a key. */
export const ScopeSchema = z.enum(["read", "write", "delete"]);

/** Body of `POST /api/keys`. */
export const CreateKey = z.strictObject({
  name: z.string().trim().min(1).max(100),
  mode: z.enum(["live", "test"]),
  scopes: z.array(ScopeSchema).min(1).max(3).default(["read"])
    .transform((s) => [...new Set(s)]),
  expires_in: z.enum(["90d", "1y", "never"]).optional(),
  expires_at: z.iso.datetime({ offset: true }).optional(),
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
  if (v.expires_at !== undefined) {
    const at = Date.parse(v.expires_at);
    if (at <= Date.now() || at > Date.now() + MAX_EXPIRY_MS) {
      ctx.issues.push({
        code: "custom",
        path: ["expires_at"],
        message: "must be in the future and within 5 years",
        input: v.expires_at,
      });
    }
  }
});

/** Body of `POST /api/keys/{id}/roll` (may be empty). */
export const RollKey = z.strictObject({
  grace_period_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS)
    .default(DEFAULT_GRACE_SECONDS),
});

/** Query of `GET /api/keys`. */
export const ListKeys = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  mode: z.enum(["live", "test"]).optional(),
  status: z.enum(["active", "revoked", "suspended", "expired"]).optional(),
});

/** The expiry instant a create request asks for, or null for never. */
export function expiryOf(body: z.output<typeof CreateKey>, now = Date.now()): Date | null {
  if (body.expires_at !== undefined) return new Date(body.expires_at);
  switch (body.expires_in) {
    case "90d":
      return new Date(now + 90 * 86_400_000);
    case "1y":
      return new Date(now + 365 * 86_400_000);
    default:
      return null;
  }
}
