/**
 * The webhooks function's routes and operations: the signed-in user's webhook endpoints, their
 * deliveries and retries.
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
  CreatedWebhookSchema,
  CreateWebhook,
  DeliveryListSchema,
  DeliverySchema,
  ListDeliveriesQuery,
  ListWebhooksQuery,
  RotatedWebhookSchema,
  RotateWebhookSecret,
  UpdateWebhook,
  WebhookListSchema,
  WebhookSchema,
} from "../_shared/schemas/webhooks.ts";
import {
  type FunctionSpec,
  SMALL_BODY_BYTES,
  ULID_PATH_PARAM,
  ulidPath,
} from "../_shared/http/spec.ts";

/** The webhooks function. */
export const spec = {
  gateway: [{ prefix: "/api/webhooks", target: "" }],
  pathId: ulidPath("The webhook endpoint"),
  pathParams: {
    delivery_id: { description: "The delivery's id (a ULID)", schema: ULID_PATH_PARAM },
  },
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
          body: { schema: CreateWebhook, required: true, maxBytes: SMALL_BODY_BYTES },
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
          body: { schema: UpdateWebhook, required: true, maxBytes: SMALL_BODY_BYTES },
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
          body: { schema: RotateWebhookSecret, required: false, maxBytes: SMALL_BODY_BYTES },
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
} as const satisfies FunctionSpec;
