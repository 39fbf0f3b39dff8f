/**
 * Answers of the local Auth stand-in, shaped as Supabase Auth (supabase/auth, the Go server)
 * shapes them, so that `@supabase/supabase-js` reads them as it reads the hosted service's:
 *
 * - errors: with `X-Supabase-Api-Version: 2024-01-01` (which supabase-js sends) the body is
 *   `{code, message}` and the answer repeats the header; without it, the initial format
 *   `{code: <status>, error_code, msg}`; either way `x-sb-error-code` names the code;
 * - CORS open to any origin (as the hosted endpoint is), exposing those two headers, so that a
 *   page on another origin (the console) can read them.
 *
 * @module
 */

/** The API version header supabase-js sends and Supabase Auth answers with. */
export const API_VERSION_HEADER = "X-Supabase-Api-Version";
const API_VERSION_2024 = "2024-01-01";

/** An error Supabase Auth answers with: its HTTP status, its `error_code` and its message. */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Members added to the body (the weak-password error's reasons). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * An OAuth 2.0 protocol error (RFC 6749 section 5.2) of the OAuth 2.1 server's token endpoint:
 * always 400 `{error, error_description}`, whatever API version the request asks for, and
 * without `x-sb-error-code`, as Supabase Auth answers them.
 */
export class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string) {
    super(description);
  }
}

/** The answer for an {@link OAuthError}. */
export function oauthErrorResponse(error: OAuthError): Response {
  return sendJson(400, { error: error.error, error_description: error.description });
}

/** 400 with Supabase Auth's `validation_failed` code. */
export function validationFailed(message: string): AuthError {
  return new AuthError(400, "validation_failed", message);
}

/** The CORS headers of every answer (the preflight's too). */
export function corsHeaders(headers: Headers): Headers {
  headers.set("Access-Control-Allow-Origin", "*");
  headers.set(
    "Access-Control-Allow-Headers",
    "authorization, apikey, content-type, x-client-info, x-supabase-api-version",
  );
  headers.set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
  headers.set("Access-Control-Expose-Headers", `${API_VERSION_HEADER}, x-sb-error-code`);
  headers.set("Access-Control-Max-Age", "86400");
  return headers;
}

/** A JSON answer with CORS and `Cache-Control: no-store` (tokens are never cached). */
export function sendJson(status: number, body: unknown): Response {
  const headers = corsHeaders(new Headers({ "Content-Type": "application/json" }));
  headers.set("Cache-Control", "no-store");
  return new Response(JSON.stringify(body), { status, headers });
}

/** An empty answer (204) with CORS. */
export function noContent(): Response {
  return new Response(null, { status: 204, headers: corsHeaders(new Headers()) });
}

/** A 303 to `location`, as Supabase Auth's verify endpoint redirects. */
export function seeOther(location: string): Response {
  const headers = corsHeaders(new Headers({ Location: location }));
  headers.set("Cache-Control", "no-store");
  return new Response(null, { status: 303, headers });
}

/** Whether the request asks for the 2024-01-01 error format (a date on or after it). */
function wantsVersion2024(req: Request): boolean {
  const raw = req.headers.get(API_VERSION_HEADER);
  if (raw === null || !/^\d{4}-\d{2}-\d{2}$/.test(raw)) return false;
  return raw >= API_VERSION_2024;
}

/** The answer for an {@link AuthError}, in the format the request asked for. */
export function errorResponse(req: Request, error: AuthError): Response {
  const v2024 = wantsVersion2024(req);
  const body = v2024
    ? { code: error.code, message: error.message, ...error.extra }
    : { code: error.status, error_code: error.code, msg: error.message, ...error.extra };
  const response = sendJson(error.status, body);
  response.headers.set("x-sb-error-code", error.code);
  if (v2024) response.headers.set(API_VERSION_HEADER, API_VERSION_2024);
  return response;
}

/** Reads a JSON object body; Supabase Auth's `bad_json` 400 for anything else. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  const text = await req.text();
  if (text.length > 64 * 1024) throw new AuthError(413, "request_too_large", "Request too large");
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AuthError(400, "bad_json", `Could not parse request body as JSON: ${error}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AuthError(400, "bad_json", "Could not parse request body as JSON: not an object");
  }
  return value as Record<string, unknown>;
}

/**
 * The parameters of a body sent as JSON (`Content-Type` containing `application/json`) or else
 * as a form, as Supabase Auth's OAuth endpoints read them. Non-string JSON members are dropped.
 */
export async function readParams(req: Request): Promise<Map<string, string>> {
  const text = await req.text();
  if (text.length > 1024 * 1024) throw new AuthError(413, "request_too_large", "Request too large");
  const params = new Map<string, string>();
  if ((req.headers.get("Content-Type") ?? "").includes("application/json")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new OAuthError("invalid_request", "Invalid JSON body");
    }
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) if (typeof v === "string") params.set(k, v);
    }
    return params;
  }
  for (const [k, v] of new URLSearchParams(text)) if (!params.has(k)) params.set(k, v);
  return params;
}

/** A string member of a body (`""` when absent); a 400 naming it when of another type. */
export function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") {
    throw new AuthError(400, "bad_json", `Could not read ${name}: expected a string`);
  }
  return value;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The email of a body, trimmed and lower-cased; 400 if missing or malformed. */
export function readEmail(body: Record<string, unknown>): string {
  const email = stringField(body, "email").trim().toLowerCase();
  if (email === "") throw validationFailed("missing email or phone");
  if (!EMAIL.test(email) || email.length > 255) {
    throw validationFailed("Unable to validate email address: invalid format");
  }
  return email;
}
