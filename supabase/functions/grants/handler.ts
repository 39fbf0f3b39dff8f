/**
 * A signed-in user's grants to third-party apps (JWT only): the app a consent page shows, the
 * grant recorded at consent, the list "Authorized apps" shows, and revocation.
 *
 * Grants are read and written as the caller under RLS, so the database's guard
 * (`oauth_grants_guard`) decides: an unknown app is refused (TV404), a scope the app does not ask
 * for too (TV400), a new grant replaces the active one, a revocation is final (TV409); its
 * trigger queues `app_grant.*` events for the app's owner. Apps are their owners' rows, which a
 * user cannot read: what a consent page and a grant show of one (name, website, logo, the
 * developer's email, the scopes it asks for) is read over the service connection, by client id.
 *
 * Every change of grants bumps the user's grant epoch (`_shared/auth/grant_epoch.ts`) before it
 * is acknowledged, so a revoked or narrowed grant is refused on the app's very next request on
 * every instance. A revocation that finds the grant already revoked bumps it too: a retry after
 * Redis failed to hear the first one still announces it.
 *
 * @module
 */
import type { z } from "zod";
import type { HandlerContext, Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import {
  ConsentAppSchema,
  type CreateGrant,
  GrantListSchema,
  GrantSchema,
  type ListGrantsQuery,
} from "./schemas.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { ApiError } from "../_shared/errors.ts";
import { invalidField, ulidParam } from "../_shared/http/input.ts";
import { asUser, type Refusals } from "../_shared/http/as_user.ts";
import { readPage, type Source } from "../_shared/db/read.ts";
import { isoText } from "../_shared/db/rows.ts";
import type { UserPrincipal } from "../_shared/auth/principal.ts";
import { CLIENT_ID } from "../_shared/auth/jwt.ts";

/** A request of a grant operation: always a signed-in user's own. */
type Ctx<Q = unknown, B = unknown> = HandlerContext<UserPrincipal, Q, B>;

/** A grant as read: its columns, the app's fields joined later. */
interface GrantRow {
  id: string;
  client_id: string;
  scopes: string[];
  granted_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** What a grant shows of its app. */
interface AppRow {
  client_id: string;
  name: string;
  website: string | null;
  logo_uri: string | null;
}

/** The instants as the API shows them, formatted by PostgreSQL (db/rows.ts). */
const COLUMNS = `id, client_id, scopes, ${isoText("granted_at")} as granted_at, ` +
  `${isoText("revoked_at")} as revoked_at, ${isoText("last_used_at")} as last_used_at`;
const GRANTS: Source = {
  columns: COLUMNS,
  from: "public.oauth_grants",
  // Qualified: a bare `granted_at` would be the select list's text (db/read.ts).
  orderBy: "oauth_grants.granted_at desc, oauth_grants.id desc",
};

const appNotFound = () => new ApiError("NOT_FOUND", { message: "App not found" });
const grantNotFound = () => new ApiError("NOT_FOUND", { message: "Grant not found" });

/** The guard's refusals of a grant. */
const REFUSALS: Refusals = {
  TV404: appNotFound,
  TV400: () => invalidField("body", "scopes", "includes a scope the app does not ask for"),
  TV409: () => new ApiError("GRANT_REVOKED"),
};

/** The apps of these client ids, as a grant shows them (service connection: others' rows). */
async function appsOf(
  ctx: Ctx,
  clientIds: readonly string[],
): Promise<Map<string, AppRow>> {
  if (clientIds.length === 0) return new Map();
  const rows = await ctx.timing.measure(
    "db",
    () =>
      ctx.services.sql<AppRow[]>`select client_id, name, website, logo_uri
      from public.oauth_apps where client_id = any(${[
        ...new Set(clientIds),
      ]}::text[])`,
  );
  return new Map(rows.map((r) => [r.client_id, r]));
}

function present(
  row: GrantRow,
  app: AppRow | undefined,
): z.input<typeof GrantSchema> {
  return {
    id: row.id,
    client_id: row.client_id,
    // A grant's app is there as long as the grant (deleting an app deletes its grants); one
    // deleted between the two reads is shown nameless rather than failing the list.
    app: {
      name: app?.name ?? "",
      website: app?.website ?? null,
      logo_uri: app?.logo_uri ?? null,
    },
    scopes: row.scopes as z.input<typeof GrantSchema>["scopes"],
    status: row.revoked_at === null ? "active" : "revoked",
    granted_at: row.granted_at,
    revoked_at: row.revoked_at,
    last_used_at: row.last_used_at,
  };
}

/**
 * Tells every instance that the caller's grants changed, before the change is acknowledged. If
 * Redis cannot be told, the answer is a 503: the change is made, and the caller's retry (a
 * revocation answered 409, a grant made again) announces it.
 */
async function announce(ctx: Ctx): Promise<void> {
  try {
    await ctx.timing.measure("redis", () => ctx.services.grantEpoch.bump([ctx.principal.userId]));
  } catch (error) {
    ctx.log.error("grants: a change of grants was not announced", {
      err: error,
    });
    throw new ApiError("SERVICE_UNAVAILABLE");
  }
}

async function consentApp(ctx: Ctx): Promise<Response> {
  const clientId = ctx.params.client_id ?? "";
  if (!CLIENT_ID.test(clientId)) throw appNotFound();
  const [app] = await ctx.timing.measure(
    "db",
    () =>
      ctx.services.sql<
        z.input<typeof ConsentAppSchema>[]
      >`select a.client_id, a.name, a.website,
        a.logo_uri, json_build_object('email', u.email::text) as owner, a.scopes
      from public.oauth_apps a join auth.users u on u.id = a.owner_id
      where a.client_id = ${clientId}`,
  );
  if (!app) throw appNotFound();
  return respond(ConsentAppSchema, app);
}

async function create(
  ctx: Ctx<unknown, z.output<typeof CreateGrant>>,
): Promise<Response> {
  const { client_id: clientId, scopes } = ctx.body;
  const row = await asUser(ctx, async (tx) => {
    const [inserted] = await tx<
      GrantRow[]
    >`insert into public.oauth_grants (client_id, scopes)
      values (${clientId}, ${scopes}::text[]) returning ${tx.unsafe(COLUMNS)}`;
    return inserted!;
  }, REFUSALS);
  await announce(ctx);
  ctx.services.webhooks.kick();
  const apps = await appsOf(ctx, [clientId]);
  return respond(GrantSchema, present(row, apps.get(clientId)), 201);
}

async function list(
  ctx: Ctx<z.output<typeof ListGrantsQuery>>,
): Promise<Response> {
  const { status } = ctx.query;
  const { rows, pagination } = await readPage<GrantRow>(
    (fn) => asUser(ctx, fn),
    GRANTS,
    ctx.query,
    (tx) =>
      status === "active"
        ? tx`revoked_at is null`
        : status === "revoked"
        ? tx`revoked_at is not null`
        : tx`true`,
  );
  const apps = await appsOf(ctx, rows.map((r) => r.client_id));
  return respond(GrantListSchema, {
    data: rows.map((r) => present(r, apps.get(r.client_id))),
    pagination,
  });
}

async function revoke(ctx: Ctx): Promise<Response> {
  const id = ulidParam(ctx.params, "id", grantNotFound);
  const row = await asUser(ctx, async (tx) => {
    const [current] = await tx<GrantRow[]>`select ${tx.unsafe(COLUMNS)}
      from public.oauth_grants where id = ${id} for update`;
    if (!current) throw grantNotFound();
    if (current.revoked_at !== null) return undefined;
    const [updated] = await tx<
      GrantRow[]
    >`update public.oauth_grants set revoked_at = now()
      where id = ${id} returning ${tx.unsafe(COLUMNS)}`;
    return updated!;
  }, REFUSALS);
  await announce(ctx);
  if (row === undefined) throw new ApiError("GRANT_REVOKED");
  ctx.services.webhooks.kick();
  const apps = await appsOf(ctx, [row.client_id]);
  return respond(GrantSchema, present(row, apps.get(row.client_id)));
}

/** The grants function's operations. */
export const operations: Implementations<typeof spec> = {
  listGrants: list,
  createGrant: create,
  getConsentApp: consentApp,
  revokeGrant: revoke,
};
