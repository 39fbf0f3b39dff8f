/**
 * The authentication step of the pipeline: which credential a route reads, and the RFC 6750
 * challenge a refusal carries.
 *
 * @module
 */
import type { AuthFailure, Principal } from "../auth/principal.ts";
import { bearerToken } from "../auth/jwt.ts";
import type { Services } from "../services.ts";
import type { AuthKind } from "./app.ts";

const REALM = 'realm="torvus"';

/** The `WWW-Authenticate` value of a refused credential, if its scheme has one. */
export function wwwAuthenticate(auth: AuthKind, failure: AuthFailure): string | undefined {
  if (auth === "api_key") return `ApiKey ${REALM}, header="X-API-Key"`;
  if (auth !== "jwt") return undefined;
  if (failure.bearerError === undefined) return `Bearer ${REALM}`;
  const description = failure.code === "TOKEN_EXPIRED"
    ? "The access token expired"
    : failure.bearerError === "insufficient_scope"
    ? "The access token does not grant access to this resource"
    : failure.bearerError === "invalid_request"
    ? "The Authorization header is malformed"
    : "The access token is invalid";
  return `Bearer ${REALM}, error="${failure.bearerError}", error_description="${description}"`;
}

/** A principal, or a refusal; `confirm` when the answer came from the key cache. */
export type AuthOutcome = ({ ok: true; principal: Principal } | AuthFailure) & {
  confirm?: (() => Promise<boolean>) | undefined;
};

/** Reads the credential the route accepts and verifies it. */
export async function authenticate(
  req: Request,
  auth: AuthKind,
  s: Services,
  ip: string | undefined,
): Promise<AuthOutcome> {
  if (auth === "api_key") return await s.keys.authenticate(req.headers.get("x-api-key"), ip);
  const bearer = bearerToken(req.headers.get("authorization"));
  if (bearer.kind === "missing") return { ok: false, code: "MISSING_AUTH_TOKEN" };
  if (bearer.kind === "malformed") {
    return { ok: false, code: "INVALID_AUTH_TOKEN", bearerError: "invalid_request" };
  }
  return await s.jwt.verify(bearer.token);
}
