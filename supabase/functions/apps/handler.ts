/**
 * Third-party apps of signed-in developers (JWT only): register, list, get, change, delete and
 * regenerate the client secret.
 *
 * An app is two records: the OAuth client in Supabase Auth (what authorizes and issues tokens,
 * and holds the secret) and the app's row in `public.oauth_apps` (owner, API scopes, tier, and
 * a copy of what the console lists). Auth is written first, so a failure leaves nothing the API
 * would trust: a client without its row has no app, so its tokens get nothing (the database's
 * `request_app_scopes()` and the API both need the row). Creating the row needs the service
 * connection (a client id must be one Auth issued to this developer); if it fails, the client
 * is deleted again. Deleting goes the other way round (Auth first, then the row), so a failed
 * delete can be retried: Auth's 404 counts as deleted.
 *
 * Reads and changes run as the caller under RLS: another developer's app is a 404 like one that
 * does not exist. Client secrets are shown once and never stored here.
 *
 * @module
 */
import type { z } from "zod";
import type { HandlerContext, Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import {
  AppListSchema,
  AppSchema,
  type CreateApp,
  CreatedAppSchema,
  type ListAppsQuery,
  type UpdateApp,
} from "./schemas.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { changesOf } from "../_shared/schemas/common.ts";
import type { KeyUsageQuery } from "../_shared/schemas/usage.ts";
import { answerUsage } from "../_shared/usage.ts";
import { ApiError } from "../_shared/errors.ts";
import { invalidField, ulidParam } from "../_shared/http/input.ts";
import { inTransaction } from "../_shared/db/client.ts";
import { asUser, refused } from "../_shared/http/as_user.ts";
import { newestFirst, readById, readPage } from "../_shared/db/read.ts";
import { type RowOf, rowShape } from "../_shared/db/rows.ts";
import type { UserPrincipal } from "../_shared/auth/principal.ts";
import {
  type AuthAdmin,
  AuthAdminRefused,
  AuthAdminUnavailable,
  createAuthAdmin,
} from "./auth_admin.ts";

/** A request of an app operation: always a signed-in developer's. */
type Ctx<Q = unknown, B = unknown> = HandlerContext<UserPrincipal, Q, B>;

/** Most apps one developer may register. */
export const MAX_APPS = 25;

type AppRow = RowOf<typeof AppSchema>;
const APP = rowShape(AppSchema);
const COLUMNS = APP.columns;
const APPS = newestFirst(COLUMNS, "public.oauth_apps");

const notFound = () => new ApiError("NOT_FOUND", { message: "App not found" });

const accountNotFound = () => new ApiError("NOT_FOUND", { message: "Account not found" });

function idParam(ctx: Ctx): string {
  return ulidParam(ctx.params, "id", notFound);
}

/** Auth's admin API, or a 503 when the deployment gave no service role key. */
function authAdmin(ctx: Ctx): AuthAdmin {
  const { supabaseUrl, authAdminKey } = ctx.services.config;
  if (authAdminKey === undefined) {
    ctx.services.log.error("apps: SUPABASE_SERVICE_ROLE_KEY is not set; apps cannot be managed");
    throw new ApiError("CONFIGURATION_INVALID");
  }
  return createAuthAdmin(supabaseUrl, authAdminKey);
}

/** Runs an Auth admin call, timed; Auth's refusal is a 400, its absence a 503. */
async function inAuth<T>(ctx: Ctx, field: string, call: () => Promise<T>): Promise<T> {
  try {
    return await ctx.timing.measure("auth", call);
  } catch (error) {
    if (error instanceof AuthAdminRefused) {
      throw invalidField("body", field, `Supabase Auth refused it: ${error.message}`);
    }
    if (error instanceof AuthAdminUnavailable) {
      ctx.services.log.warn("apps: Supabase Auth admin API failed", { err: error });
      throw new ApiError("SERVICE_UNAVAILABLE");
    }
    throw error;
  }
}

async function list(ctx: Ctx<z.output<typeof ListAppsQuery>>): Promise<Response> {
  const { rows, pagination } = await readPage<AppRow>(
    (fn) => asUser(ctx, fn),
    APPS,
    ctx.query,
    (tx) => tx`true`,
  );
  return respond(AppListSchema, { data: rows.map(APP.present), pagination });
}

async function create(ctx: Ctx<unknown, z.output<typeof CreateApp>>): Promise<Response> {
  const body = ctx.body;
  const owner = ctx.principal.userId;
  const admin = authAdmin(ctx);
  // Refused before Auth makes a client; checked again under the lock below.
  await asUser(ctx, async (tx) => {
    const [row] = await tx<{ apps: number; account: boolean }[]>`select
      (select count(*)::int from public.oauth_apps) as apps,
      exists (select 1 from public.accounts) as account`;
    if (!row?.account) throw accountNotFound();
    if (row.apps >= MAX_APPS) throw new ApiError("APP_LIMIT_REACHED");
  });
  const client = await inAuth(ctx, "redirect_uris", () =>
    admin.createClient({
      client_name: body.name,
      client_type: body.client_type,
      redirect_uris: body.redirect_uris,
      client_uri: body.website,
      logo_uri: body.logo_uri,
    }));
  let row: AppRow;
  try {
    row = await ctx.timing.measure("db", () =>
      inTransaction(ctx.services.sql, {}, async (tx) => {
        // One registration at a time per developer, so concurrent ones cannot pass the bound.
        await tx`select pg_advisory_xact_lock(hashtextextended(${"apps:" + owner}, 0))`;
        const [count] = await tx<{ n: number }[]>`select count(*)::int as n
          from public.oauth_apps where owner_id = ${owner}`;
        if ((count?.n ?? 0) >= MAX_APPS) throw new ApiError("APP_LIMIT_REACHED");
        const [inserted] = await tx<AppRow[]>`insert into public.oauth_apps
            (owner_id, client_id, client_type, name, website, logo_uri, redirect_uris, scopes)
          values (${owner}, ${client.client_id}, ${client.client_type}, ${body.name},
            ${body.website ?? null}, ${body.logo_uri ?? null}, ${body.redirect_uris}::text[],
            ${body.scopes}::text[])
          returning ${tx.unsafe(COLUMNS)}`;
        return inserted!;
      }));
  } catch (error) {
    // No row, no app: the client goes too (its secret was never shown).
    await admin.deleteClient(client.client_id).catch((e) =>
      ctx.services.log.error("apps: a client without its app is left in Supabase Auth", {
        err: e,
        client_id: client.client_id,
      })
    );
    // The guard trigger gives the app its owner's account tier (TV404: no account).
    throw refused(error, { TV404: accountNotFound }) ?? error;
  }
  return respond(
    CreatedAppSchema,
    { ...APP.present(row), client_secret: client.client_secret ?? null },
    201,
  );
}

async function get(ctx: Ctx): Promise<Response> {
  const row = await readById<AppRow>((fn) => asUser(ctx, fn), APPS, idParam(ctx));
  if (!row) throw notFound();
  return respond(AppSchema, APP.present(row));
}

async function update(ctx: Ctx<unknown, z.output<typeof UpdateApp>>): Promise<Response> {
  const id = idParam(ctx);
  const body = ctx.body;
  const current = await readById<AppRow>((fn) => asUser(ctx, fn), APPS, id);
  if (!current) throw notFound();
  // What Supabase Auth keeps of the client changes there first (the consent page shows it).
  const auth = {
    ...(body.name !== undefined ? { client_name: body.name } : {}),
    ...(body.redirect_uris !== undefined ? { redirect_uris: body.redirect_uris } : {}),
    ...(body.website !== undefined ? { client_uri: body.website } : {}),
    ...(body.logo_uri !== undefined ? { logo_uri: body.logo_uri } : {}),
  };
  if (Object.keys(auth).length > 0) {
    const admin = authAdmin(ctx);
    await inAuth(ctx, "redirect_uris", () => admin.updateClient(current.client_id, auth));
  }
  // `updated_at` is the guard trigger's (oauth_apps_guard).
  const changes = changesOf(body);
  const row = await asUser(ctx, async (tx) => {
    const [updated] = await tx<AppRow[]>`update public.oauth_apps set ${tx(changes)}
      where id = ${id} returning ${tx.unsafe(COLUMNS)}`;
    if (!updated) throw notFound();
    return updated;
  });
  return respond(AppSchema, APP.present(row));
}

async function remove(ctx: Ctx): Promise<Response> {
  const id = idParam(ctx);
  const current = await readById<AppRow>((fn) => asUser(ctx, fn), APPS, id);
  if (!current) throw notFound();
  const admin = authAdmin(ctx);
  await inAuth(ctx, "id", () => admin.deleteClient(current.client_id));
  await asUser(ctx, (tx) => tx`delete from public.oauth_apps where id = ${id}`);
  return new Response(null, { status: 204 });
}

async function rotate(ctx: Ctx): Promise<Response> {
  const id = idParam(ctx);
  const current = await readById<AppRow>((fn) => asUser(ctx, fn), APPS, id);
  if (!current) throw notFound();
  if (current.client_type === "public") throw new ApiError("APP_IS_PUBLIC");
  const admin = authAdmin(ctx);
  const client = await inAuth(ctx, "id", () => admin.regenerateSecret(current.client_id));
  return respond(CreatedAppSchema, {
    ...APP.present(current),
    client_secret: client.client_secret,
  });
}

async function usage(ctx: Ctx<z.output<typeof KeyUsageQuery>>): Promise<Response> {
  const id = idParam(ctx);
  return await answerUsage(ctx, async (tx) => {
    const [app] = await tx<{ client_id: string }[]>`select client_id from public.oauth_apps
      where id = ${id}`;
    if (!app) throw notFound();
    return { clientId: app.client_id };
  });
}

/** The apps function's operations. */
export const operations: Implementations<typeof spec> = {
  listApps: list,
  createApp: create,
  getApp: get,
  updateApp: update,
  deleteApp: remove,
  rotateAppSecret: rotate,
  getAppUsage: usage,
};
