/**
 * Bearer-token authentication of Supabase access tokens with jose.
 *
 * Keys and algorithms come from configuration, never from the token: the project's JWKS
 * (ES256/RS256, cached by jose and refetched for an unknown `kid` at most once per cooldown) and,
 * only where a legacy secret is configured, HS256 with that secret. The token's `alg` merely
 * picks which of the configured verifiers to try; each verifier pins its own algorithms.
 *
 * Verified tokens are cached (bounded, never beyond their `exp`) so a repeated token costs no
 * signature check.
 *
 * @module
 */
import * as jose from "jose";
import type { AuthResult, UserPrincipal } from "./principal.ts";
import { BoundedCache } from "../cache.ts";

/** Options of {@link createJwtVerifier}. */
export interface JwtOptions {
  issuer: string;
  audience: string;
  /** The JWKS URL, or a key-set function (tests). */
  jwks: URL | jose.JWTVerifyGetKey;
  hsSecret?: string | undefined;
  cooldownMs?: number;
  /** Verified-token cache size; 0 disables it. */
  cacheSize?: number;
  now?: () => number;
}

/** Verifies bearer tokens. */
export interface JwtVerifier {
  verify(token: string): Promise<AuthResult<UserPrincipal>>;
}

/** Tokens longer than this are refused unparsed; Supabase's are well under 2 KB. */
export const MAX_TOKEN_LENGTH = 8192;
const ASYMMETRIC = ["ES256", "RS256"];
/** A client id as the database stores one (`oauth_apps`, `api_request_shapes`: `client_id`). */
export const CLIENT_ID = /^[A-Za-z0-9._~-]{1,255}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How far in the future an `iat` may be (clock skew between Auth and the functions). */
const IAT_SKEW_S = 30;

/**
 * True when every segment is canonical base64url (RFC 7515 §2, RFC 4648 §3.5): it re-encodes
 * to itself. The decoder is lenient about the unused low bits of the last character, so
 * without this one genuine token has several spellings that all verify.
 */
function canonical(token: string): boolean {
  try {
    return token.split(".").every((s) => jose.base64url.encode(jose.base64url.decode(s)) === s);
  } catch {
    return false;
  }
}
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const invalid = (): AuthResult<UserPrincipal> => ({
  ok: false,
  code: "INVALID_AUTH_TOKEN",
  bearerError: "invalid_token",
});

/** Creates the isolate's verifier. */
export function createJwtVerifier(options: JwtOptions): JwtVerifier {
  const keySet = options.jwks instanceof URL
    ? jose.createRemoteJWKSet(options.jwks, {
      cooldownDuration: options.cooldownMs ?? 30_000,
      cacheMaxAge: 10 * 60_000,
      timeoutDuration: 2000,
    })
    : options.jwks;
  const secret = options.hsSecret ? new TextEncoder().encode(options.hsSecret) : undefined;
  const now = options.now ?? Date.now;
  const cache = new BoundedCache<string, UserPrincipal>(options.cacheSize ?? 10_000);
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    requiredClaims: ["exp", "sub"],
    currentDate: undefined as Date | undefined,
  };

  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return invalid();
      const cached = cache.get(token, now());
      if (cached) return { ok: true, principal: cached };
      // After the cache: a cached token is one exact spelling that passed this check already.
      if (!canonical(token)) return invalid();

      let header: jose.ProtectedHeaderParameters;
      try {
        header = jose.decodeProtectedHeader(token);
      } catch {
        return invalid();
      }
      const useSecret = header.alg === "HS256" && secret !== undefined;
      let payload: jose.JWTPayload;
      try {
        const opts = {
          ...verifyOptions,
          algorithms: useSecret ? ["HS256"] : ASYMMETRIC,
          currentDate: new Date(now()),
        };
        ({ payload } = useSecret
          ? await jose.jwtVerify(token, secret, opts)
          : await jose.jwtVerify(token, keySet, opts));
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        // Signatures are checked before claims, so "expired" is only said of a genuine token.
        if (code === "ERR_JWT_EXPIRED") {
          return { ok: false, code: "TOKEN_EXPIRED", bearerError: "invalid_token" };
        }
        if (
          code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID" ||
          (code === undefined && error instanceof TypeError)
        ) {
          return { ok: false, code: "SERVICE_UNAVAILABLE", unavailable: true };
        }
        return invalid();
      }
      if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) return invalid();
      if (typeof payload.exp !== "number" || !Number.isFinite(payload.exp)) return invalid();
      // A token issued in the future is forged or mis-minted (jose checks iat only with maxTokenAge).
      if (typeof payload.iat === "number" && payload.iat > now() / 1000 + IAT_SKEW_S) {
        return invalid();
      }
      if (payload.role !== "authenticated") {
        return { ok: false, code: "FORBIDDEN", bearerError: "insufficient_scope" };
      }
      // Supabase Auth's OAuth server issues a third-party app the user's own token plus its
      // `client_id`: admission admits it only on the user's active grant to that app, with the
      // grant's scopes (app_grant.ts). An empty or null claim is none, as the database reads it.
      const clientId = payload.client_id;
      if (
        clientId !== undefined && clientId !== null && clientId !== "" &&
        (typeof clientId !== "string" || !CLIENT_ID.test(clientId))
      ) {
        return invalid();
      }
      const principal: UserPrincipal = {
        kind: "user",
        userId: payload.sub,
        clientId: typeof clientId === "string" && clientId !== "" ? clientId : undefined,
        email: typeof payload.email === "string" ? payload.email : undefined,
        mode: "live",
        claims: payload as Record<string, unknown>,
        exp: payload.exp,
      };
      cache.set(token, principal, payload.exp * 1000);
      return { ok: true, principal };
    },
  };
}
