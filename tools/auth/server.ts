/**
 * The local stand-in for Supabase Auth's HTTP API (`/auth/v1/...`), the part that
 * `@supabase/supabase-js` uses for email sign-in: `POST /signup` (auto-confirmed, as the local
 * Supabase stack is by default), `POST /token?grant_type=password|refresh_token|pkce`,
 * `POST /otp` and `GET|POST /verify` (email code and magic link, the mail going to the local
 * {@link Mailbox}), `GET /user`, `POST /logout`, and the JWKS. Shapes, statuses and error codes
 * follow supabase/auth's handlers; production uses hosted Supabase Auth. It is also Supabase
 * Auth's OAuth 2.1 server (`oauth_server.ts`: authorize, consent, token, userinfo, grants, admin
 * clients). Not served: phone, third-party OAuth providers, MFA, the admin API for users, user
 * updates, password recovery, anonymous sign-in.
 *
 * @module
 */
import { publicJwks } from "../local_auth.ts";
import {
  AuthError,
  corsHeaders,
  errorResponse,
  noContent,
  OAuthError,
  oauthErrorResponse,
  readEmail,
  readJsonObject,
  sendJson,
  stringField,
  validationFailed,
} from "./http.ts";
import { endSessions, refreshSession, startSession } from "./sessions.ts";
import { checkPassword } from "./store.ts";
import { exchangePkce, sendOtp, verifyLink, verifyPost } from "./verify.ts";
import { signUp } from "./signup.ts";
import { oauthRoute } from "./oauth_server.ts";
import { type AuthContext, authenticate, type AuthOptions } from "./context.ts";

/** The header the test profile accepts to shorten the access tokens of one sign-in or refresh. */
export const TTL_HEADER = "X-Torvus-Auth-Token-TTL";

/** Where the authorization server's metadata is found by RFC 8414 (outside `/auth/v1`). */
export const ROOT_METADATA_PATH = "/.well-known/oauth-authorization-server/auth/v1";

/** Creates the `/auth/v1/...` handler (and {@link ROOT_METADATA_PATH}'s). */
export function createAuthHandler(options: AuthOptions): (req: Request) => Promise<Response> {
  const issuer = `${options.publicUrl.replace(/\/+$/, "")}/auth/v1`;
  return async (req) => {
    const url = new URL(req.url);
    // The hosted gateway serves RFC 8414's path of the issuer at the project's root.
    const path = url.pathname === ROOT_METADATA_PATH
      ? "/.well-known/oauth-authorization-server"
      : url.pathname.replace(/^\/auth\/v1/, "");
    if (req.method === "OPTIONS") return noContent();
    try {
      const ttl = tokenTtl(req, options);
      const ctx: AuthContext = { ...options, issuer, ttl };
      return await route(ctx, req, url, path);
    } catch (error) {
      if (error instanceof AuthError) return errorResponse(req, error);
      if (error instanceof OAuthError) return oauthErrorResponse(error);
      console.error(
        JSON.stringify({ level: "error", msg: "auth stand-in failed", error: String(error) }),
      );
      return errorResponse(
        req,
        new AuthError(
          500,
          "unexpected_failure",
          "Unexpected failure, please check server logs for more information",
        ),
      );
    }
  };
}

function tokenTtl(req: Request, options: AuthOptions): number {
  const raw = req.headers.get(TTL_HEADER);
  if (raw === null || !options.allowTtlHeader) return options.jwtExpiry;
  const ttl = Number(raw);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > options.jwtExpiry) {
    throw validationFailed(`${TTL_HEADER} must be an integer between 1 and ${options.jwtExpiry}`);
  }
  return ttl;
}

async function route(ctx: AuthContext, req: Request, url: URL, path: string): Promise<Response> {
  const only = (method: string) => {
    if (req.method !== method) throw new AuthError(405, "method_not_allowed", "Method not allowed");
  };
  switch (path) {
    case "/.well-known/jwks.json":
      only("GET");
      return Response.json(await publicJwks(), {
        headers: corsHeaders(new Headers({ "Cache-Control": "public, max-age=600" })),
      });
    case "/health":
      return sendJson(200, {
        version: "local",
        name: "Torvus local Auth stand-in",
        description: "",
      });
    case "/signup":
      only("POST");
      return await signUp(ctx, await readJsonObject(req), url);
    case "/token":
      only("POST");
      return await token(ctx, url.searchParams.get("grant_type") ?? "", await readJsonObject(req));
    case "/otp":
    case "/magiclink":
      only("POST");
      return await sendOtp(ctx, await readJsonObject(req), url);
    case "/verify":
      if (req.method === "GET") return await verifyLink(ctx, url);
      only("POST");
      return await verifyPost(ctx, await readJsonObject(req));
    case "/user":
      only("GET");
      return sendJson(200, (await authenticate(ctx, req)).user);
    case "/logout": {
      only("POST");
      const scope = url.searchParams.get("scope") ?? "global";
      if (scope !== "global" && scope !== "local" && scope !== "others" && scope !== "") {
        throw validationFailed(`Unsupported logout scope "${scope}"`);
      }
      const { user, sessionId } = await authenticate(ctx, req);
      await endSessions(ctx.sql, user.id, sessionId, scope === "" ? "global" : scope);
      return noContent();
    }
    default: {
      const answer = await oauthRoute(ctx, req, url, path);
      if (answer === undefined) throw new AuthError(404, "not_found", "Not Found");
      return answer;
    }
  }
}

async function token(
  ctx: AuthContext,
  grantType: string,
  body: Record<string, unknown>,
): Promise<Response> {
  switch (grantType) {
    case "password": {
      const email = readEmail(body);
      const password = stringField(body, "password");
      const user = password === "" ? undefined : await checkPassword(ctx.sql, email, password);
      if (user === undefined) {
        throw new AuthError(400, "invalid_credentials", "Invalid login credentials");
      }
      if (user.banned) throw new AuthError(400, "user_banned", "User is banned");
      if (user.json.email_confirmed_at === null) {
        throw new AuthError(400, "email_not_confirmed", "Email not confirmed");
      }
      const session = await startSession(ctx, user.json.id, "password");
      return sendJson(200, session);
    }
    case "refresh_token": {
      const refreshToken = stringField(body, "refresh_token");
      if (refreshToken === "") throw validationFailed("Refresh token is not valid");
      return sendJson(
        200,
        await refreshSession(ctx.sql, refreshToken, { ttlSeconds: ctx.ttl, issuer: ctx.issuer }),
      );
    }
    case "pkce":
      return await exchangePkce(ctx, body);
    default:
      throw new AuthError(400, "invalid_credentials", "unsupported_grant_type");
  }
}
