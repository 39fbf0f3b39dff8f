/**
 * Error bodies, by the family the published documentation gives them (see `http/errors.ts`,
 * which builds them): `{error, message, code}` for API-key routes, `{error, message,
 * statusCode}` plus `code` on JWT routes, `{error}` for 405, and the bodies that carry more:
 * 429 (`retry_after`), 400 `VALIDATION_FAILED` (`details`), 403 `INSUFFICIENT_SCOPE`
 * (`required_scope`). Every body carries `request_id`.
 *
 * @module
 */
import { z } from "zod";
import { type ErrorCode, ERRORS } from "../http/errors.ts";
import { RequestId } from "./common.ts";
import { KeyScopeSchema } from "./keys.ts";

const codes = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

/** Every error code of the catalogue. Clients branch on it, never on `message`. */
export const ErrorCodeSchema = z.enum(codes).meta({
  description: "A stable error code; clients branch on it, never on the message",
});

const message = z.string().meta({ description: "A human-readable explanation" });

/** The body of errors on API-key routes and on routes without credentials. */
export const ApiKeyErrorSchema = z.object({
  error: z.string().meta({ examples: ["unauthorized"] }),
  message,
  code: ErrorCodeSchema,
  request_id: RequestId,
}).meta({ description: "An error (API-key routes and public routes)" });

/** The body of errors on JWT routes: the documented `statusCode` beside `code`. */
export const JwtErrorSchema = z.object({
  error: z.string().meta({ examples: ["Unauthorized"] }),
  message,
  statusCode: z.int().min(400).max(599).meta({ description: "The HTTP status, repeated" }),
  code: ErrorCodeSchema,
  request_id: RequestId,
}).meta({ description: "An error (routes authenticated with a bearer token)" });

/** 405: the documented body, plus the request id. The `Allow` header lists the methods. */
export const MethodNotAllowedSchema = z.object({
  error: z.literal("Method not allowed"),
  request_id: RequestId,
}).meta({ description: "The route does not implement this method; see the Allow header" });

const statusOnJwtRoutes = (status: number) =>
  z.literal(status).optional().meta({ description: "Present on bearer-token routes" });

/** 429: when to retry, in seconds, also sent as `Retry-After`. */
export const RateLimitErrorSchema = z.object({
  error: z.literal("rate_limit_exceeded"),
  message,
  statusCode: statusOnJwtRoutes(429),
  code: z.literal("RATE_LIMIT_EXCEEDED"),
  retry_after: z.int().min(1).meta({ description: "Seconds to wait before retrying" }),
  request_id: RequestId,
}).meta({ description: "Too many requests in a rate-limit window" });

/** 400 `VALIDATION_FAILED`: every offending field with its path. */
export const ValidationErrorSchema = z.object({
  error: z.literal("bad_request"),
  message,
  statusCode: statusOnJwtRoutes(400),
  code: z.literal("VALIDATION_FAILED"),
  details: z.array(z.object({
    path: z.string().meta({ description: "Dotted path of the field; `(root)` for the body" }),
    message: z.string(),
  })).min(1),
  request_id: RequestId,
}).meta({ description: "The query or the body does not match its schema" });

/** 403 `INSUFFICIENT_SCOPE`: the scope the key would need. */
export const InsufficientScopeErrorSchema = z.object({
  error: z.literal("forbidden"),
  message,
  code: z.literal("INSUFFICIENT_SCOPE"),
  required_scope: KeyScopeSchema,
  request_id: RequestId,
}).meta({ description: "The API key lacks the scope this operation needs" });
