/**
 * Writes the OpenAPI document the `openapi` function serves, built from the code as it serves
 * it (`buildOpenApiDocument`), to the path given: the linter reads it without a server.
 *
 *     deno run --allow-env --allow-read --allow-write=.local tools/openapi_document.ts OUT
 *
 * @module
 */
import { buildOpenApiDocument } from "../supabase/functions/openapi/document.ts";

const out = Deno.args[0];
if (!out) {
  console.error("usage: document.ts OUT.json");
  Deno.exit(2);
}
await Deno.writeTextFile(out, JSON.stringify(buildOpenApiDocument(), null, 2) + "\n");
