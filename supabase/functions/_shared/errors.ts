/**
 * The error catalogue: every error the API answers, by stable code, with its status and body.
 *
 * Bodies follow the published documentation where it speaks: `{error, message, code}` for the
 * API-key family (`/api/v1/*`), `{error, message, statusCode}` for the JWT family, `{error}` for
 * 405, `request_id` on 500. Every body also carries `request_id`, and every catalogued body its
 * `code`, so clients branch on codes and support can find the request.
 *
 * @module
 */

/** Which documented body shape an error takes. */
export type ErrorFamily = "api_key" | "jwt" | "generic";

interface Entry {
  status: number;
  error: string;
  message: string;
  family: ErrorFamily;
}

const unauthorizedKey = (message: string): Entry => ({
  status: 401,
  error: "unauthorized",
  message,
  family: "api_key",
});

/** Every error code the API can answer. */
export const ERRORS = {
  MISSING_API_KEY: unauthorizedKey("Missing X-API-Key header"),
  INVALID_API_KEY_FORMAT: unauthorizedKey("Invalid API key format"),
  INVALID_API_KEY: unauthorizedKey("Invalid API key"),
  API_KEY_NOT_ACTIVE: unauthorizedKey("API key is not active"),
  API_KEY_EXPIRED: unauthorizedKey("API key has expired"),
  IP_NOT_ALLOWED: {
    status: 403,
    error: "forbidden",
    message: "Requests from this IP address are not allowed for this API key",
    family: "api_key",
  },
  INSUFFICIENT_SCOPE: {
    status: 403,
    error: "forbidden",
    message: "API key lacks the required scope",
    family: "api_key",
  },
  GATEWAY_REQUIRED: {
    status: 403,
    error: "forbidden",
    message: "Requests must come through the API gateway",
    family: "generic",
  },
  MISSING_AUTH_TOKEN: {
    status: 401,
    error: "Unauthorized",
    message: "Invalid or missing authentication token",
    family: "jwt",
  },
  INVALID_AUTH_TOKEN: {
    status: 401,
    error: "Unauthorized",
    message: "Invalid or missing authentication token",
    family: "jwt",
  },
  TOKEN_EXPIRED: {
    status: 419,
    error: "Token Expired",
    message: "JWT token has expired, refresh required",
    family: "jwt",
  },
  FORBIDDEN: {
    status: 403,
    error: "Forbidden",
    message: "Valid token but insufficient permissions",
    family: "jwt",
  },
  APP_TOKEN_NOT_ACCEPTED: {
    status: 403,
    error: "Forbidden",
    message: "This route does not accept tokens issued to third-party apps",
    family: "jwt",
  },
  APP_GRANT_NOT_ACTIVE: {
    status: 401,
    error: "Unauthorized",
    message: "The user has not granted this app access, or revoked it",
    family: "jwt",
  },
  IP_ALLOWLIST_REQUIRES_ENTERPRISE: {
    status: 403,
    error: "Forbidden",
    message: "IP allowlists are available on the Enterprise tier only",
    family: "jwt",
  },
  KEY_LIMIT_REACHED: {
    status: 409,
    error: "conflict",
    message: "Too many active API keys; revoke one first",
    family: "generic",
  },
  KEY_NOT_ACTIVE: {
    status: 409,
    error: "conflict",
    message: "Only an active API key can be changed this way",
    family: "generic",
  },
  WEBHOOK_LIMIT_REACHED: {
    status: 409,
    error: "conflict",
    message: "Too many webhook endpoints; delete one first",
    family: "generic",
  },
  WEBHOOK_DISABLED: {
    status: 409,
    error: "conflict",
    message: "The webhook endpoint is disabled; enable it first",
    family: "generic",
  },
  DELIVERY_IN_PROGRESS: {
    status: 409,
    error: "conflict",
    message: "An attempt of this delivery is in flight; retry it once it is recorded",
    family: "generic",
  },
  APP_LIMIT_REACHED: {
    status: 409,
    error: "conflict",
    message: "Too many apps; delete one first",
    family: "generic",
  },
  APP_IS_PUBLIC: {
    status: 409,
    error: "conflict",
    message: "A public app has no client secret",
    family: "generic",
  },
  GRANT_REVOKED: {
    status: 409,
    error: "conflict",
    message: "The grant is already revoked",
    family: "generic",
  },
  RATE_LIMIT_EXCEEDED: {
    status: 429,
    error: "rate_limit_exceeded",
    message: "Rate limit exceeded",
    family: "generic",
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    error: "Method not allowed",
    message: "",
    family: "generic",
  },
  NOT_FOUND: { status: 404, error: "not_found", message: "Resource not found", family: "generic" },
  VALIDATION_FAILED: {
    status: 400,
    error: "bad_request",
    message: "Request validation failed",
    family: "generic",
  },
  INVALID_JSON: {
    status: 400,
    error: "bad_request",
    message: "Request body is not valid JSON",
    family: "generic",
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    error: "payload_too_large",
    message: "Request body is too large",
    family: "generic",
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    error: "unsupported_media_type",
    message: "Request body must be application/json",
    family: "generic",
  },
  CONFIGURATION_INVALID: {
    status: 503,
    error: "service_unavailable",
    message: "The API is not configured correctly; its operators have been told",
    family: "generic",
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    error: "service_unavailable",
    message: "A dependency of the API is unavailable, retry shortly",
    family: "generic",
  },
  INTERNAL_ERROR: {
    status: 500,
    error: "internal_error",
    message: "An unexpected error occurred",
    family: "generic",
  },
} as const satisfies Record<string, Entry>;

/** A stable error code. */
export type ErrorCode = keyof typeof ERRORS;

/** Options that refine a catalogued error for one response. */
export interface ErrorOptions {
  /** Replaces the catalogue message (must never contain a credential). */
  message?: string;
  /** Extra body members, e.g. `retry_after` or validation `details`. */
  extra?: Record<string, unknown>;
  /** Adds `statusCode`, the JWT family's field, to errors of other families on JWT routes. */
  jwtRoute?: boolean;
  /** The answer's `WWW-Authenticate` challenge (a scope a handler found missing). */
  challenge?: string;
}

/** The HTTP status of a code. */
export function statusOf(code: ErrorCode): number {
  return ERRORS[code].status;
}

/** Builds the JSON body of an error. */
export function errorBody(
  code: ErrorCode,
  requestId: string,
  options: ErrorOptions = {},
): Record<string, unknown> {
  const entry: Entry = ERRORS[code];
  if (code === "METHOD_NOT_ALLOWED") {
    return { error: entry.error, request_id: requestId };
  }
  const body: Record<string, unknown> = {
    error: entry.error,
    message: options.message ?? entry.message,
  };
  if (entry.family === "jwt" || options.jwtRoute) body.statusCode = entry.status;
  body.code = code;
  Object.assign(body, options.extra);
  body.request_id = requestId;
  return body;
}

/** An error a handler throws to answer with a catalogued code. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly code: ErrorCode,
    readonly options: ErrorOptions = {},
  ) {
    super(options.message ?? ERRORS[code].message);
  }
}
