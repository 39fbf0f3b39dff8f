/**
 * The usage function's routes and operations: usage of all the caller's API keys.
 *
 * Each operation's id, documentation, scope, input schemas and answers stand here, beside the
 * handler that implements them (`handler.ts`). The function's pipeline routes and validates with
 * this spec alone, so the function bundles only its own schemas; `_shared/manifest.ts` gathers
 * every function's spec for the tools that need them all (OpenAPI document, dev server, gateway
 * export, tests).
 *
 * @module
 */
import { USAGE_DESCRIPTION, UsageQuery, UsageSchema } from "../_shared/schemas/usage.ts";
import { rootGet } from "../_shared/http/spec.ts";

/** The usage function. */
export const spec = rootGet("/api/usage", { auth: "jwt" }, {
  id: "getUsage",
  tag: "Usage",
  summary: "Usage of all the caller's API keys",
  description: `${USAGE_DESCRIPTION} Narrow it to one key (\`key_id\`) or one mode.`,
  query: UsageQuery,
  success: { status: 200, description: "The keys' usage", schema: UsageSchema },
  errors: ["NOT_FOUND"],
});
