/**
 * Sessions of the local Auth stand-in, as Supabase Auth keeps them: a session per sign-in, an
 * access token (ES256, `tools/local_auth.ts`) naming it in `session_id`, and a refresh token that
 * rotates on every use. A used refresh token answers once more within 10 s (Supabase Auth's reuse
 * interval, for concurrent refreshes) with the session's current token; later, it is "Already
 * Used" and the whole session is revoked, as rotation with reuse detection does. Refresh tokens
 * last 7 days (the seed's figure).
 *
 * A session started by the OAuth 2.1 server (`oauth_token.ts`) belongs to a client: its
 * `oauth_client_id` and `scopes` become the access tokens' `client_id` and `scope` claims, and
 * only that client may refresh it (through `/oauth/token`, never `/token`). How a session signed
 * in is kept in `auth.mfa_amr_claims`, so its tokens' `amr` stays the same across refreshes.
 *
 * @module
 */
import type postgres from "postgres";
import { mintAccessToken, OAUTH_CODE_METHOD } from "../local_auth.ts";
import { AuthError, OAuthError } from "./http.ts";
import { type AuthUser, findUserById, randomToken, recordSignIn } from "./store.ts";

/** Lifetime of a refresh token: 7 days, as the seed says. */
export const REFRESH_TOKEN_LIFETIME_S = 7 * 24 * 3600;
/** Supabase Auth's default reuse interval of a rotated refresh token. */
export const REFRESH_REUSE_INTERVAL_S = 10;

/** A session as Supabase Auth returns it from `/token` and `/verify`. */
export interface SessionJson {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: AuthUser;
}

/** How a session is signed in (`amr` method), and the access token's lifetime. */
export interface IssueOptions {
  method: "password" | "otp" | "magiclink" | typeof OAUTH_CODE_METHOD;
  ttlSeconds: number;
  issuer: string;
}

/** The OAuth client a session belongs to, and the scopes granted to it (space-separated). */
export interface OAuthSession {
  clientId: string;
  scopes: string;
}

/** What an access token says of its session: sign-in method and time, OAuth client. */
interface SessionClaims {
  method: string;
  signedInAt: number;
  oauth: OAuthSession | undefined;
}

async function accessToken(
  user: AuthUser,
  sessionId: string,
  session: SessionClaims,
  options: Omit<IssueOptions, "method">,
): Promise<{ token: string; expiresAt: number }> {
  const iat = Math.floor(Date.now() / 1000);
  const token = await mintAccessToken({
    userId: user.id,
    email: user.email,
    ttlSeconds: options.ttlSeconds,
    issuer: options.issuer,
    sessionId,
    extraClaims: {
      amr: [{ method: session.method, timestamp: session.signedInAt }],
      user_metadata: user.user_metadata,
      app_metadata: user.app_metadata,
      ...(session.oauth && { client_id: session.oauth.clientId, scope: session.oauth.scopes }),
    },
  });
  return { token, expiresAt: iat + options.ttlSeconds };
}

function sessionJson(
  access: { token: string; expiresAt: number },
  refreshToken: string,
  user: AuthUser,
  ttlSeconds: number,
): SessionJson {
  return {
    access_token: access.token,
    token_type: "bearer",
    expires_in: ttlSeconds,
    expires_at: access.expiresAt,
    refresh_token: refreshToken,
    user,
  };
}

/** Starts a session for a user who just proved who they are, with the request's settings. */
export function startSession(
  ctx: { sql: postgres.Sql; ttl: number; issuer: string },
  userId: string,
  method: IssueOptions["method"],
): Promise<SessionJson> {
  return issueSession(ctx.sql, userId, { method, ttlSeconds: ctx.ttl, issuer: ctx.issuer });
}

/**
 * Starts a session for a user who just proved who they are; with `oauth`, a session of that
 * OAuth client (the code exchange of `/oauth/token`).
 */
export async function issueSession(
  sql: postgres.Sql,
  userId: string,
  options: IssueOptions,
  oauth?: OAuthSession,
): Promise<SessionJson> {
  const user = (await recordSignIn(sql, userId)).json;
  const sessionId = crypto.randomUUID();
  const refreshToken = randomToken(18);
  const signedInAt = await sql.begin(async (tx) => {
    await tx`insert into auth.sessions (id, user_id, oauth_client_id, scopes)
             values (${sessionId}, ${userId}, ${oauth?.clientId ?? null},
                     ${oauth?.scopes ?? null})`;
    const [amr] = await tx<{ at: string }[]>`
      insert into auth.mfa_amr_claims (session_id, authentication_method)
      values (${sessionId}, ${options.method})
      returning floor(extract(epoch from updated_at))::int8 as at`;
    await tx`insert into auth.refresh_tokens (token, user_id, session_id)
             values (${refreshToken}, ${userId}, ${sessionId})`;
    return Number(amr!.at);
  });
  const claims = { method: options.method, signedInAt, oauth };
  const access = await accessToken(user, sessionId, claims, options);
  return sessionJson(access, refreshToken, user, options.ttlSeconds);
}

interface RefreshRow {
  id: string;
  token: string;
  user_id: string;
  session_id: string;
  revoked: boolean;
  created_at: Date;
  updated_at: Date;
}

