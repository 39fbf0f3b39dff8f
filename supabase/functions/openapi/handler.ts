/**
 * `GET /api/openapi.json`: the API's OpenAPI 3.1 document, built from the manifest on the
 * first request (see `document.ts`) and then served from memory.
 *
 * @module
 */
import type { Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import { buildOpenApiDocument, type Json } from "./document.ts";

let built: { document: Json; text: string } | undefined;

/** The document, built once per isolate. */
export function openApiDocument(): Json {
  built ??= build();
  return built.document;
}

function build(): { document: Json; text: string } {
  const document = buildOpenApiDocument();
  return { document, text: JSON.stringify(document) };
}

/** The openapi function's operations. */
export const operations: Implementations<typeof spec> = {
  getOpenApiDocument() {
    built ??= build();
    return new Response(built.text, {
      headers: {
        "Content-Type": "application/json",
        // Public and identical for everyone; it changes only with a deployment.
        "Cache-Control": "public, max-age=300",
      },
    });
  },
};
