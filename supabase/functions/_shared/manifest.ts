/**
 * The route manifest: every function, where the gateway mounts it, its routes with their
 * credentials, and each operation with its id, documentation, scope, input schemas and answers.
 *
 * It is the one place these facts stand. The functions' pipeline routes and validates with it
 * (each function binds implementations to its operation ids, typed by the route's credentials),
 * and the gateway route table (`routes.ts`), the dev server, the gateway export, the OpenAPI
 * document and the security test matrix are all derived from it. It holds no handler: no
 * function reaches into another's code through it.
 *
 * @module
 */
import {
  ApiKeySchema,
  CreatedKeySchema,
  CreatedWebhookSchema,
  CreateKey,
  CreateVault,
  CreateWebhook,
  DeliveryListSchema,
  DeliverySchema,
  HealthOkSchema,
  HealthUnavailableSchema,
  KeyListSchema,
  KeyUsageQuery,
  ListDeliveriesQuery,
  ListKeysQuery,
  ListVaultsQuery,
  ListWebhooksQuery,
  MeSchema,
  OpenApiDocumentSchema,
  RolledKeySchema,
  RollKey,
  RotatedWebhookSchema,
  RotateWebhookSecret,
  UpdateVault,
  UpdateWebhook,
  UsageQuery,
  UsageSchema,
  V1TestSchema,
  VaultListSchema,
  VaultSchema,
  WebhookListSchema,
  WebhookSchema,
} from "./schemas/mod.ts";
import type { FunctionSpec, OperationSpec, RouteSpec } from "./http/spec.ts";

/** Sections of the reference, in the order it shows them. */
export const TAGS = [
  { name: "Health", description: "Whether the API and its dependencies answer" },
  { name: "Authentication", description: "Check a credential and see who it belongs to" },
  { name: "Vaults", description: "Vaults of the signed-in user (bearer token)" },
  {
    name: "Vaults (API key)",
    description: "The same vaults with an API key: scopes `read`, `write`, `delete`; a test " +
      "key sees test vaults only",
  },
  { name: "API keys", description: "Create, list, revoke and roll API keys (bearer token)" },
  {
    name: "Usage",
    description: "Requests made with the caller's API keys, per hour or day (bearer token)",
  },
  {
    name: "Webhooks",
    description: "Endpoints that receive signed events (Standard Webhooks), their deliveries " +
      "and retries (bearer token)",
  },
  { name: "Reference", description: "This document" },
] as const;

/** What both usage operations answer. */
const USAGE_DESCRIPTION = "Requests by outcome per `hour` or UTC `day` (`granularity`, default " +
  "day) from `from` to `to` (default: the last 24 hours or 30 days, widened to whole buckets; " +
  "at most 744 hours or 400 days). Every bucket is listed, zeros included; a request shows " +
  "within seconds.";

/** A small JSON body: key management takes a few hundred bytes at most. */
const KEY_BODY_BYTES = 16 * 1024;

/** A ULID path parameter, as the reference shows it. */
const ULID = {
  type: "string",
  pattern: "^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$",
  minLength: 26,
  maxLength: 26,
};

/** The vault operations, for one kind of caller (ids, tag and scopes differ). */
function vaultRoutes<
  const A extends "jwt" | "api_key",
  const L extends string,
  const C extends string,
  const G extends string,
  const U extends string,
  const R extends string,
>(base: "" | "/v1", auth: A, ids: { list: L; create: C; get: G; update: U; remove: R }) {
  // The ids as literal types: a property of a generic object would widen to string.
  const [list, create, get, update, remove] = [
    ids.list,
    ids.create,
    ids.get,
    ids.update,
    ids.remove,
  ] as [L, C, G, U, R];
  const keyed = auth === "api_key";
  const tag = keyed ? "Vaults (API key)" : "Vaults";
  const scope = <S extends "read" | "write" | "delete">(s: S) => (keyed ? { scope: s } : {});
  return [
    {
      path: base || "/",
      auth,
      methods: {
        GET: {
          id: list,
          tag,
          summary: "List vaults",
          description: "Newest first, `limit` (1-100, default 20) from `offset`.",
          ...scope("read"),
          query: ListVaultsQuery,
          success: { status: 200, description: "A page of vaults", schema: VaultListSchema },
        },
        POST: {
          id: create,
          tag,
          summary: "Create a vault",
          description: "Name and description arrive encrypted by the client and are stored " +
            "exactly as sent (up to 10,000 and 100,000 characters); at most 50 tags of up to " +
            "64 characters.",
          ...scope("write"),
          body: { schema: CreateVault, required: true },
          success: { status: 201, description: "The created vault", schema: VaultSchema },
        },
      },
    },
    {
      path: `${base}/:id`,
      auth,
      methods: {
        GET: {
          id: get,
          tag,
          summary: "Get a vault",
          description: "A vault of another user, or an id that is not a UUID, is 404.",
          ...scope("read"),
          success: { status: 200, description: "The vault", schema: VaultSchema },
        },
        PATCH: {
          id: update,
          tag,
          summary: "Update a vault",
          description: "Changes the fields given; at least one is required." +
            (keyed ? " Setting `status` to `inactive` is a delete: it needs `delete`." : ""),
          ...scope("write"),
          body: { schema: UpdateVault, required: true },
          success: { status: 200, description: "The updated vault", schema: VaultSchema },
          ...(keyed ? { errors: ["INSUFFICIENT_SCOPE"] as const } : {}),
        },
        DELETE: {
          id: remove,
          tag,
          summary: "Delete a vault",
          description: "A soft delete: the vault's status becomes `inactive`.",
          ...scope("delete"),
          success: { status: 204, description: "Deleted" },
        },
      },
    },
  ] as const;
}

