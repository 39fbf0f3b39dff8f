/**
 * Webhooks: what clients send (endpoint create and update, rotation, list queries) and what
 * they get back (an endpoint, never its secret except when created or rotated; deliveries).
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import { listQuery, ModeSchema, pageOf, Timestamp, Ulid, updateBody } from "./common.ts";

/** The events an endpoint may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  "api_key.created",
  "api_key.revoked",
  "api_key.rolled",
  "api_key.expiring",
  "api_key.expired",
  "vault.created",
  "vault.updated",
  "vault.deleted",
  "rate_limit.exceeded",
  "app_grant.created",
  "app_grant.revoked",
] as const;

/** An event type an endpoint subscribes to. */
export const WebhookEventType = z.enum(WEBHOOK_EVENT_TYPES).register(components, {
  id: "WebhookEventType",
});

/** Most endpoints one user may have. */
export const MAX_WEBHOOK_ENDPOINTS = 20;
/** Longest grace period of a rotated secret: 7 days. */
export const MAX_SECRET_GRACE_SECONDS = 7 * 86_400;

/** Longest endpoint URL (the database's check too). */
export const MAX_WEBHOOK_URL = 2048;
/** Longest endpoint description (the database's check too). */
export const MAX_WEBHOOK_DESCRIPTION = 500;

const Url = z.string().trim().min(1).max(MAX_WEBHOOK_URL).meta({
  description: "Where deliveries are POSTed: https for live endpoints; its host must not be " +
    "(or resolve to) a private, loopback or link-local address",
  examples: ["https://example.com/hooks/torvus"],
});
const Events = z.array(WebhookEventType).min(1).max(WEBHOOK_EVENT_TYPES.length)
  .transform((e) => [...new Set(e)]);
const Description = z.string().max(MAX_WEBHOOK_DESCRIPTION).nullable();

/** Body of `POST /api/webhooks`. */
export const CreateWebhook = z.strictObject({
  url: Url,
  events: Events,
  description: Description.optional(),
  mode: ModeSchema.default("live").meta({
    description: "`test` endpoints receive the events of test keys and test vaults only",
  }),
}).register(components, { id: "CreateWebhookRequest" });

/** Body of `PATCH /api/webhooks/{id}`: at least one field. */
export const UpdateWebhook = updateBody({
  url: Url.optional(),
  events: Events.optional(),
  description: Description.optional(),
  status: z.enum(["enabled", "disabled"]).optional(),
}, "UpdateWebhookRequest");

/** Body of `POST /api/webhooks/{id}/rotate` (may be empty). */
export const RotateWebhookSecret = z.strictObject({
  grace_period_seconds: z.number().int().min(0).max(MAX_SECRET_GRACE_SECONDS).default(86_400),
}).register(components, { id: "RotateWebhookSecretRequest" });

/** Query of `GET /api/webhooks`. */
export const ListWebhooksQuery = listQuery({
  mode: ModeSchema.optional(),
  status: z.enum(["enabled", "disabled"]).optional(),
});

/** Query of `GET /api/webhooks/{id}/deliveries`. */
export const ListDeliveriesQuery = listQuery({
  status: z.enum(["pending", "succeeded", "failed"]).optional(),
});

/** An endpoint, as the API shows it. */
export const WebhookSchema = z.object({
  id: Ulid,
  url: z.string().max(MAX_WEBHOOK_URL),
  description: Description,
  events: z.array(WebhookEventType).max(WEBHOOK_EVENT_TYPES.length),
  mode: ModeSchema,
  status: z.enum(["enabled", "disabled"]),
  disabled_reason: z.string().max(1000).nullable().meta({
    description: "Why the endpoint is disabled: by its owner, or after failing for days",
  }),
  disabled_at: Timestamp.nullable(),
  failing_since: Timestamp.nullable().meta({
    description: "The first failed attempt since the last success, if deliveries are failing",
  }),
  secret_rotated_at: Timestamp.nullable(),
  previous_secret_expires_at: Timestamp.nullable().meta({
    description: "Until then deliveries are signed with the previous secret too",
  }),
  created_at: Timestamp,
  updated_at: Timestamp,
}).meta({ description: "A webhook endpoint; its secret is shown only when created or rotated" })
  .register(components, { id: "Webhook" });

/** An endpoint secret, shown once. */
const Secret = z.string().max(96).regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/).meta({
  description: "The signing secret (Standard Webhooks). Shown once: store it now",
});

/** `POST /api/webhooks` 201. */
export const CreatedWebhookSchema = WebhookSchema.extend({ secret: Secret }).meta({
  description: "The created endpoint, with its signing secret (shown this once)",
}).register(components, { id: "CreatedWebhook" });

/** `POST /api/webhooks/{id}/rotate` 200. */
export const RotatedWebhookSchema = WebhookSchema.extend({ secret: Secret }).meta({
  description: "The endpoint with its new signing secret (shown this once); the previous one " +
    "keeps signing until `previous_secret_expires_at`",
}).register(components, { id: "RotatedWebhook" });

/** `GET /api/webhooks` 200. */
export const WebhookListSchema = pageOf(
  WebhookSchema,
  "A page of the caller's webhook endpoints, newest first",
).register(components, { id: "WebhookList" });

/** One delivery of an event to an endpoint. */
export const DeliverySchema = z.object({
  id: Ulid,
  event_id: Ulid.meta({ description: "The event's id: the `webhook-id` header of every attempt" }),
  event_type: z.string().max(64),
  status: z.enum(["pending", "succeeded", "failed"]),
  attempts: z.int().min(0),
  next_attempt_at: Timestamp.nullable().meta({
    description: "When it is tried next (pending deliveries)",
  }),
  last_attempt_at: Timestamp.nullable(),
  response_status: z.int().min(0).max(999).nullable().meta({
    description: "The last attempt's HTTP status",
  }),
  response_body: z.string().max(1024).nullable().meta({
    description: "The first 1,024 bytes of the last answer's body",
  }),
  last_error: z.string().max(1000).nullable(),
  completed_at: Timestamp.nullable(),
  created_at: Timestamp,
}).meta({ description: "A delivery of an event to an endpoint, with its last attempt" }).register(
  components,
  { id: "WebhookDelivery" },
);

/** `GET /api/webhooks/{id}/deliveries` 200. */
export const DeliveryListSchema = pageOf(
  DeliverySchema,
  "A page of an endpoint's deliveries, newest first",
).register(components, { id: "WebhookDeliveryList" });
