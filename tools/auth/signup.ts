/**
 * `POST /auth/v1/signup` of the local Auth stand-in: email and password, auto-confirmed (the
 * local Supabase stack's default, `enable_confirmations = false`), so the answer is a session as
 * Supabase Auth gives it then. An email already registered is 422 `user_already_exists`; a
 * password under 6 characters is 422 `weak_password` with its reasons.
 *
 * @module
 */
import type { AuthContext } from "./context.ts";
import { AuthError, readEmail, sendJson, stringField, validationFailed } from "./http.ts";
import { startSession } from "./sessions.ts";
import { insertUser } from "./store.ts";

/** Supabase Auth's default minimum password length. */
export const MIN_PASSWORD_LENGTH = 6;

/** The weak-password error, whose body also lists `weak_password.reasons`. */
export class WeakPasswordError extends AuthError {
  constructor() {
    super(
      422,
      "weak_password",
      `Password should be at least ${MIN_PASSWORD_LENGTH} characters.`,
      { weak_password: { reasons: ["length"] } },
    );
  }
}

/** Handles a sign-up. */
export async function signUp(
  ctx: AuthContext,
  body: Record<string, unknown>,
  _url: URL,
): Promise<Response> {
  const password = stringField(body, "password");
  if (password === "") throw validationFailed("Signup requires a valid password");
  const email = readEmail(body);
  if ([...password].length < MIN_PASSWORD_LENGTH) throw new WeakPasswordError();
  if (password.length > 72) {
    throw validationFailed("Password cannot be longer than 72 characters");
  }
  const data = body["data"];
  const metadata = data !== null && typeof data === "object" && !Array.isArray(data)
    ? data as Record<string, unknown>
    : {};
  const user = await insertUser(ctx.sql, email, password, metadata, true);
  if (user === undefined) {
    throw new AuthError(422, "user_already_exists", "User already registered");
  }
  const session = await startSession(ctx, user.json.id, "password");
  return sendJson(200, session);
}
