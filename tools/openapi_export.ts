/**
 * Writes the API's OpenAPI document (the one `GET /api/openapi.json` serves, built from the
 * code) to a file, so the console's build can type its API client from it without a running
 * server: `deno run --allow-write=.local tools/openapi_export.ts .local/openapi.json`.
 *
 * @module
 */
import { buildOpenApiDocument } from "../supabase/functions/openapi/document.ts";

if (import.meta.main) {
  const out = Deno.args[0] ?? ".local/openapi.json";
  await Deno.mkdir(new URL(".", `file://${Deno.cwd()}/${out}`), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(buildOpenApiDocument(), null, 2) + "\n");
  console.log(`openapi: wrote ${out}`);
}
