/**
 * Error bodies, by the family the published documentation gives them (see `errors.ts`,
 * which builds them): `{error, message, code}` for API-key routes, `{error, message,
 * statusCode}` plus `code` on JWT routes, `{error}` for 405, and the bodies that carry more:
 * 429 (`retry_after`), 400 `VALIDATION_FAILED` (`details`), 403 `INSUFFICIENT_SCOPE`
 * (`required_scope`). Every body carries `request_id`.
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import { type ErrorCode, ERRORS } from "../errors.ts";
import { RequestId } from "./common.ts";
import { MAX_DETAIL_MESSAGE, MAX_DETAIL_PATH, MAX_DETAILS } from "../http/input.ts";
import { KeyScopeSchema } from "./keys.ts";
import { AppScopeSchema } from "./app_scopes.ts";

const codes = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

/** Every error code of the catalogue. Clients branch on it, never on `message`. */
export const ErrorCodeSchema = z.enum(codes).meta({
  description: "A stable error code; clients branch on it, never on the message",
}).register(components, { id: "ErrorCode" });

/**
 * Longest `message` an error carries: the catalogue's are short, and a validation message names
 * one field (at most {@link MAX_DETAIL_PATH} characters) and zod's sentence about it.
 */
export const MAX_MESSAGE_LENGTH = 1024;

const message = z.string().max(MAX_MESSAGE_LENGTH).meta({
  description: "A human-readable explanation",
});

/** The catalogue's `error` words (the seed documents them per family). */
const errorWords = [...new Set(codes.map((c) => ERRORS[c].error))] as [string, ...string[]];

/** An error body: `fields`, then the `request_id` every body carries; component `id`. */
function errorBody<F extends z.ZodRawShape>(id: string, description: string, fields: F) {
  return z.object({ ...fields, request_id: RequestId }).meta({ description }).register(
    components,
    { id },
  );
}

/** The body of errors on API-key routes and on routes without credentials. */
export const ApiKeyErrorSchema = errorBody(
  "ApiKeyError",
  "An error (API-key routes and public routes)",
  {
    error: z.enum(errorWords).meta({ examples: ["unauthorized"] }),
    message,
    code: ErrorCodeSchema,
  },
);

/** The body of errors on JWT routes: the documented `statusCode` beside `code`. */
export const JwtErrorSchema = errorBody(
  "JwtError",
  "An error (routes authenticated with a bearer token)",
  {
    error: z.enum(errorWords).meta({ examples: ["Unauthorized"] }),
    message,
    statusCode: z.int().min(400).max(599).meta({ description: "The HTTP status, repeated" }),
    code: ErrorCodeSchema,
  },
);

/** 405: the documented body, plus the request id. The `Allow` header lists the methods. */
export const MethodNotAllowedSchema = errorBody(
  "MethodNotAllowedError",
  "The route does not implement this method; see the Allow header",
  {
    error: z.literal("Method not allowed"),
  },
);

const statusOnJwtRoutes = (status: number) =>
  z.literal(status).optional().meta({ description: "Present on bearer-token routes" });

/** 429: when to retry, in seconds, also sent as `Retry-After`. */
export const RateLimitErrorSchema = errorBody(
  "RateLimitError",
  "Too many requests in a rate-limit window",
  {
    error: z.literal("rate_limit_exceeded"),
    message,
    statusCode: statusOnJwtRoutes(429),
    code: z.literal("RATE_LIMIT_EXCEEDED"),
    retry_after: z.int().min(1).max(86_400).meta({
      description: "Seconds to wait before retrying",
    }),
  },
);

/** 400 `VALIDATION_FAILED`: every offending field with its path. */
export const ValidationErrorSchema = errorBody(
  "ValidationError",
  "The query or the body does not match its schema",
  {
    error: z.literal("bad_request"),
    message,
    statusCode: statusOnJwtRoutes(400),
    code: z.literal("VALIDATION_FAILED"),
    details: z.array(z.object({
      path: z.string().max(MAX_DETAIL_PATH).meta({
        description: "Dotted path of the field; `(root)` for the body",
      }),
      message: z.string().max(MAX_DETAIL_MESSAGE),
    })).min(1).max(MAX_DETAILS).meta({
      description: `Every offending field, at most ${MAX_DETAILS}`,
    }),
  },
);

/** 403 `INSUFFICIENT_SCOPE`: the scope the key would need. */
export const InsufficientScopeErrorSchema = errorBody(
  "InsufficientScopeError",
  "The API key, or the grant of a third-party app's token, lacks the scope this operation " +
    "needs (an app's token: `WWW-Authenticate` names it, RFC 6750 `insufficient_scope`)",
  {
    error: z.literal("forbidden"),
    message,
    code: z.literal("INSUFFICIENT_SCOPE"),
    required_scope: z.union([KeyScopeSchema, AppScopeSchema]),
    statusCode: z.literal(403).optional().meta({ description: "On bearer-token routes" }),
  },
);
