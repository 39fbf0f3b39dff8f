/**
 * Email one-time tokens and PKCE flow states of the local Auth stand-in, as Supabase Auth makes
 * them: a 6-digit code, stored only as the hex SHA-224 of email + code (Supabase Auth's token
 * hash, which is also the `token` of the magic link), valid one hour and used once. A request with
 * a PKCE code challenge gets a flow state; its magic link carries `pkce_<hash>`, and following it
 * yields an auth code that `/token?grant_type=pkce` exchanges once, with the code verifier,
 * within 5 minutes.
 *
 * @module
 */
import type postgres from "postgres";
import { sha224 } from "@noble/hashes/sha2";
import { base64url } from "jose";
import { AuthError, validationFailed } from "./http.ts";
import { randomToken } from "./store.ts";

/** How long a code or link is valid (Supabase Auth's default `mailer_otp_exp`). */
export const OTP_LIFETIME_S = 3600;
/** How long an auth code of a PKCE flow may wait for its exchange. */
export const FLOW_STATE_LIFETIME_S = 300;
/** How often one email may be sent a code (Supabase Auth's default). */
export const OTP_RESEND_INTERVAL_S = 60;

/** Supabase Auth's token hash: hex SHA-224 of the email and the code. */
export function tokenHash(email: string, otp: string): string {
  const digest = sha224(new TextEncoder().encode(email + otp));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Six random digits. */
function sixDigits(): string {
  const n = crypto.getRandomValues(new Uint32Array(1))[0]! % 1_000_000;
  return n.toString().padStart(6, "0");
}

/** A PKCE challenge as the client sends it, checked as Supabase Auth checks it. */
export interface Challenge {
  challenge: string;
  method: "s256" | "plain";
}

/** The challenge of a request body, undefined without one; 400 if half given or malformed. */
export function readChallenge(challenge: string, method: string): Challenge | undefined {
  if (challenge === "" && method === "") return undefined;
  if (challenge === "" || method === "") {
    throw validationFailed("PKCE flow requires code_challenge_method and code_challenge");
  }
  const lower = method.toLowerCase();
  if (lower !== "s256" && lower !== "plain") {
    throw validationFailed(`code challenge method not supported: ${method}`);
  }
  if (challenge.length < 43 || challenge.length > 128) {
    throw validationFailed("code challenge has to be between 43 and 128 characters");
  }
  if (!/^[A-Za-z0-9._~-]+$/.test(challenge)) {
    throw validationFailed(
      "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
    );
  }
  return { challenge, method: lower };
}

/**
 * Makes a one-time token for the user (replacing earlier ones of that kind), with a flow state
 * when a challenge is given. Returns the code and the link's token. 429 if one was made for
 * this user within the last minute.
 */
export async function createOtp(
  sql: postgres.Sql,
  userId: string,
  email: string,
  type: "magiclink" | "signup",
  challenge: Challenge | undefined,
): Promise<{ otp: string; linkToken: string }> {
  const otp = sixDigits();
  const hash = tokenHash(email, otp);
  await sql.begin(async (tx) => {
    const [recent] = await tx<{ age: number }[]>`
      select extract(epoch from now() - created_at)::float8 as age from auth.one_time_tokens
       where user_id = ${userId} order by created_at desc limit 1 for update`;
    if (recent !== undefined && recent.age < OTP_RESEND_INTERVAL_S) {
      const left = Math.ceil(OTP_RESEND_INTERVAL_S - recent.age);
      throw new AuthError(
        429,
        "over_email_send_rate_limit",
        `For security purposes, you can only request this after ${left} seconds.`,
      );
    }
    await tx`delete from auth.one_time_tokens where user_id = ${userId}`;
    await tx`insert into auth.one_time_tokens (user_id, token_type, token_hash, relates_to)
             values (${userId}, ${type}, ${hash}, ${email})`;
    await tx`delete from auth.flow_state where user_id = ${userId} and auth_code_issued_at is null`;
    if (challenge !== undefined) {
      await tx`insert into auth.flow_state
                 (user_id, auth_code, code_challenge, code_challenge_method, authentication_method)
               values (${userId}, ${randomToken(18)}, ${challenge.challenge}, ${challenge.method},
                       ${type === "signup" ? "email/signup" : "magiclink"})`;
    }
  });
  return { otp, linkToken: challenge === undefined ? hash : `pkce_${hash}` };
}

/**
 * Uses a one-time token, found by its hash (a link) or by email and code: its user id, or a 403
 * `otp_expired` as Supabase Auth answers for a wrong, used or expired one.
 */
export async function consumeOtp(
  sql: postgres.Sql,
  hash: string,
  message: string,
): Promise<{ userId: string; type: string }> {
  const [row] = await sql<{ user_id: string; token_type: string; age: number }[]>`
    delete from auth.one_time_tokens where token_hash = ${hash}
    returning user_id, token_type, extract(epoch from now() - created_at)::float8 as age`;
  if (row === undefined || row.age > OTP_LIFETIME_S) {
    throw new AuthError(403, "otp_expired", message);
  }
  return { userId: row.user_id, type: row.token_type };
}

/** The auth code of the user's pending flow state, now issued; undefined without one. */
export async function issueAuthCode(
  sql: postgres.Sql,
  userId: string,
): Promise<string | undefined> {
  const [row] = await sql<{ auth_code: string }[]>`
    update auth.flow_state set auth_code_issued_at = now()
     where id = (select id from auth.flow_state where user_id = ${userId}
                   and auth_code_issued_at is null order by created_at desc limit 1)
    returning auth_code`;
  return row?.auth_code;
}

/** Checks a code verifier against a challenge (RFC 7636). */
/** Whether a PKCE verifier matches its challenge (S256 or plain). */
export async function verifierMatches(verifier: string, challenge: Challenge): Promise<boolean> {
  if (challenge.method === "plain") return verifier === challenge.challenge;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url.encode(new Uint8Array(digest)) === challenge.challenge;
}

/**
 * Exchanges an auth code and its verifier (once) for the user id and sign-in method. A wrong
 * verifier leaves the flow state in place, as Supabase Auth does.
 */
export async function exchangeAuthCode(
  sql: postgres.Sql,
  authCode: string,
  verifier: string,
): Promise<{ userId: string; method: string }> {
  return await sql.begin(async (tx) => {
    const [row] = await tx<
      {
        id: string;
        user_id: string | null;
        code_challenge: string;
        code_challenge_method: string;
        authentication_method: string;
        age: number;
      }[]
    >`
      select id, user_id, code_challenge, code_challenge_method, authentication_method,
             extract(epoch from now() - auth_code_issued_at)::float8 as age
        from auth.flow_state
       where auth_code = ${authCode} and auth_code_issued_at is not null for update`;
    if (row === undefined || row.user_id === null) {
      throw new AuthError(
        404,
        "flow_state_not_found",
        "invalid flow state, no valid flow state found",
      );
    }
    if (row.age > FLOW_STATE_LIFETIME_S) {
      throw new AuthError(422, "flow_state_expired", "invalid flow state, flow state has expired");
    }
    const challenge = {
      challenge: row.code_challenge,
      method: row.code_challenge_method as Challenge["method"],
    };
    if (!(await verifierMatches(verifier, challenge))) {
      throw new AuthError(
        400,
        "bad_code_verifier",
        "code challenge does not match previously saved code verifier",
      );
    }
    await tx`delete from auth.flow_state where id = ${row.id}`;
    return { userId: row.user_id, method: row.authentication_method };
  });
}
