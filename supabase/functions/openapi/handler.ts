/**
 * `GET /api/openapi.json`: the API's OpenAPI 3.1 document, built on the first request from
 * the functions' routes and schemas (see `document.ts`) and then served from memory.
 *
 * @module
 */
import { defineFunction, type RequestContext, type RouteSpec } from "../_shared/http/app.ts";
import { routes as health } from "../health/handler.ts";
import { routes as v1Test } from "../v1-test/handler.ts";
import { routes as me } from "../me/handler.ts";
import { routes as vaults } from "../vaults/handler.ts";
import { routes as apiKeys } from "../api-keys/handler.ts";
import { buildOpenApiDocument, type Json } from "./document.ts";

let built: { document: Json; text: string } | undefined;

/** The document, built once per isolate. */
export function openApiDocument(): Json {
  built ??= build();
  return built.document;
}

function build(): { document: Json; text: string } {
  const document = buildOpenApiDocument({
    health,
    "v1-test": v1Test,
    me,
    vaults,
    "api-keys": apiKeys,
    openapi: routes,
  });
  return { document, text: JSON.stringify(document) };
}

function serve(_ctx: RequestContext): Promise<Response> {
  built ??= build();
  return Promise.resolve(
    new Response(built.text, {
      headers: {
        "Content-Type": "application/json",
        // Public and identical for everyone; it changes only with a deployment.
        "Cache-Control": "public, max-age=300",
      },
    }),
  );
}

/** The openapi function's routes. */
export const routes: readonly RouteSpec[] = [
  { path: "/", auth: "none", rateLimited: false, methods: { GET: { handler: serve } } },
];

/** The openapi function's handler. */
export const handler = defineFunction("openapi", routes);
