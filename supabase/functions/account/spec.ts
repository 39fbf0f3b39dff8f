/**
 * The account function's routes and operations: the signed-in user's account and tier.
 *
 * Each operation's id, documentation, scope, input schemas and answers stand here, beside the
 * handler that implements them (`handler.ts`). The function's pipeline routes and validates with
 * this spec alone, so the function bundles only its own schemas; `_shared/manifest.ts` gathers
 * every function's spec for the tools that need them all (OpenAPI document, dev server, gateway
 * export, tests).
 *
 * @module
 */
import { AccountSchema } from "./schemas.ts";
import { rootGet } from "../_shared/http/spec.ts";

/** The account function. */
export const spec = rootGet("/api/account", { auth: "jwt" }, {
  id: "getAccount",
  tag: "Authentication",
  summary: "The signed-in user's account",
  description: "The profile of `GET /api/me`, the account's tier (new keys take it) and " +
    "the tiers of the account's keys, with their limits (`test_` ones for test keys). " +
    "404 once the user is deleted.",
  success: {
    status: 200,
    description: "The account",
    schema: AccountSchema,
  },
  errors: ["NOT_FOUND"],
});
