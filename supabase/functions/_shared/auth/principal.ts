/**
 * Who a request acts for, once authenticated.
 *
 * @module
 */
import type { KeyMode } from "./key_format.ts";
import type { ErrorCode } from "../errors.ts";

/** The permissions an API key can carry. */
export type Scope = "read" | "write" | "delete";

/** The API scopes a third-party app may ask for and a user may grant (the database's set). */
export const APP_SCOPES = [
  "vaults:read",
  "vaults:write",
  "vaults:delete",
  "profile:read",
] as const;
/** An API scope of a third-party app. */
export type AppScope = (typeof APP_SCOPES)[number];

/**
 * A third-party app acting for its user, admitted on the user's active grant (app_grant.ts):
 * the grant's scopes, and the app's tier, whose limits apply per (app, user).
 */
export interface AppAccess {
  clientId: string;
  grantId: string;
  appId: string;
  scopes: readonly AppScope[];
  tierId: string;
  tierName: string;
  limits: { perMinute: number; perDay: number };
}

/**
 * A signed-in Supabase user, from a verified JWT. A token Supabase Auth issued to a third-party
 * app has `clientId`, and, once admitted on its grant, `app`; handlers see the same user (their
 * statements run with the token's claims, so the database's app policies apply as well).
 */
export interface UserPrincipal {
  kind: "user";
  userId: string;
  /** The `client_id` claim: the token is a third-party app's. */
  clientId?: string | undefined;
  /** The app's grant, set by admission for a `clientId` token. */
  app?: AppAccess | undefined;
  email: string | undefined;
  mode: "live";
  /** The verified claims, passed to Postgres as `request.jwt.claims` for RLS. */
  claims: Record<string, unknown>;
  /** Token expiry, epoch seconds. */
  exp: number;
}

/** An API key, verified against its stored hash. */
export interface KeyPrincipal {
  kind: "api_key";
  keyId: string;
  keyName: string;
  userId: string;
  mode: KeyMode;
  scopes: readonly Scope[];
  tierId: string;
  tierName: string;
  limits: { perMinute: number; perDay: number };
}

/** Either kind of caller. */
export type Principal = UserPrincipal | KeyPrincipal;

/** A refused key's id, owner and mode, for the request log. */
export interface RefusedKey {
  keyId?: string | undefined;
  userId?: string | undefined;
  mode?: "live" | "test" | undefined;
  /** A refused third-party app's client id. */
  clientId?: string | undefined;
}

/** A refused authentication: a catalogued code and, where useful, a safe message. */
export interface AuthFailure {
  ok: false;
  code: ErrorCode;
  message?: string;
  /** RFC 6750 `error` attribute of `WWW-Authenticate`, for bearer failures. */
  bearerError?: "invalid_request" | "invalid_token" | "insufficient_scope";
  /** Set when the failure was ours (a dependency), not the caller's. */
  unavailable?: boolean;
  /** The key that was presented, when it exists but was refused (for the request log). */
  keyId?: string;
  /** Its owner. */
  userId?: string;
  /** Its mode. */
  mode?: "live" | "test";
  /** The client id of a refused third-party app's token. */
  clientId?: string;
}

/** The outcome of an authentication attempt. */
export type AuthResult<P extends Principal> = { ok: true; principal: P } | AuthFailure;

/** The claims RLS sees for a principal. API keys act as their owner, in the key's mode. */
export function claimsOf(principal: Principal): Record<string, unknown> {
  if (principal.kind === "user") return principal.claims;
  return {
    sub: principal.userId,
    role: "authenticated",
    aud: "authenticated",
    key_id: principal.keyId,
    key_mode: principal.mode,
  };
}
