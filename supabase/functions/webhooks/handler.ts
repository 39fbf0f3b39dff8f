/**
 * Webhook endpoints of signed-in users (JWT only): create, list, get, update, delete, rotate
 * the secret, send a test event, list deliveries and retry one.
 *
 * Every statement runs as the caller under RLS: another user's endpoint or delivery is invisible,
 * so it is a 404 like one that does not exist. Secrets are written through column grants and
 * the `webhook_rotate_secret` function and never read back: the API shows one when it is made
 * (create, rotate), never again. Test events and retries go through definer functions that check
 * the caller owns the endpoint; the dispatcher is kicked after they answer.
 *
 * @module
 */
import { z } from "zod";
import type { HandlerContext, Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import {
  CreatedWebhookSchema,
  type CreateWebhook,
  DeliveryListSchema,
  DeliverySchema,
  type ListDeliveriesQuery,
  type ListWebhooksQuery,
  MAX_WEBHOOK_ENDPOINTS,
  RotatedWebhookSchema,
  type RotateWebhookSecret,
  type UpdateWebhook,
  WebhookListSchema,
  WebhookSchema,
} from "../_shared/schemas/webhooks.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { changesOf } from "../_shared/schemas/common.ts";
import { ApiError } from "../_shared/errors.ts";
import { invalidField, ulidParam } from "../_shared/http/input.ts";
import type { Tx } from "../_shared/db/client.ts";
import { asUser } from "../_shared/http/as_user.ts";
import { newestFirst, readById, readPage, type RunAsCaller } from "../_shared/db/read.ts";
import { type RowOf, rowShape } from "../_shared/db/rows.ts";
import type { UserPrincipal } from "../_shared/auth/principal.ts";
import { generateSecret } from "../_shared/webhooks/signing.ts";
import { refusedUrl } from "../_shared/webhooks/target.ts";

/** A request of a webhook operation: always a signed-in user's. */
type Ctx<Q = unknown, B = unknown> = HandlerContext<UserPrincipal, Q, B>;

/** An endpoint as read: one column per field of {@link WebhookSchema}. */
type EndpointRow = RowOf<typeof WebhookSchema>;

const ENDPOINT = rowShape(WebhookSchema);
const COLUMNS = ENDPOINT.columns;
const ENDPOINTS = newestFirst(COLUMNS, "public.webhook_endpoints");

/** A delivery as read (the event's type from its event): one column per field. */
type DeliveryRow = RowOf<typeof DeliverySchema>;

const DELIVERY = rowShape(DeliverySchema, { table: "d", sql: { event_type: "ev.type" } });
const DELIVERY_COLUMNS = DELIVERY.columns;
const DELIVERIES = newestFirst(
  DELIVERY_COLUMNS,
  "public.webhook_deliveries d join public.webhook_events ev on ev.id = d.event_id",
  "d",
);

function present(row: EndpointRow, now: number): z.input<typeof WebhookSchema> {
  const previous = row.previous_secret_expires_at;
  return {
    ...ENDPOINT.present(row),
    // A grace period that has ended is no longer news.
    previous_secret_expires_at: previous !== null && Date.parse(previous) > now ? previous : null,
  };
}

function presentDelivery(row: DeliveryRow): z.input<typeof DeliverySchema> {
  const shown = DELIVERY.present(row);
  // Only a pending delivery has a next attempt.
  return row.status === "pending" ? shown : { ...shown, next_attempt_at: null };
}

const notFound = () => new ApiError("NOT_FOUND", { message: "Webhook endpoint not found" });

function idParam(ctx: Ctx, name = "id"): string {
  return ulidParam(
    ctx.params,
    name,
    name === "id" ? notFound : () => new ApiError("NOT_FOUND", { message: "Delivery not found" }),
  );
}

/** The URL's 400 if delivery would refuse it for this mode. */
function checkUrl(ctx: Ctx, url: string, mode: "live" | "test"): void {
  const refused = refusedUrl(url, mode, {
    allowLoopback: ctx.services.config.webhooks.allowLoopback,
  });
  if (refused) throw invalidField("body", "url", refused);
}

async function list(ctx: Ctx<z.output<typeof ListWebhooksQuery>>): Promise<Response> {
  const q = ctx.query;
  const { rows, pagination } = await readPage<EndpointRow>(
    (fn) => asUser(ctx, fn),
    ENDPOINTS,
    q,
    (tx) =>
      tx`${q.mode ? tx`mode = ${q.mode}` : tx`true`}
        and ${q.status ? tx`status = ${q.status}` : tx`true`}`,
  );
  const now = ctx.services.now();
  return respond(WebhookListSchema, { data: rows.map((r) => present(r, now)), pagination });
}

async function create(ctx: Ctx<unknown, z.output<typeof CreateWebhook>>): Promise<Response> {
  const body = ctx.body;
  checkUrl(ctx, body.url, body.mode);
  const secret = generateSecret();
  const row = await asUser(ctx, async (tx) => {
    // One creation at a time per user, so concurrent requests cannot pass the bound together.
    await tx`select pg_advisory_xact_lock(hashtextextended(${
      "webhooks:" + ctx.principal.userId
    }, 0))`;
    const [count] = await tx<{ n: number }[]>`select count(*)::int as n
      from public.webhook_endpoints`;
    if ((count?.n ?? 0) >= MAX_WEBHOOK_ENDPOINTS) throw new ApiError("WEBHOOK_LIMIT_REACHED");
    const [inserted] = await tx<EndpointRow[]>`insert into public.webhook_endpoints
        (mode, url, description, events, secret)
      values (${body.mode}, ${body.url}, ${body.description ?? null}, ${body.events}::text[],
        ${secret})
      returning ${tx.unsafe(COLUMNS)}`;
    return inserted!;
  });
  return respond(CreatedWebhookSchema, { ...present(row, ctx.services.now()), secret }, 201);
}

async function get(ctx: Ctx): Promise<Response> {
  const row = await readById<EndpointRow>((fn) => asUser(ctx, fn), ENDPOINTS, idParam(ctx));
  if (!row) throw notFound();
  return respond(WebhookSchema, present(row, ctx.services.now()));
}

async function update(ctx: Ctx<unknown, z.output<typeof UpdateWebhook>>): Promise<Response> {
  const id = idParam(ctx);
  const body = ctx.body;
  const changes = changesOf(body);
  const row = await asUser(ctx, async (tx) => {
    const [current] = await tx<{ mode: "live" | "test" }[]>`select mode
      from public.webhook_endpoints where id = ${id} for update`;
    if (!current) throw notFound();
    if (body.url !== undefined) checkUrl(ctx, body.url, current.mode);
    const [updated] = await tx<EndpointRow[]>`update public.webhook_endpoints
      set ${tx(changes)} where id = ${id} returning ${tx.unsafe(COLUMNS)}`;
    return updated!;
  });
  return respond(WebhookSchema, present(row, ctx.services.now()));
}

async function remove(ctx: Ctx): Promise<Response> {
  const id = idParam(ctx);
  const rows = await asUser(
    ctx,
    (tx) => tx`delete from public.webhook_endpoints where id = ${id} returning id`,
  );
  if (rows.length === 0) throw notFound();
  return new Response(null, { status: 204 });
}

async function rotate(ctx: Ctx<unknown, z.output<typeof RotateWebhookSecret>>): Promise<Response> {
  const id = idParam(ctx);
  const secret = generateSecret();
  const row = await asUser(ctx, async (tx) => {
    const [rotated] = await tx<{ found: boolean }[]>`select public.webhook_rotate_secret(
      ${id}, ${secret}, ${ctx.body.grace_period_seconds}::int) as found`;
    if (!rotated?.found) throw notFound();
    const [current] = await tx<EndpointRow[]>`select ${tx.unsafe(COLUMNS)}
      from public.webhook_endpoints where id = ${id}`;
    return current!;
  });
  return respond(RotatedWebhookSchema, { ...present(row, ctx.services.now()), secret });
}

/** The delivery `deliveryId` of endpoint `id`, as the caller may see it. */
async function deliveryOf(tx: Tx, id: string, deliveryId: string): Promise<DeliveryRow> {
  const [row] = await tx<DeliveryRow[]>`select ${tx.unsafe(DELIVERY_COLUMNS)}
    from ${tx.unsafe(DELIVERIES.from)}
    where d.id = ${deliveryId} and d.endpoint_id = ${id}`;
  if (!row) throw new ApiError("NOT_FOUND", { message: "Delivery not found" });
  return row;
}

/** Why an endpoint takes no delivery now: missing (404) or disabled (409). */
async function assertEnabled(tx: Tx, id: string): Promise<void> {
  const [endpoint] = await tx<{ status: string }[]>`select status from public.webhook_endpoints
    where id = ${id}`;
  if (!endpoint) throw notFound();
  if (endpoint.status !== "enabled") throw new ApiError("WEBHOOK_DISABLED");
}

async function test(ctx: Ctx): Promise<Response> {
  const id = idParam(ctx);
  const row = await asUser(ctx, async (tx) => {
    await assertEnabled(tx, id);
    const [sent] = await tx<{ event_id: string | null }[]>`select
      public.webhook_send_test(${id}) as event_id`;
    if (!sent?.event_id) throw new ApiError("WEBHOOK_DISABLED");
    const [delivery] = await tx<{ id: string }[]>`select id from public.webhook_deliveries
      where event_id = ${sent.event_id} and endpoint_id = ${id}`;
    return await deliveryOf(tx, id, delivery!.id);
  });
  ctx.services.webhooks.kick();
  return respond(DeliverySchema, presentDelivery(row), 202);
}

async function deliveries(ctx: Ctx<z.output<typeof ListDeliveriesQuery>>): Promise<Response> {
  const id = idParam(ctx);
  const status = ctx.query.status;
  // Each statement runs where the endpoint is known to exist: otherwise the answer is its 404.
  const asUserOfEndpoint: RunAsCaller = (fn) =>
    asUser(ctx, async (tx) => {
      const [endpoint] = await tx`select 1 from public.webhook_endpoints where id = ${id}`;
      if (!endpoint) throw notFound();
      return await fn(tx);
    });
  const { rows, pagination } = await readPage<DeliveryRow>(
    asUserOfEndpoint,
    DELIVERIES,
    ctx.query,
    (tx) => tx`d.endpoint_id = ${id} and ${status ? tx`d.status = ${status}` : tx`true`}`,
  );
  return respond(DeliveryListSchema, { data: rows.map(presentDelivery), pagination });
}

async function retry(ctx: Ctx): Promise<Response> {
  const id = idParam(ctx);
  const deliveryId = idParam(ctx, "delivery_id");
  const retryForMs = ctx.services.config.webhooks.retryForMs;
  const row = await asUser(ctx, async (tx) => {
    await assertEnabled(tx, id);
    const [result] = await tx<{ before: string | null }[]>`select public.webhook_retry_delivery(
      ${id}, ${deliveryId}, ${retryForMs}::bigint * interval '1 millisecond') as before`;
    if (!result?.before) throw new ApiError("NOT_FOUND", { message: "Delivery not found" });
    if (result.before === "in_flight") throw new ApiError("DELIVERY_IN_PROGRESS");
    return await deliveryOf(tx, id, deliveryId);
  });
  ctx.services.webhooks.kick();
  return respond(DeliverySchema, presentDelivery(row), 202);
}

/** The webhooks function's operations. */
export const operations: Implementations<typeof spec> = {
  listWebhooks: list,
  createWebhook: create,
  getWebhook: get,
  updateWebhook: update,
  deleteWebhook: remove,
  rotateWebhookSecret: rotate,
  testWebhook: test,
  listWebhookDeliveries: deliveries,
  retryWebhookDelivery: retry,
};
