/**
 * Passwordless sign-in of the local Auth stand-in, as Supabase Auth serves it: `POST /otp` mails
 * a code and a magic link (to the local mailbox), `POST /verify` takes the code, `GET /verify`
 * is the link (a 303 to the redirect URL with the session in the fragment, or with `?code=` for a
 * PKCE flow), `POST /token?grant_type=pkce` exchanges that code.
 *
 * @module
 */
import type { AuthContext } from "./context.ts";
import { AuthError, readEmail, seeOther, sendJson, stringField, validationFailed } from "./http.ts";
import {
  consumeOtp,
  createOtp,
  exchangeAuthCode,
  issueAuthCode,
  readChallenge,
  tokenHash,
} from "./otp.ts";
import { startSession } from "./sessions.ts";
import { findUserByEmail, insertUser } from "./store.ts";

/**
 * The redirect URL a request may use: `redirect_to` if it is on the Site URL's origin or starts
 * with an allowed redirect URL (Supabase Auth's allow list), else the Site URL.
 */
export function allowedRedirect(ctx: AuthContext, requested: string | null): string {
  if (requested === null || requested === "") return ctx.siteUrl;
  let url: URL;
  try {
    url = new URL(requested);
  } catch {
    return ctx.siteUrl;
  }
  if (url.origin === new URL(ctx.siteUrl).origin) return url.href;
  if (ctx.redirectUrls.some((allowed) => allowed !== "" && url.href.startsWith(allowed))) {
    return url.href;
  }
  return ctx.siteUrl;
}

/**
 * Supabase Auth's `IsRedirectURLValid`, which also vets the `Origin` of the OAuth consent
 * endpoints: the Site URL's scheme and host (any port on a loopback host), any loopback IP, or a
 * URL starting with an allowed redirect URL.
 */
export function isRedirectUrlValid(ctx: AuthContext, candidate: string): boolean {
  let url: URL;
  let site: URL;
  try {
    url = new URL(candidate);
    site = new URL(ctx.siteUrl);
  } catch {
    return false;
  }
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
  if (
    url.hostname === site.hostname && url.protocol === site.protocol &&
    (url.port === site.port || loopback)
  ) {
    return true;
  }
  if (/^\d+$/.test(url.hostname)) return false;
  if (/^[\d.]+$/.test(url.hostname) || url.hostname.startsWith("[")) {
    return url.hostname.startsWith("127.") || url.hostname === "[::1]";
  }
  return ctx.redirectUrls.some((allowed) => allowed !== "" && candidate.startsWith(allowed));
}

/** `POST /otp`: a code and a link by mail; creates the user unless `create_user` is false. */
export async function sendOtp(
  ctx: AuthContext,
  body: Record<string, unknown>,
  url: URL,
): Promise<Response> {
  const email = readEmail(body);
  const challenge = readChallenge(
    stringField(body, "code_challenge"),
    stringField(body, "code_challenge_method"),
  );
  const data = body["data"];
  const metadata = data !== null && typeof data === "object" && !Array.isArray(data)
    ? data as Record<string, unknown>
    : {};
  let user = await findUserByEmail(ctx.sql, email);
  let type: "magiclink" | "signup" = "magiclink";
  if (user === undefined) {
    if (body["create_user"] === false) {
      throw new AuthError(422, "otp_disabled", "Signups not allowed for otp");
    }
    user = await insertUser(ctx.sql, email, null, metadata, false) ??
      await findUserByEmail(ctx.sql, email);
    if (user === undefined) throw new Error("user not created");
    type = "signup";
  }
  if (user.banned) throw new AuthError(403, "user_banned", "User is banned");
  const redirect = allowedRedirect(ctx, url.searchParams.get("redirect_to"));
  const { otp, linkToken } = await createOtp(ctx.sql, user.json.id, email, type, challenge);
  const link = new URL(`${ctx.issuer}/verify`);
  link.searchParams.set("token", linkToken);
  link.searchParams.set("type", type);
  link.searchParams.set("redirect_to", redirect);
  const subject = type === "signup" ? "Confirm your signup" : "Your Magic Link";
  ctx.mailbox.send({
    to: email,
    subject,
    text: `Follow this link to sign in:\n${link.href}\n\nOr enter this code: ${otp}\n`,
    link: link.href,
    otp,
  });
  return sendJson(200, {});
}

