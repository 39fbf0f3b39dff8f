/**
 * The authorization step of the local Auth stand-in's OAuth 2.1 server, as Supabase Auth serves
 * it:
 *
 * - `GET /oauth/authorize`: checks the client and the exact redirect URI (errors as JSON, never
 *   redirected), then the rest (response type, scopes, PKCE with S256 or plain: errors redirected
 *   to the client with `error=invalid_request`), stores a pending authorization valid 10 minutes
 *   and sends the browser (302) to the Site URL + authorization path with `?authorization_id=`;
 * - `GET /oauth/authorizations/{id}` (the user's token): claims the authorization for the user
 *   and answers what to consent to, or, when the user's consent already covers the scopes, approves
 *   at once and answers only `{redirect_url}`;
 * - `POST /oauth/authorizations/{id}/consent` with `{action: "approve" | "deny"}`: `{redirect_url}`
 *   with `code` (and `state`), or `error=access_denied`; approving records the consent.
 *
 * @module
 */
import type postgres from "postgres";
import { AuthError, readStrictJson, sendJson, validationFailed } from "./http.ts";
import { type AuthContext, authenticate } from "./context.ts";
import {
  type ClientRow,
  clientSummary,
  findClient,
  isUuid,
  redirectUris,
} from "./oauth_clients.ts";
import { isRedirectUrlValid } from "./verify.ts";

/** A stored authorization request. */
interface AuthorizationRow {
  id: string;
  authorization_id: string;
  client_id: string;
  user_id: string | null;
  redirect_uri: string;
  scope: string;
  state: string | null;
  status: "pending" | "approved" | "denied" | "expired";
  authorization_code: string | null;
  expired: boolean;
}

/** A 302 to `location`, as Go's `http.Redirect` answers. */
function found(location: string): Response {
  return new Response(null, {
    status: 302,
    headers: { Location: location, "Cache-Control": "no-store" },
  });
}

function withQuery(uri: string, params: Record<string, string | null | undefined>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v) url.searchParams.set(k, v);
  return url.href;
}

function errorRedirect(uri: string, error: string, description: string, state: string | null) {
  return withQuery(uri, { error, error_description: description, state });
}

/** The scopes Supabase Auth's OAuth server knows (identity scopes only). */
export const OAUTH_SCOPES = ["openid", "profile", "email", "phone", "offline_access"];

/** The space-separated scope string's scopes. */
export function scopeList(scope: string): string[] {
  return scope.trim().split(" ").map((s) => s.trim()).filter((s) => s !== "");
}

/** Why the rest of an authorization request is refused (redirected to the client), if it is. */
function requestProblem(q: URLSearchParams, scope: string): string | undefined {
  const responseType = q.get("response_type") || "code";
  if (responseType !== "code") return "only response_type=code is supported";
  const scopes = scopeList(scope);
  if (scopes.length === 0) return "scope parameter cannot be empty";
  const unsupported = scopes.find((s) => !OAUTH_SCOPES.includes(s));
  if (unsupported !== undefined) return `unsupported scope: ${unsupported}`;
  const resource = q.get("resource") ?? "";
  if (resource !== "") {
    let url: URL;
    try {
      url = new URL(resource);
    } catch {
      return "resource must be an absolute URI";
    }
    if (url.hash !== "") return "resource must not include a fragment component";
    if (url.search !== "") return "resource must not include a query component";
  }
  const challenge = q.get("code_challenge") ?? "";
  const method = q.get("code_challenge_method") ?? "";
  if (challenge === "" || method === "") {
    return "PKCE flow requires both code_challenge and code_challenge_method";
  }
  if (method.toLowerCase() !== "s256" && method.toLowerCase() !== "plain") {
    return "code_challenge_method must be 'S256' or 'plain'";
  }
  if (challenge.length < 43 || challenge.length > 128) {
    return "code_challenge must be between 43 and 128 characters";
  }
  return undefined;
}

/** 32 random characters of base32's alphabet, as Supabase Auth's authorization ids. */
function authorizationId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => alphabet[b & 31]).join("");
}

/** `GET /oauth/authorize`. */
export async function authorize(ctx: AuthContext, url: URL): Promise<Response> {
  const q = url.searchParams;
  const clientId = q.get("client_id") ?? "";
  const redirectUri = q.get("redirect_uri") ?? "";
  if (clientId === "") throw validationFailed("client_id is required");
  if (redirectUri === "") throw validationFailed("redirect_uri is required");
  if (!isUuid(clientId)) {
    throw new AuthError(400, "oauth_client_not_found", "invalid client_id format");
  }
  const client = await findClient(ctx.sql, clientId);
  if (client === undefined) throw new AuthError(400, "oauth_client_not_found", "invalid client_id");
  if (!redirectUris(client).includes(redirectUri)) throw validationFailed("invalid redirect_uri");

  const state = q.get("state") || null;
  const scope = q.get("scope") || ctx.oauthServer.defaultScope;
  const problem = requestProblem(q, scope);
  if (problem !== undefined) {
    return found(errorRedirect(redirectUri, "invalid_request", problem, state));
  }
  const id = authorizationId();
  await ctx.sql`
    insert into auth.oauth_authorizations (id, authorization_id, client_id, redirect_uri, scope,
      state, resource, code_challenge, code_challenge_method, nonce, created_at, expires_at)
    values (gen_random_uuid(), ${id}, ${client.id}, ${redirectUri}, ${scope}, ${state},
      ${q.get("resource") || null}, ${q.get("code_challenge")},
      ${q.get("code_challenge_method")!.toLowerCase()}, ${q.get("nonce") || null}, now(),
      now() + make_interval(secs => ${ctx.oauthServer.authorizationTtlSeconds}))`;
  if (ctx.oauthServer.authorizationPath === "") {
    return found(
      errorRedirect(redirectUri, "server_error", "oauth authorization path not configured", state),
    );
  }
  const path = ctx.oauthServer.authorizationPath.replace(/^\/?/, "/");
  return found(`${ctx.siteUrl.replace(/\/+$/, "")}${path}?authorization_id=${id}`);
}

