/**
 * The me function's routes and operations: the signed-in user's profile.
 *
 * Each operation's id, documentation, scope, input schemas and answers stand here, beside the
 * handler that implements them (`handler.ts`). The function's pipeline routes and validates with
 * this spec alone, so the function bundles only its own schemas; `_shared/manifest.ts` gathers
 * every function's spec for the tools that need them all (OpenAPI document, dev server, gateway
 * export, tests).
 *
 * @module
 */
import { MeSchema } from "../_shared/schemas/identity.ts";
import { rootGet } from "../_shared/http/spec.ts";

/** The me function. */
export const spec = rootGet("/api/me", { auth: "jwt" }, {
  id: "getMe",
  tag: "Authentication",
  summary: "The signed-in user",
  description: "The profile of the token's subject; 404 once that user is deleted.",
  appScope: "profile:read",
  success: { status: 200, description: "The user's profile", schema: MeSchema },
  errors: ["NOT_FOUND"],
});