const VERIFY_TYPES = new Set(["email", "magiclink", "signup"]);

/** `POST /verify` with `{type, email, token}` or `{type, token_hash}`: the session. */
export async function verifyPost(
  ctx: AuthContext,
  body: Record<string, unknown>,
): Promise<Response> {
  const type = stringField(body, "type");
  if (type === "") throw validationFailed("Verify requires a verification type");
  const token = stringField(body, "token");
  const hash = stringField(body, "token_hash");
  if (token === "" && hash === "") {
    throw validationFailed("Verify requires a token or a token hash");
  }
  if (token !== "" && hash !== "") {
    throw validationFailed("Verify requires either a token or a token hash");
  }
  if (!VERIFY_TYPES.has(type)) throw validationFailed("Unsupported verification type");
  const lookup = hash !== "" ? hash : tokenHash(readEmail(body), token.trim());
  const { userId } = await consumeOtp(ctx.sql, lookup, "Token has expired or is invalid");
  const method = type === "magiclink" ? "magiclink" : "otp";
  return sendJson(
    200,
    await startSession(ctx, userId, method),
  );
}

/** Adds parameters to a URL's query or fragment. */
function withParams(base: string, where: "query" | "fragment", params: Record<string, string>) {
  const url = new URL(base);
  if (where === "query") {
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  } else {
    url.hash = new URLSearchParams(params).toString();
  }
  return url.href;
}

/** `GET /verify?token=&type=&redirect_to=`: the magic link. */
export async function verifyLink(ctx: AuthContext, url: URL): Promise<Response> {
  const redirect = allowedRedirect(ctx, url.searchParams.get("redirect_to"));
  const token = url.searchParams.get("token") ?? "";
  const type = url.searchParams.get("type") ?? "";
  const pkce = token.startsWith("pkce_");
  try {
    if (!VERIFY_TYPES.has(type)) throw validationFailed("Unsupported verification type");
    const { userId } = await consumeOtp(
      ctx.sql,
      pkce ? token.slice(5) : token,
      "Email link is invalid or has expired",
    );
    if (pkce) {
      const code = await issueAuthCode(ctx.sql, userId);
      if (code === undefined) {
        throw new AuthError(400, "flow_state_not_found", "No associated flow state found.");
      }
      return seeOther(withParams(redirect, "query", { code }));
    }
    const session = await startSession(ctx, userId, "magiclink");
    return seeOther(withParams(redirect, "fragment", {
      access_token: session.access_token,
      expires_at: String(session.expires_at),
      expires_in: String(session.expires_in),
      refresh_token: session.refresh_token,
      token_type: "bearer",
      type,
    }));
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    const params = {
      error: error.status === 403 ? "access_denied" : "invalid_request",
      error_code: error.code,
      error_description: error.message,
    };
    return seeOther(withParams(redirect, pkce ? "query" : "fragment", params));
  }
}

/** `POST /token?grant_type=pkce` with `{auth_code, code_verifier}`: the session. */
export async function exchangePkce(
  ctx: AuthContext,
  body: Record<string, unknown>,
): Promise<Response> {
  const authCode = stringField(body, "auth_code");
  const verifier = stringField(body, "code_verifier");
  if (authCode === "" || verifier === "") {
    throw validationFailed("invalid request: both auth code and code verifier should be non-empty");
  }
  const { userId, method } = await exchangeAuthCode(ctx.sql, authCode, verifier);
  const session = await startSession(ctx, userId, method === "magiclink" ? "magiclink" : "otp");
  return sendJson(200, session);
}