/** The client a session belongs to, and the scopes it was granted. */
async function sessionClient(
  tx: postgres.TransactionSql,
  sessionId: string,
): Promise<OAuthSession | undefined> {
  const [session] = await tx<{ oauth_client_id: string | null; scopes: string | null }[]>`
    select oauth_client_id, scopes from auth.sessions where id = ${sessionId}`;
  if (session?.oauth_client_id == null) return undefined;
  return { clientId: session.oauth_client_id, scopes: session.scopes ?? "" };
}

/**
 * The refreshing client must be the session's: an OAuth session's tokens are refreshed by their
 * client only (`client` its authenticated id), a user's own session by no client (`null`).
 */
function checkRefreshingClient(oauth: OAuthSession | undefined, client: string | null): void {
  if (oauth !== undefined) {
    if (client === null) {
      throw new OAuthError("invalid_client", "Client authentication required for OAuth session");
    }
    if (client !== oauth.clientId) {
      throw new OAuthError("invalid_client", "Client does not match the session's OAuth client");
    }
  } else if (client !== null) {
    throw new OAuthError(
      "invalid_client",
      "Client authentication not allowed for non-OAuth session",
    );
  }
}

/**
 * Exchanges a refresh token for a new session token pair (rotation). `client` is the OAuth
 * client that authenticated at `/oauth/token`, `null` at `/token`.
 */
export async function refreshSession(
  sql: postgres.Sql,
  refreshToken: string,
  options: Omit<IssueOptions, "method">,
  client: string | null = null,
): Promise<SessionJson> {
  const outcome = await sql.begin(async (tx) => {
    const [row] = await tx<RefreshRow[]>`
      select id, token, user_id, session_id, revoked, created_at, updated_at
        from auth.refresh_tokens where token = ${refreshToken} for update`;
    if (row === undefined) {
      throw new AuthError(
        400,
        "refresh_token_not_found",
        "Invalid Refresh Token: Refresh Token Not Found",
      );
    }
    if (Date.now() - row.created_at.getTime() > REFRESH_TOKEN_LIFETIME_S * 1000) {
      await tx`delete from auth.sessions where id = ${row.session_id}`;
      return { expired: true as const };
    }
    const oauth = await sessionClient(tx, row.session_id);
    checkRefreshingClient(oauth, client);
    const [amr] = await tx<{ authentication_method: string; at: string }[]>`
      select authentication_method, floor(extract(epoch from updated_at))::int8 as at
        from auth.mfa_amr_claims where session_id = ${row.session_id}
       order by updated_at desc limit 1`;
    const claims: SessionClaims = {
      method: amr?.authentication_method ?? "password",
      signedInAt: Number(amr?.at ?? Math.floor(Date.now() / 1000)),
      oauth,
    };
    let next: string;
    if (row.revoked) {
      const [child] = await tx<{ token: string }[]>`
        select token from auth.refresh_tokens
         where session_id = ${row.session_id} and not revoked order by id desc limit 1`;
      const withinReuse = Date.now() - row.updated_at.getTime() <=
        REFRESH_REUSE_INTERVAL_S * 1000;
      if (child === undefined || !withinReuse) {
        await tx`delete from auth.sessions where id = ${row.session_id}`;
        return { reused: true as const };
      }
      next = child.token;
    } else {
      next = randomToken(18);
      await tx`update auth.refresh_tokens set revoked = true, updated_at = now()
                where id = ${row.id}`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id, parent)
               values (${next}, ${row.user_id}, ${row.session_id}, ${row.token})`;
      await tx`update auth.sessions set updated_at = now() where id = ${row.session_id}`;
    }
    return { next, userId: row.user_id, sessionId: row.session_id, claims };
  });
  if ("expired" in outcome) {
    throw new AuthError(400, "session_expired", "Invalid Refresh Token: Session Expired");
  }
  if ("reused" in outcome) {
    throw new AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used");
  }
  const user = await findUserById(sql, outcome.userId);
  if (user === undefined) {
    throw new AuthError(
      400,
      "refresh_token_not_found",
      "Invalid Refresh Token: Refresh Token Not Found",
    );
  }
  if (user.banned) throw new AuthError(400, "user_banned", "Invalid Refresh Token: User Banned");
  const access = await accessToken(user.json, outcome.sessionId, outcome.claims, options);
  return sessionJson(access, outcome.next, user.json, options.ttlSeconds);
}

/** Whether a session exists (an access token's `session_id` after sign-out does not). */
export async function sessionExists(sql: postgres.Sql, sessionId: string): Promise<boolean> {
  const rows = await sql`select 1 from auth.sessions where id = ${sessionId}`;
  return rows.length > 0;
}

/** Ends sessions as `/logout?scope=` says: this one, every one, or every other one. */
export async function endSessions(
  sql: postgres.Sql,
  userId: string,
  sessionId: string | undefined,
  scope: "global" | "local" | "others",
): Promise<void> {
  if (scope === "local" && sessionId !== undefined) {
    await sql`delete from auth.sessions where id = ${sessionId}`;
  } else if (scope === "others" && sessionId !== undefined) {
    await sql`delete from auth.sessions where user_id = ${userId} and id <> ${sessionId}`;
  } else {
    await sql`delete from auth.sessions where user_id = ${userId}`;
  }
}
