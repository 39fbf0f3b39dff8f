/**
 * What every handler of the Supabase Auth stand-in gets (its settings, the issuer, the token
 * lifetime) and who is calling (the bearer token's user and session). It sits below the
 * handlers so that they and `server.ts`, which routes to them, import it and not each other.
 *
 * @module
 */
import type postgres from "postgres";
import { importJWK, jwtVerify } from "jose";
import { loadOrCreateSigningKey, SIGNING_ALG, type SigningKey } from "../local_auth.ts";
import { AuthError } from "./http.ts";
import type { Mailbox } from "./mailbox.ts";
import { sessionExists } from "./sessions.ts";
import { type AuthUser, findUserById } from "./store.ts";

/** Settings of the stand-in. */
export interface AuthOptions {
  sql: postgres.Sql;
  mailbox: Mailbox;
  /** The public URL of the API (SUPABASE_URL): issuer and links are built from it. */
  publicUrl: string;
  /** Where links lead by default (Supabase Auth's Site URL): the console. */
  siteUrl: string;
  /** Other allowed `redirect_to` URLs (prefixes). */
  redirectUrls: string[];
  /** Access tokens' lifetime (Supabase Auth's `jwt_expiry`), seconds. */
  jwtExpiry: number;
  /** Honour `X-Torvus-Auth-Token-TTL` (tests shorten tokens this way; test profile only). */
  allowTtlHeader: boolean;
  /** The OAuth 2.1 server's settings (`[auth.oauth_server]` of config.toml). */
  oauthServer: OAuthServerSettings;
}

/** `[auth.oauth_server]`, plus Supabase Auth's fixed defaults. */
export interface OAuthServerSettings {
  enabled: boolean;
  /** Appended to the Site URL: where the consent page is (`authorization_url_path`). */
  authorizationPath: string;
  allowDynamicRegistration: boolean;
  /** How long an authorization request waits for the user (Supabase Auth: 10 minutes). */
  authorizationTtlSeconds: number;
  /** The scope of a request that names none (Supabase Auth: `email`). */
  defaultScope: string;
}

/** What every handler gets. */
export interface AuthContext extends AuthOptions {
  issuer: string;
  ttl: number;
}

const imported = new WeakMap<SigningKey, Promise<CryptoKey | Uint8Array>>();

/** The public key this Auth's tokens are verified with (its signing key's), imported once. */
export async function verifyingKey(): Promise<CryptoKey | Uint8Array> {
  const key = await loadOrCreateSigningKey();
  let found = imported.get(key);
  if (found === undefined) imported.set(key, found = importJWK(key.publicJwk, SIGNING_ALG));
  return await found;
}

/**
 * The user and session of the request's bearer token, as Supabase Auth's `requireAuthentication`
 * decides: 401 `no_authorization` without one, 403 `bad_jwt` for a bad or expired one, 403
 * `session_not_found` for a session that ended (signed out).
 */
export async function authenticate(
  ctx: AuthContext,
  req: Request,
): Promise<{ user: AuthUser; sessionId: string | undefined }> {
  const jwt = bearerToken(req);
  const publicKey = await verifyingKey();
  let payload;
  try {
    ({ payload } = await jwtVerify(jwt, publicKey, {
      algorithms: [SIGNING_ALG],
      issuer: ctx.issuer,
      audience: "authenticated",
    }));
  } catch (error) {
    const reason = (error as { code?: string }).code === "ERR_JWT_EXPIRED"
      ? "token has invalid claims: token is expired"
      : "signature or claims are invalid";
    throw new AuthError(
      403,
      "bad_jwt",
      `invalid JWT: unable to parse or verify signature, ${reason}`,
    );
  }
  const user = typeof payload.sub === "string"
    ? await findUserById(ctx.sql, payload.sub)
    : undefined;
  if (user === undefined) {
    throw new AuthError(403, "user_not_found", "User from sub claim in JWT does not exist");
  }
  const sessionId = typeof payload["session_id"] === "string" ? payload["session_id"] : undefined;
  if (sessionId !== undefined && !(await sessionExists(ctx.sql, sessionId))) {
    throw new AuthError(
      403,
      "session_not_found",
      "Session from session_id claim in JWT does not exist",
    );
  }
  return { user: user.json, sessionId };
}

/** The request's bearer token; 401 `no_authorization` without one. */
export function bearerToken(req: Request): string {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.get("Authorization") ?? "");
  if (match === null) {
    throw new AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token");
  }
  return match[1]!;
}
