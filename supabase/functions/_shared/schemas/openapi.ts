/**
 * `GET /api/openapi.json`: the API reference itself.
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";

/** An OpenAPI 3.1 document (its full schema is the OpenAPI specification's). */
export const OpenApiDocumentSchema = z.looseObject({
  openapi: z.string().max(16).regex(/^3\.1\.\d+$/),
  info: z.looseObject({ title: z.string().max(100), version: z.string().max(64) }),
  paths: z.record(z.string().max(256).regex(/^\//), z.unknown()),
}).meta({
  description: "This document: OpenAPI 3.1 (https://spec.openapis.org/oas/v3.1.1)",
}).register(components, { id: "OpenApiDocument" });
