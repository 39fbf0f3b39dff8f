/**
 * The token side of the local Auth stand-in's OAuth 2.1 server, as Supabase Auth serves it:
 *
 * - client authentication at `POST /oauth/token`: `client_secret_basic` (the `Authorization:
 *   Basic` header), `client_secret_post` (`client_secret` in the body) or `none` (only
 *   `client_id`), and it must be the method the client registered; failures are 400
 *   `invalid_credentials` in Supabase Auth's error format;
 * - `grant_type=authorization_code`: the approved authorization's code, once, within its 10
 *   minutes, for the client it was issued to, with the same `redirect_uri` if one is sent, and the
 *   PKCE verifier; it starts a session of that client (access token with `client_id`, `scope` and
 *   `amr` `oauth_provider/authorization_code`) and, with the `openid` scope, an ID token (ES256,
 *   `aud` the client); the answer has no `scope` and no `user`;
 * - `grant_type=refresh_token`: rotation as for the user's own sessions, only by the session's
 *   client; failures of the grant itself are OAuth errors (400 `{error, error_description}`);
 * - `GET /oauth/userinfo` (the access token): `sub`, and the claims of the granted scopes.
 *
 * @module
 */
import { signJwt } from "../local_auth.ts";
import { AuthError, OAuthError, readParams, sendJson } from "./http.ts";
import { type AuthContext, authenticate } from "./context.ts";
import { type ClientRow, findClient, isUuid, secretMatches } from "./oauth_clients.ts";
import { scopeList } from "./oauth_authorize.ts";
import { verifierMatches } from "./otp.ts";
import { OAUTH_CODE_METHOD } from "../local_auth.ts";
import { issueSession, refreshSession, type SessionJson } from "./sessions.ts";
import { type AuthUser, findUserById } from "./store.ts";

const invalidCredentials = (message: string) => new AuthError(400, "invalid_credentials", message);

/** Standard, padded base64 only (Go's `StdEncoding`); undefined for anything else. */
function decodeStdBase64(text: string): string | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The credentials a token request presents, and the method it used. */
function presentedCredentials(
  req: Request,
  params: Map<string, string>,
): { clientId: string; secret: string; method: string } {
  const header = req.headers.get("Authorization") ?? "";
  if (header.startsWith("Basic ")) {
    const decoded = decodeStdBase64(header.slice(6));
    if (decoded === undefined) {
      throw invalidCredentials("Invalid client credentials: invalid basic auth encoding");
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw invalidCredentials("Invalid client credentials: invalid basic auth format");
    }
    return {
      clientId: decoded.slice(0, colon),
      secret: decoded.slice(colon + 1),
      method: "client_secret_basic",
    };
  }
  const clientId = params.get("client_id") ?? "";
  const secret = params.get("client_secret") ?? "";
  if (clientId === "") {
    throw invalidCredentials("Invalid client credentials: client_id is required");
  }
  return { clientId, secret, method: secret !== "" ? "client_secret_post" : "none" };
}

/** The client that authenticated the request, or a 400 `invalid_credentials`. */
async function authenticateClient(
  ctx: AuthContext,
  req: Request,
  params: Map<string, string>,
): Promise<ClientRow> {
  const { clientId, secret, method } = presentedCredentials(req, params);
  if (!isUuid(clientId)) throw invalidCredentials("Invalid client_id format");
  const client = await findClient(ctx.sql, clientId);
  if (client === undefined) throw invalidCredentials("Invalid client credentials");
  if (method !== client.token_endpoint_auth_method) {
    throw invalidCredentials(
      `invalid authentication method: client is registered for ` +
        `'${client.token_endpoint_auth_method}' but '${method}' was used`,
    );
  }
  if (client.client_type === "public") {
    if (secret !== "") throw invalidCredentials("public clients must not provide client_secret");
  } else if (secret === "") {
    throw invalidCredentials("confidential clients must provide client_secret");
  } else if (!(await secretMatches(secret, client.client_secret_hash))) {
    throw invalidCredentials("invalid client credentials");
  }
  return client;
}

/** `POST /oauth/token`. */
export async function token(ctx: AuthContext, req: Request): Promise<Response> {
  const params = await readParams(req);
  const client = await authenticateClient(ctx, req, params);
  const grantType = params.get("grant_type") ?? "";
  if (grantType === "") throw new OAuthError("invalid_request", "grant_type is required");
  if (!client.grant_types.split(",").map((g) => g.trim()).includes(grantType)) {
    throw new OAuthError(
      "unsupported_grant_type",
      `Client is not allowed to use grant type: ${grantType}`,
    );
  }
  if (grantType === "authorization_code") return await codeGrant(ctx, client, params);
  if (grantType === "refresh_token") {
    const refreshToken = params.get("refresh_token") ?? "";
    if (refreshToken === "") {
      throw new OAuthError("invalid_request", "refresh_token is required for refresh_token grant");
    }
    const session = await refreshSession(ctx.sql, refreshToken, {
      ttlSeconds: ctx.ttl,
      issuer: ctx.issuer,
    }, client.id);
    return sendJson(200, tokenJson(session));
  }
  throw new OAuthError("unsupported_grant_type", `Unsupported grant type: ${grantType}`);
}

function tokenJson(session: SessionJson, idToken?: string): Record<string, unknown> {
  return {
    access_token: session.access_token,
    token_type: session.token_type,
    expires_in: session.expires_in,
    refresh_token: session.refresh_token,
    ...(idToken && { id_token: idToken }),
  };
}

