/**
 * The api-keys function's routes and operations: the signed-in user's API keys (create, list, get,
 * revoke, roll, usage).
 *
 * Each operation's id, documentation, scope, input schemas and answers stand here, beside the
 * handler that implements them (`handler.ts`). The function's pipeline routes and validates with
 * this spec alone, so the function bundles only its own schemas; `_shared/manifest.ts` gathers
 * every function's spec for the tools that need them all (OpenAPI document, dev server, gateway
 * export, tests).
 *
 * @module
 */
import {
  ApiKeySchema,
  CreatedKeySchema,
  CreateKey,
  KeyListSchema,
  ListKeysQuery,
  RolledKeySchema,
  RollKey,
} from "../_shared/schemas/keys.ts";
import { KeyUsageQuery, USAGE_DESCRIPTION, UsageSchema } from "../_shared/schemas/usage.ts";
import { type FunctionSpec, SMALL_BODY_BYTES, ulidPath } from "../_shared/http/spec.ts";

/** The api-keys function. */
export const spec = {
  gateway: [{ prefix: "/api/keys", target: "" }],
  pathId: ulidPath("The API key"),
  routes: [
    {
      path: "/",
      auth: "jwt",
      methods: {
        GET: {
          id: "listApiKeys",
          tag: "API keys",
          summary: "List API keys",
          description: "Newest first; filter by `mode` and `status`. Never the keys themselves.",
          query: ListKeysQuery,
          success: { status: 200, description: "A page of keys", schema: KeyListSchema },
        },
        POST: {
          id: "createApiKey",
          tag: "API keys",
          summary: "Create an API key",
          description: "The response holds the key, shown this once. An IP allowlist needs " +
            "the Enterprise tier; `expires_in` and `expires_at` are exclusive.",
          body: { schema: CreateKey, required: true, maxBytes: SMALL_BODY_BYTES },
          success: { status: 201, description: "The created key", schema: CreatedKeySchema },
          errors: ["KEY_LIMIT_REACHED", "IP_ALLOWLIST_REQUIRES_ENTERPRISE", "NOT_FOUND"],
        },
      },
    },
    {
      path: "/:id",
      auth: "jwt",
      methods: {
        GET: {
          id: "getApiKey",
          tag: "API keys",
          summary: "Get an API key's metadata",
          description: "Never the key itself, nor its hash.",
          success: { status: 200, description: "The key's metadata", schema: ApiKeySchema },
        },
      },
    },
    {
      path: "/:id/revoke",
      auth: "jwt",
      methods: {
        POST: {
          id: "revokeApiKey",
          tag: "API keys",
          summary: "Revoke an API key",
          description: "Takes effect on the next request everywhere. Revoking twice is not " +
            "an error.",
          success: { status: 200, description: "The revoked key", schema: ApiKeySchema },
          errors: ["KEY_NOT_ACTIVE"],
        },
      },
    },
    {
      path: "/:id/roll",
      auth: "jwt",
      methods: {
        POST: {
          id: "rollApiKey",
          tag: "API keys",
          summary: "Roll an API key",
          description: "Issues a replacement with the same name, scopes, expiry and " +
            "allowlist; the old key keeps working for `grace_period_seconds` (default " +
            "86400, 0: stops now).",
          body: { schema: RollKey, required: false, maxBytes: SMALL_BODY_BYTES },
          success: {
            status: 201,
            description: "The replacement key",
            schema: RolledKeySchema,
          },
          errors: ["KEY_NOT_ACTIVE", "IP_ALLOWLIST_REQUIRES_ENTERPRISE"],
        },
      },
    },
    {
      path: "/:id/usage",
      auth: "jwt",
      methods: {
        GET: {
          id: "getApiKeyUsage",
          tag: "Usage",
          summary: "An API key's usage",
          description: USAGE_DESCRIPTION,
          query: KeyUsageQuery,
          success: { status: 200, description: "The key's usage", schema: UsageSchema },
          errors: ["NOT_FOUND"],
        },
      },
    },
  ],
} as const satisfies FunctionSpec;
