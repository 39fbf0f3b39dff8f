/**
 * Typed responses: the body is checked against its response schema by the compiler, and
 * nothing happens at run time beyond `json()`. A handler that answers a field the schema (and
 * so the OpenAPI document) does not have, or misses one, does not compile.
 *
 * @module
 */
import type { z } from "zod";
import { json } from "../http/respond.ts";

/** A JSON response whose body has the shape of `schema` (checked at compile time only). */
export function respond<S extends z.ZodType>(
  _schema: S,
  body: z.input<S>,
  status = 200,
  headers: HeadersInit = {},
): Response {
  return json(body, status, headers);
}