// Built outside the manifest's literal, whose context would widen their credentials and ids.
const VAULTS_BY_KEY = vaultRoutes("/v1", "api_key", {
  list: "v1ListVaults",
  create: "v1CreateVault",
  get: "v1GetVault",
  update: "v1UpdateVault",
  remove: "v1DeleteVault",
});
const VAULTS_BY_TOKEN = vaultRoutes("", "jwt", {
  list: "listVaults",
  create: "createVault",
  get: "getVault",
  update: "updateVault",
  remove: "deleteVault",
});

/** Every function of the API. */
export const MANIFEST = {
  health: {
    gateway: [{ prefix: "/api/v1/health", target: "" }],
    routes: [{
      path: "/",
      auth: "none",
      rateLimited: false,
      methods: {
        GET: {
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
        },
      },
    }],
  },
  "v1-test": {
    gateway: [{ prefix: "/api/v1/test", target: "" }],
    routes: [{
      path: "/",
      auth: "api_key",
      methods: {
        GET: {
          id: "testApiKey",
          tag: "Authentication",
          summary: "Test an API key",
          description: "Verifies the `X-API-Key` header and describes the key and its rate " +
            "limits.",
          success: { status: 200, description: "The key is valid", schema: V1TestSchema },
        },
      },
    }],
  },
  me: {
    gateway: [{ prefix: "/api/me", target: "" }],
    routes: [{
      path: "/",
      auth: "jwt",
      methods: {
        GET: {
          id: "getMe",
          tag: "Authentication",
          summary: "The signed-in user",
          description: "The profile of the token's subject; 404 once that user is deleted.",
          success: { status: 200, description: "The user's profile", schema: MeSchema },
          errors: ["NOT_FOUND"],
        },
      },
    }],
  },
  vaults: {
    // `/api/v1/vaults` first: `v1` below the JWT routes is never taken for an id.
    gateway: [
      { prefix: "/api/v1/vaults", target: "/v1" },
      { prefix: "/api/vaults", target: "" },
    ],
    pathId: {
      description: "The vault's id",
      schema: { type: "string", format: "uuid", minLength: 36, maxLength: 36 },
    },
    routes: [...VAULTS_BY_KEY, ...VAULTS_BY_TOKEN],
  },
  "api-keys": {
    gateway: [{ prefix: "/api/keys", target: "" }],
    pathId: {
      description: "The API key's id (a ULID, case-insensitive)",
      schema: ULID,
    },
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
            body: { schema: CreateKey, required: true, maxBytes: KEY_BODY_BYTES },
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
            body: { schema: RollKey, required: false, maxBytes: KEY_BODY_BYTES },
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
  },
  usage: {
    gateway: [{ prefix: "/api/usage", target: "" }],
    routes: [{
      path: "/",
      auth: "jwt",
      methods: {
        GET: {
          id: "getUsage",
          tag: "Usage",
          summary: "Usage of all the caller's API keys",
          description: `${USAGE_DESCRIPTION} Narrow it to one key (\`key_id\`) or one mode.`,
          query: UsageQuery,
          success: { status: 200, description: "The keys' usage", schema: UsageSchema },
          errors: ["NOT_FOUND"],
        },
      },
    }],
  },
  webhooks: {
    gateway: [{ prefix: "/api/webhooks", target: "" }],
    pathId: { description: "The webhook endpoint's id (a ULID, case-insensitive)", schema: ULID },
    pathParams: { delivery_id: { description: "The delivery's id (a ULID)", schema: ULID } },
    routes: [
      {
        path: "/",
        auth: "jwt",
        methods: {
          GET: {
            id: "listWebhooks",
            tag: "Webhooks",
            summary: "List webhook endpoints",
            description: "Newest first; filter by `mode` and `status`. Never the secrets.",
            query: ListWebhooksQuery,
            success: { status: 200, description: "A page of endpoints", schema: WebhookListSchema },
          },
          POST: {
            id: "createWebhook",
            tag: "Webhooks",
            summary: "Create a webhook endpoint",
            description: "Subscribes `url` to `events` of one mode (`live` by default, https " +
              "only). The response holds the signing secret, shown this once. Deliveries are " +
              "signed as Standard Webhooks v1 (`webhook-id`, `webhook-timestamp`, " +
              "`webhook-signature`), retried with backoff for about three days, and not " +
              "ordered: deduplicate by `webhook-id`.",
            body: { schema: CreateWebhook, required: true, maxBytes: KEY_BODY_BYTES },
            success: {
              status: 201,
              description: "The created endpoint",
              schema: CreatedWebhookSchema,
            },
            errors: ["WEBHOOK_LIMIT_REACHED", "NOT_FOUND"],
          },
        },
      },
      {
        path: "/:id",
        auth: "jwt",
        methods: {
          GET: {
            id: "getWebhook",
            tag: "Webhooks",
            summary: "Get a webhook endpoint",
            description: "Never its signing secret.",
            success: { status: 200, description: "The endpoint", schema: WebhookSchema },
          },
          PATCH: {
            id: "updateWebhook",
            tag: "Webhooks",
            summary: "Update a webhook endpoint",
            description: "Changes the fields given; at least one is required. Enabling an " +
              "endpoint clears why it was disabled.",
            body: { schema: UpdateWebhook, required: true, maxBytes: KEY_BODY_BYTES },
            success: { status: 200, description: "The updated endpoint", schema: WebhookSchema },
          },
          DELETE: {
            id: "deleteWebhook",
            tag: "Webhooks",
            summary: "Delete a webhook endpoint",
            description: "Its pending deliveries are dropped.",
            success: { status: 204, description: "Deleted" },
          },
        },
      },
      {
        path: "/:id/rotate",
        auth: "jwt",
        methods: {
          POST: {
            id: "rotateWebhookSecret",
            tag: "Webhooks",
            summary: "Rotate an endpoint's signing secret",
            description: "Issues a new secret; deliveries carry signatures with both until " +
              "`grace_period_seconds` (default 86400, at most 7 days; 0: the old one stops now) " +
              "have passed.",
            body: { schema: RotateWebhookSecret, required: false, maxBytes: KEY_BODY_BYTES },
            success: {
              status: 200,
              description: "The endpoint and its new secret",
              schema: RotatedWebhookSchema,
            },
          },
        },
      },
      {
        path: "/:id/test",
        auth: "jwt",
        methods: {
          POST: {
            id: "testWebhook",
            tag: "Webhooks",
            summary: "Send a test event",
            description: "Sends a `webhook.test` event to this endpoint, whatever it " +
              "subscribes to.",
            success: {
              status: 202,
              description: "The delivery, under way",
              schema: DeliverySchema,
            },
            errors: ["WEBHOOK_DISABLED"],
          },
        },
      },
      {
        path: "/:id/deliveries",
        auth: "jwt",
        methods: {
          GET: {
            id: "listWebhookDeliveries",
            tag: "Webhooks",
            summary: "List an endpoint's deliveries",
            description: "Newest first, with each one's status, attempts, last answer and next " +
              "attempt; filter by `status`. Deliveries are kept 30 days.",
            query: ListDeliveriesQuery,
            success: {
              status: 200,
              description: "A page of deliveries",
              schema: DeliveryListSchema,
            },
          },
        },
      },
      {
        path: "/:id/deliveries/:delivery_id/retry",
        auth: "jwt",
        methods: {
          POST: {
            id: "retryWebhookDelivery",
            tag: "Webhooks",
            summary: "Retry a delivery now",
            description: "Sends it again at once (with the same `webhook-id`), whatever its " +
              "status; automatic retries then go on for the retry period.",
            success: {
              status: 202,
              description: "The delivery, under way",
              schema: DeliverySchema,
            },
            errors: ["WEBHOOK_DISABLED", "DELIVERY_IN_PROGRESS"],
          },
        },
      },
    ],
  },
  openapi: {
    gateway: [{ prefix: "/api/openapi.json", target: "" }],
    routes: [{
      path: "/",
      auth: "none",
      rateLimited: false,
      methods: {
        GET: {
          id: "getOpenApiDocument",
          tag: "Reference",
          summary: "This API reference",
          description: "The OpenAPI 3.1 document of the API, generated from the schemas that " +
            "validate requests and shape responses.",
          success: { status: 200, description: "The document", schema: OpenApiDocumentSchema },
        },
      },
    }],
  },
} as const satisfies Record<string, FunctionSpec>;

/** A function's name. */
export type FunctionName = keyof typeof MANIFEST;
/** The deployable functions, in the manifest's order. */
export const FUNCTIONS = Object.keys(MANIFEST) as FunctionName[];

/** A route of the manifest with its function. */
export interface ManifestRoute {
  function: FunctionName;
  route: RouteSpec;
}

/** Every operation of the manifest: its function, route, method and spec. */
export function operations(): Array<
  ManifestRoute & { method: keyof RouteSpec["methods"]; operation: OperationSpec }
> {
  return FUNCTIONS.flatMap((name) =>
    (MANIFEST[name].routes as readonly RouteSpec[]).flatMap((route) =>
      (Object.entries(route.methods) as Array<[keyof RouteSpec["methods"], OperationSpec]>)
        .map(([method, operation]) => ({ function: name, route, method, operation }))
    )
  );
}
