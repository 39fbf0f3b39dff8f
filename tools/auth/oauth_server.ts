/**
 * The OAuth 2.1 server of the local Auth stand-in: its settings (`[auth.oauth_server]` of
 * supabase/config.toml, as Supabase Auth's `GOTRUE_OAUTH_SERVER_*`), its routes, discovery, and
 * the user's grants. Every route answers 404 `feature_disabled` while the server is off, as
 * Supabase Auth does (the OpenID configuration excepted).
 *
 * Routes (under `/auth/v1`): discovery at `/.well-known/oauth-authorization-server` and
 * `/.well-known/openid-configuration` (and at the project's root,
 * `/.well-known/oauth-authorization-server/auth/v1`, where the hosted gateway serves RFC 8414's
 * path), `GET /oauth/authorize`, `GET /oauth/authorizations/{id}`, `POST
 * /oauth/authorizations/{id}/consent`, `POST /oauth/token`, `GET /oauth/userinfo`, `POST
 * /oauth/clients/register`, `GET`/`DELETE /user/oauth/grants`, and the admin API at
 * `/admin/oauth/clients[/{id}[/regenerate_secret]]` for the service role.
 *
 * @module
 */
import { jwtVerify } from "jose";
import { SIGNING_ALG } from "../local_auth.ts";
import { AuthError, noContent, readStrictJson, sendJson, validationFailed } from "./http.ts";
import {
  type AuthContext,
  authenticate,
  bearerToken,
  type OAuthServerSettings,
  verifyingKey,
} from "./context.ts";
import {
  authorize,
  consent,
  getAuthorization,
  OAUTH_SCOPES,
  scopeList,
} from "./oauth_authorize.ts";
import { token, userInfo } from "./oauth_token.ts";
import {
  clientJson,
  clientSummary,
  deleteClient,
  findClient,
  isUuid,
  listClients,
  readClientParams,
  regenerateSecret,
  registerClient,
  updateClient,
} from "./oauth_clients.ts";

/** The server switched off, as Supabase Auth's default is. */
export const OAUTH_SERVER_OFF: OAuthServerSettings = {
  enabled: false,
  authorizationPath: "",
  allowDynamicRegistration: false,
  authorizationTtlSeconds: 600,
  defaultScope: "email",
};

/**
 * The settings of `[auth.oauth_server]` in a config.toml text (booleans and strings of that
 * table only; other tables are not read).
 */
export function oauthServerSettings(configToml: string): OAuthServerSettings {
  const values = new Map<string, string | boolean>();
  let inTable = false;
  for (const raw of configToml.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line.startsWith("[")) {
      inTable = line === "[auth.oauth_server]";
      continue;
    }
    const match = inTable ? /^([a-z_]+)\s*=\s*(true|false|"[^"]*")$/.exec(line) : null;
    if (match) {
      const value = match[2]!;
      values.set(match[1]!, value.startsWith('"') ? value.slice(1, -1) : value === "true");
    }
  }
  return {
    ...OAUTH_SERVER_OFF,
    enabled: values.get("enabled") === true,
    authorizationPath: String(values.get("authorization_url_path") ?? ""),
    allowDynamicRegistration: values.get("allow_dynamic_registration") === true,
  };
}

/** The discovery document (RFC 8414 and OpenID Connect Discovery share it). */
function discovery(ctx: AuthContext): Response {
  const base = ctx.issuer;
  const body = {
    issuer: ctx.issuer,
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/oauth/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    userinfo_endpoint: `${base}/oauth/userinfo`,
    ...(ctx.oauthServer.enabled && ctx.oauthServer.allowDynamicRegistration &&
      { registration_endpoint: `${base}/oauth/clients/register` }),
    scopes_supported: OAUTH_SCOPES,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["RS256", "HS256", "ES256"],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    claims_supported: [
      "sub",
      "aud",
      "iss",
      "exp",
      "iat",
      "auth_time",
      "nonce",
      "email",
      "email_verified",
      "phone_number",
      "phone_number_verified",
      "name",
      "picture",
      "preferred_username",
      "updated_at",
    ],
    code_challenge_methods_supported: ["S256", "plain"],
  };
  const response = sendJson(200, body);
  response.headers.set("Cache-Control", "public, max-age=600");
  return response;
}

/**
 * The admin credentials of Supabase Auth's admin API: a valid JWT whose `role` is
 * `service_role` or `supabase_admin` (the service role key); 401 without a bearer token, 403
 * `bad_jwt` for a bad one, 403 `not_admin` for another role.
 */
async function requireAdmin(req: Request): Promise<void> {
  const jwt = bearerToken(req);
  const publicKey = await verifyingKey();
  let role: unknown;
  try {
    const { payload } = await jwtVerify(jwt, publicKey, { algorithms: [SIGNING_ALG] });
    role = payload["role"];
  } catch {
    throw new AuthError(403, "bad_jwt", "invalid JWT: unable to parse or verify signature");
  }
  if (role !== "service_role" && role !== "supabase_admin") {
    throw new AuthError(403, "not_admin", "User not allowed");
  }
}

const methodNotAllowed = () => new AuthError(405, "method_not_allowed", "Method not allowed");

