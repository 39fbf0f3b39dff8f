/**
 * The v1-test function's routes and operations: checking an API key, who it belongs to and its rate
 * limits.
 *
 * Each operation's id, documentation, scope, input schemas and answers stand here, beside the
 * handler that implements them (`handler.ts`). The function's pipeline routes and validates with
 * this spec alone, so the function bundles only its own schemas; `_shared/manifest.ts` gathers
 * every function's spec for the tools that need them all (OpenAPI document, dev server, gateway
 * export, tests).
 *
 * @module
 */
import { V1TestSchema } from "../_shared/schemas/identity.ts";
import { rootGet } from "../_shared/http/spec.ts";

/** The v1-test function. */
export const spec = rootGet("/api/v1/test", { auth: "api_key" }, {
  id: "testApiKey",
  tag: "Authentication",
  summary: "Test an API key",
  description: "Verifies the `X-API-Key` header and describes the key and its rate " +
    "limits.",
  success: { status: 200, description: "The key is valid", schema: V1TestSchema },
});
