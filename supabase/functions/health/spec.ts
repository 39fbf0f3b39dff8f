/**
 * The health function's routes and operations: whether the API and its dependencies answer (no
 * credentials, never rate limited).
 *
 * Each operation's id, documentation, scope, input schemas and answers stand here, beside the
 * handler that implements them (`handler.ts`). The function's pipeline routes and validates with
 * this spec alone, so the function bundles only its own schemas; `_shared/manifest.ts` gathers
 * every function's spec for the tools that need them all (OpenAPI document, dev server, gateway
 * export, tests).
 *
 * @module
 */
import { HealthOkSchema, HealthUnavailableSchema } from "../_shared/schemas/health.ts";
import { rootGet } from "../_shared/http/spec.ts";

/** The health function. */
export const spec = rootGet("/api/v1/health", { auth: "none", rateLimited: false }, {
  id: "getHealth",
  tag: "Health",
  summary: "Health check",
  description: "200 when the database and Redis answer, 503 naming the one that does " +
    "not. No credentials needed; never rate limited.",
  success: { status: 200, description: "Healthy", schema: HealthOkSchema },
  otherResponses: [{
    status: 503,
    description: "A dependency is unavailable",
    schema: HealthUnavailableSchema,
  }],
});