interface CodeRow {
  id: string;
  client_id: string;
  user_id: string | null;
  redirect_uri: string;
  scope: string;
  resource: string | null;
  code_challenge: string | null;
  code_challenge_method: "s256" | "plain" | null;
  nonce: string | null;
  expired: boolean;
}

async function codeGrant(
  ctx: AuthContext,
  client: ClientRow,
  params: Map<string, string>,
): Promise<Response> {
  const code = params.get("code") ?? "";
  if (code === "") {
    throw new OAuthError("invalid_request", "code is required for authorization_code grant");
  }
  const [row] = await ctx.sql<CodeRow[]>`
    select id, client_id, user_id, redirect_uri, scope, resource, code_challenge,
           code_challenge_method, nonce, expires_at < now() as expired
      from auth.oauth_authorizations
     where authorization_code = ${code} and status = 'approved'`;
  const invalidGrant = (description: string) => new OAuthError("invalid_grant", description);
  if (row === undefined) throw invalidGrant("Invalid authorization code");
  if (row.expired) throw invalidGrant("Authorization code has expired");
  if (row.client_id !== client.id) {
    throw invalidGrant("Authorization code was not issued for this client");
  }
  const resource = params.get("resource") ?? "";
  if (resource !== "" && resource !== (row.resource ?? "")) {
    throw invalidGrant("Authorization code resource does not match the resource parameter");
  }
  const redirectUri = params.get("redirect_uri") ?? "";
  if (redirectUri !== "" && redirectUri !== row.redirect_uri) {
    throw invalidGrant("Invalid redirect_uri");
  }
  if (row.code_challenge !== null && row.code_challenge !== "") {
    const verifier = params.get("code_verifier") ?? "";
    if (verifier === "") {
      throw invalidGrant(
        "PKCE verification failed: code_verifier is required when PKCE challenge is present",
      );
    }
    const challenge = { challenge: row.code_challenge, method: row.code_challenge_method! };
    if (!(await verifierMatches(verifier, challenge))) {
      throw invalidGrant(
        "PKCE verification failed: code challenge does not match previously saved code verifier",
      );
    }
  }
  if (row.user_id === null) throw invalidGrant("Authorization code has no associated user");
  const user = await findUserById(ctx.sql, row.user_id);
  if (user === undefined) throw invalidGrant("User not found for authorization code");
  if (user.banned) throw new OAuthError("access_denied", "User is banned");
  // The code is used once: whoever deletes the row issues the session.
  const used = await ctx.sql`delete from auth.oauth_authorizations where id = ${row.id}
                              returning id`;
  if (used.length === 0) throw invalidGrant("Invalid authorization code");
  const session = await issueSession(ctx.sql, user.json.id, {
    method: OAUTH_CODE_METHOD,
    ttlSeconds: ctx.ttl,
    issuer: ctx.issuer,
  }, { clientId: client.id, scopes: row.scope });
  const scopes = scopeList(row.scope);
  const idToken = scopes.includes("openid")
    ? await mintIdToken(ctx, session.user, client.id, scopes, row.nonce)
    : undefined;
  return sendJson(200, tokenJson(session, idToken));
}

/** The OIDC ID token: the user to the client (`aud`), with the claims of the scopes granted. */
function mintIdToken(
  ctx: AuthContext,
  user: AuthUser,
  clientId: string,
  scopes: string[],
  nonce: string | null,
): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  const signedIn = user.last_sign_in_at === null ? iat : Date.parse(user.last_sign_in_at) / 1000;
  return signJwt({
    iss: ctx.issuer,
    sub: user.id,
    aud: [clientId],
    exp: iat + 3600,
    iat,
    ...(nonce && { nonce }),
    auth_time: Math.floor(signedIn),
    ...(scopes.includes("email") && { email: user.email }),
    email_verified: scopes.includes("email") && user.email_confirmed_at !== null,
    phone_number_verified: false,
    ...(scopes.includes("profile") && profileClaims(user)),
    client_id: clientId,
  });
}

/** The `profile` scope's claims (name falls back to the email, as Supabase Auth's does). */
function profileClaims(user: AuthUser): Record<string, unknown> {
  const meta = user.user_metadata;
  const text = (key: string) => {
    const value = meta[key];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const claims: Record<string, unknown> = { name: text("name") ?? user.email };
  const picture = text("picture") ?? text("avatar_url");
  if (picture !== undefined) claims["picture"] = picture;
  const username = text("preferred_username") ?? text("username");
  if (username !== undefined) claims["preferred_username"] = username;
  claims["updated_at"] = Math.floor(Date.parse(user.updated_at) / 1000);
  return claims;
}

/** `GET /oauth/userinfo`: `sub`, and what the session's scopes grant. */
export async function userInfo(ctx: AuthContext, req: Request): Promise<Response> {
  const { user, sessionId } = await authenticate(ctx, req);
  const info: Record<string, unknown> = { sub: user.id };
  if (sessionId === undefined) return sendJson(200, info);
  const [session] = await ctx.sql<{ scopes: string | null }[]>`
    select scopes from auth.sessions where id = ${sessionId}`;
  const scopes = scopeList(session?.scopes ?? "");
  if (scopes.includes("email")) {
    if (user.email !== "") info["email"] = user.email;
    if (user.email_confirmed_at !== null) info["email_verified"] = true;
  }
  if (scopes.includes("profile")) {
    const { name, picture, preferred_username, updated_at } = profileClaims(user);
    Object.assign(info, { name, picture, preferred_username, updated_at });
    info["user_metadata"] = user.user_metadata;
  }
  return sendJson(200, JSON.parse(JSON.stringify(info)));
}
