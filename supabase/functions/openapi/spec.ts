/**
 * The openapi function's routes and operations: the API reference itself.
 *
 * Each operation's id, documentation, scope, input schemas and answers stand here, beside the
 * handler that implements them (`handler.ts`). The function's pipeline routes and validates with
 * this spec alone, so the function bundles only its own schemas; `_shared/manifest.ts` gathers
 * every function's spec for the tools that need them all (OpenAPI document, dev server, gateway
 * export, tests).
 *
 * @module
 */
import { OpenApiDocumentSchema } from "../_shared/schemas/openapi.ts";
import { rootGet } from "../_shared/http/spec.ts";

/** The openapi function. */
export const spec = rootGet("/api/openapi.json", { auth: "none", rateLimited: false }, {
  id: "getOpenApiDocument",
  tag: "Reference",
  summary: "This API reference",
  description: "The OpenAPI 3.1 document of the API, generated from the schemas that " +
    "validate requests and shape responses.",
  success: { status: 200, description: "The document", schema: OpenApiDocumentSchema },
});