/** `/admin/oauth/clients...`. */
async function admin(ctx: AuthContext, req: Request, rest: string): Promise<Response> {
  if (rest === "") {
    if (req.method === "POST") {
      const params = readClientParams(await readBody(req));
      return sendJson(201, await registerClient(ctx.sql, params, "manual"));
    }
    if (req.method !== "GET") throw methodNotAllowed();
    const clients = (await listClients(ctx.sql)).map((c) => clientJson(c));
    return sendJson(200, clients.length > 0 ? { clients } : {});
  }
  const [, id, action, extra] = rest.split("/");
  if (extra !== undefined || id === undefined) throw new AuthError(404, "not_found", "Not Found");
  if (!isUuid(id)) throw validationFailed("invalid client_id format");
  const client = await findClient(ctx.sql, id);
  if (client === undefined) {
    throw new AuthError(404, "oauth_client_not_found", "OAuth client not found");
  }
  if (action === "regenerate_secret") {
    if (req.method !== "POST") throw methodNotAllowed();
    return sendJson(200, await regenerateSecret(ctx.sql, client));
  }
  if (action !== undefined && action !== "") throw new AuthError(404, "not_found", "Not Found");
  switch (req.method) {
    case "GET":
      return sendJson(200, clientJson(client));
    case "PUT": {
      const params = readClientParams(await readBody(req));
      return sendJson(200, clientJson(await updateClient(ctx.sql, client, params)));
    }
    case "DELETE":
      await deleteClient(ctx.sql, client.id);
      return noContent();
    default:
      throw methodNotAllowed();
  }
}

/** A client body: Supabase Auth's decoder answers 400 `bad_json` "Invalid JSON body" otherwise. */
function readBody(req: Request): Promise<Record<string, unknown>> {
  return readStrictJson(req, "Invalid JSON body");
}

/** `GET /user/oauth/grants`: the user's active consents with their clients, newest first. */
async function listGrants(ctx: AuthContext, userId: string): Promise<Response> {
  const rows = await ctx.sql<
    {
      id: string;
      client_name: string | null;
      client_uri: string | null;
      logo_uri: string | null;
      scopes: string;
      granted_at: Date;
    }[]
  >`
    select c.id, c.client_name, c.client_uri, c.logo_uri, g.scopes, g.granted_at
      from auth.oauth_consents g
      join auth.oauth_clients c on c.id = g.client_id and c.deleted_at is null
     where g.user_id = ${userId} and g.revoked_at is null
     order by g.granted_at desc`;
  return sendJson(
    200,
    rows.map((r) => ({
      client: clientSummary(r),
      scopes: scopeList(r.scopes),
      granted_at: r.granted_at.toISOString(),
    })),
  );
}

/**
 * `DELETE /user/oauth/grants?client_id=`: revokes the consent and deletes the client's sessions
 * of the user, so their refresh tokens fail (issued access tokens stay valid until they expire).
 */
async function revokeGrant(ctx: AuthContext, userId: string, url: URL): Promise<Response> {
  const clientId = url.searchParams.get("client_id") ?? "";
  if (clientId === "") throw validationFailed("client_id query parameter is required");
  if (!isUuid(clientId)) throw validationFailed("invalid client_id format");
  const revoked = await ctx.sql.begin(async (tx) => {
    const rows = await tx`
      update auth.oauth_consents set revoked_at = now()
       where user_id = ${userId} and client_id = ${clientId} and revoked_at is null
      returning id`;
    if (rows.length === 0) return false;
    await tx`delete from auth.sessions where user_id = ${userId} and oauth_client_id = ${clientId}`;
    return true;
  });
  if (!revoked) {
    throw new AuthError(404, "oauth_consent_not_found", "No active grant found for this client");
  }
  return noContent();
}

/** The OAuth server's answer for `path` (under `/auth/v1`), or undefined if it is not its own. */
export async function oauthRoute(
  ctx: AuthContext,
  req: Request,
  url: URL,
  path: string,
): Promise<Response | undefined> {
  const only = (method: string) => {
    if (req.method !== method) throw methodNotAllowed();
  };
  const disabled = () => new AuthError(404, "feature_disabled", "OAuth server is disabled");
  if (path === "/.well-known/openid-configuration") {
    only("GET");
    return discovery(ctx);
  }
  if (path === "/.well-known/oauth-authorization-server") {
    only("GET");
    if (!ctx.oauthServer.enabled) throw disabled();
    return discovery(ctx);
  }
  if (path === "/user/oauth/grants") {
    const { user } = await authenticate(ctx, req);
    if (!ctx.oauthServer.enabled) throw disabled();
    if (req.method === "GET") return await listGrants(ctx, user.id);
    only("DELETE");
    return await revokeGrant(ctx, user.id, url);
  }
  const adminPath = /^\/admin\/oauth\/clients(\/.*)?$/.exec(path);
  if (adminPath) {
    await requireAdmin(req);
    if (!ctx.oauthServer.enabled) throw disabled();
    return await admin(ctx, req, (adminPath[1] ?? "").replace(/\/$/, ""));
  }
  if (!path.startsWith("/oauth/")) return undefined;
  if (!ctx.oauthServer.enabled) throw disabled();
  const authorization = /^\/oauth\/authorizations\/([^/]+)(\/consent)?$/.exec(path);
  if (authorization) {
    const id = decodeURIComponent(authorization[1]!);
    if (authorization[2] === undefined) {
      only("GET");
      return await getAuthorization(ctx, req, id);
    }
    only("POST");
    return await consent(ctx, req, id);
  }
  switch (path) {
    case "/oauth/authorize":
      only("GET");
      return await authorize(ctx, url);
    case "/oauth/token":
      only("POST");
      return await token(ctx, req);
    case "/oauth/userinfo":
      only("GET");
      return await userInfo(ctx, req);
    case "/oauth/clients/register": {
      only("POST");
      if (!ctx.oauthServer.allowDynamicRegistration) {
        throw new AuthError(
          403,
          "oauth_dynamic_client_registration_disabled",
          "Dynamic client registration is not enabled",
        );
      }
      const params = readClientParams(await readBody(req));
      return sendJson(201, await registerClient(ctx.sql, params, "dynamic"));
    }
    default:
      return undefined;
  }
}