/** Requests from a browser must come from the Site URL (or an allowed redirect URL). */
function checkOrigin(ctx: AuthContext, req: Request): void {
  const origin = req.headers.get("Origin");
  if (origin !== null && origin !== "" && !isRedirectUrlValid(ctx, origin)) {
    throw validationFailed("unauthorized request origin");
  }
}

const notFound = () =>
  new AuthError(404, "oauth_authorization_not_found", "authorization not found");

/**
 * The authorization, locked for the transaction, that `userId` may act on; an expired one is
 * marked expired (committed) and is not found.
 */
async function lockAuthorization(
  sql: postgres.Sql,
  authorizationIdParam: string,
  work: (tx: postgres.TransactionSql, row: AuthorizationRow) => Promise<Response>,
): Promise<Response> {
  const outcome = await sql.begin(async (tx) => {
    const [row] = await tx<AuthorizationRow[]>`
      select id, authorization_id, client_id, user_id, redirect_uri, scope, state, status,
             authorization_code, expires_at < now() as expired
        from auth.oauth_authorizations where authorization_id = ${authorizationIdParam}
       limit 1 for update skip locked`;
    if (row === undefined) throw notFound();
    if (row.expired) {
      if (row.status === "pending") {
        await tx`update auth.oauth_authorizations set status = 'expired' where id = ${row.id}`;
      }
      return undefined;
    }
    return await work(tx, row);
  });
  if (outcome === undefined) throw notFound();
  return outcome;
}

function codeRedirect(row: AuthorizationRow, code: string): string {
  return withQuery(row.redirect_uri, { code, state: row.state });
}

async function approve(tx: postgres.TransactionSql, row: AuthorizationRow): Promise<string> {
  const code = crypto.randomUUID();
  await tx`update auth.oauth_authorizations
              set status = 'approved', approved_at = now(), authorization_code = ${code}
            where id = ${row.id}`;
  return code;
}

/** Whether the user's active consent to the client covers every requested scope. */
async function consentCovers(
  tx: postgres.TransactionSql,
  userId: string,
  clientId: string,
  scope: string,
): Promise<boolean> {
  const [consent] = await tx<{ scopes: string }[]>`
    select scopes from auth.oauth_consents
     where user_id = ${userId} and client_id = ${clientId} and revoked_at is null`;
  if (consent === undefined) return false;
  const granted = new Set(scopeList(consent.scopes));
  return scopeList(scope).every((s) => granted.has(s));
}

/** `GET /oauth/authorizations/{id}`. */
export async function getAuthorization(
  ctx: AuthContext,
  req: Request,
  id: string,
): Promise<Response> {
  const { user } = await authenticate(ctx, req);
  checkOrigin(ctx, req);
  return await lockAuthorization(ctx.sql, id, async (tx, row) => {
    if (row.status !== "pending") {
      throw validationFailed("authorization request cannot be processed");
    }
    if (row.user_id === null) {
      await tx`update auth.oauth_authorizations set user_id = ${user.id} where id = ${row.id}`;
      if (await consentCovers(tx, user.id, row.client_id, row.scope)) {
        return sendJson(200, { redirect_url: codeRedirect(row, await approve(tx, row)) });
      }
    } else if (row.user_id !== user.id) {
      throw notFound();
    }
    const client: ClientRow | undefined = await findClient(tx, row.client_id);
    if (client === undefined) throw notFound();
    return sendJson(200, {
      authorization_id: row.authorization_id,
      redirect_uri: row.redirect_uri,
      client: clientSummary(client),
      user: { id: user.id, email: user.email || undefined },
      scope: row.scope,
    });
  });
}

/** `POST /oauth/authorizations/{id}/consent`. */
export async function consent(ctx: AuthContext, req: Request, id: string): Promise<Response> {
  const { user } = await authenticate(ctx, req);
  checkOrigin(ctx, req);
  const body = await readStrictJson(req, "invalid JSON body");
  const action = body["action"];
  if (action !== "approve" && action !== "deny") {
    throw validationFailed("action must be 'approve' or 'deny'");
  }
  return await lockAuthorization(ctx.sql, id, async (tx, row) => {
    if (row.status !== "pending") {
      throw validationFailed("authorization request is no longer pending");
    }
    if (row.user_id !== user.id) throw notFound();
    if (action === "deny") {
      await tx`update auth.oauth_authorizations set status = 'denied' where id = ${row.id}`;
      const to = errorRedirect(
        row.redirect_uri,
        "access_denied",
        "User denied the request",
        row.state,
      );
      return sendJson(200, { redirect_url: to });
    }
    const code = await approve(tx, row);
    const scopes = scopeList(row.scope).join(" ");
    await tx`
      insert into auth.oauth_consents (id, user_id, client_id, scopes)
      values (gen_random_uuid(), ${user.id}, ${row.client_id}, ${scopes})
      on conflict (user_id, client_id) do update
        set scopes = excluded.scopes, granted_at = now(), revoked_at = null`;
    return sendJson(200, { redirect_url: codeRedirect(row, code) });
  });
}
