/**
 * Vaults: list, create, get, update and soft-delete, reachable with a user's JWT at
 * `/api/vaults…` and with an API key at `/api/v1/vaults…` (scopes read / write / delete).
 *
 * Every query runs as the caller under RLS (`asCaller`): a user sees only their own vaults, and
 * an API key sees only its owner's vaults of the key's mode, so test data never meets live data.
 * A change writes its webhook event in the same transaction (a trigger of the migration); the
 * dispatcher is kicked after the answer.
 *
 * @module
 */
import { z } from "zod";
import type { HandlerContext, Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import {
  type CreateVault,
  type ListVaultsQuery,
  type UpdateVault,
  VaultListSchema,
  VaultSchema,
} from "../_shared/schemas/vaults.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { changesOf } from "../_shared/schemas/common.ts";
import { ApiError } from "../_shared/errors.ts";
import { asCaller, sqlState, type Tx } from "../_shared/db/client.ts";
import { readById, readPage, type Source } from "../_shared/db/read.ts";
import { type RowOf, rowShape } from "../_shared/db/rows.ts";
import {
  type AppScope,
  claimsOf,
  type KeyPrincipal,
  type UserPrincipal,
} from "../_shared/auth/principal.ts";
import { appScopeRefusal, keyScopeRefusal } from "../_shared/http/admission.ts";

const VaultId = z.uuid();

/** A vault as read: one column per field of {@link VaultSchema}. */
type VaultRow = RowOf<typeof VaultSchema>;

const VAULT = rowShape(VaultSchema);
const COLUMNS = VAULT.columns;
/** Where vaults are read, and their order (qualified: `created_at` alone is the instant's text). */
export const VAULTS: Source = {
  columns: COLUMNS,
  from: "public.vaults",
  orderBy: "vaults.created_at desc, vaults.id",
};
const present = VAULT.present;

/** A request of a vault operation: a user's or an API key's. */
type Ctx<Q = unknown, B = unknown> = HandlerContext<UserPrincipal | KeyPrincipal, Q, B>;

function asOwner<T>(ctx: Ctx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const claims = claimsOf(ctx.principal);
  return ctx.timing.measure("db", async () => {
    try {
      return await asCaller(ctx.services.sql, claims, fn);
    } catch (error) {
      throw appRefusal(ctx, error) ?? error;
    }
  });
}

/**
 * The database's refusal of an app's change, as the 403 admission would have given: a grant
 * narrowed around the API (SQL, PostgREST) holds at once in the database, while this isolate
 * may still hold the grant as it was until the grant epoch moves. The guard trigger names the
 * scope (TV403); an insert its policy refuses (42501) needed `vaults:write`.
 */
function appRefusal(ctx: Ctx, error: unknown): ApiError | undefined {
  const p = ctx.principal;
  if (p.kind !== "user" || !p.app) return undefined;
  switch (sqlState(error)) {
    case "TV403": {
      const scope = /\b(vaults:(?:write|delete))\b/.exec(String((error as Error).message))?.[1];
      return appLacks((scope ?? "vaults:write") as AppScope);
    }
    case "42501":
      return appLacks("vaults:write");
  }
  return undefined;
}

/** A third-party app's token lacking a scope this change needs (admission checked the route's). */
function appLacks(scope: AppScope): ApiError {
  return new ApiError("INSUFFICIENT_SCOPE", appScopeRefusal(scope));
}

/**
 * Why a change found no vault: none the caller may see (404), or, for an app whose grant was
 * narrowed around the API, one it may read but not change, hidden by the change policies (403).
 */
async function notChanged(ctx: Ctx, id: string, needed: AppScope): Promise<ApiError> {
  const p = ctx.principal;
  if (p.kind === "user" && p.app) {
    const [seen] = await asOwner(ctx, (tx) => tx`select 1 from public.vaults where id = ${id}`);
    if (seen) return appLacks(needed);
  }
  return new ApiError("NOT_FOUND", { message: "Vault not found" });
}

function vaultId(ctx: Ctx): string {
  const parsed = VaultId.safeParse(ctx.params.id);
  // A malformed id names no vault; answering 404 keeps ids opaque.
  if (!parsed.success) throw new ApiError("NOT_FOUND", { message: "Vault not found" });
  return parsed.data;
}

async function list(ctx: Ctx<z.output<typeof ListVaultsQuery>>): Promise<Response> {
  const status = ctx.query.status;
  const { rows, pagination } = await readPage<VaultRow>(
    (fn) => asOwner(ctx, fn),
    VAULTS,
    ctx.query,
    (tx) => status ? tx`status = ${status}` : tx`true`,
  );
  return respond(VaultListSchema, { data: rows.map(present), pagination });
}

async function create(ctx: Ctx<unknown, z.output<typeof CreateVault>>): Promise<Response> {
  const body = ctx.body;
  let row: VaultRow | undefined;
  try {
    [row] = await asOwner(
      ctx,
      (tx) =>
        tx<VaultRow[]>`insert into public.vaults (name, description, tags)
        values (${body.name}, ${body.description ?? null}, ${body.tags})
        returning ${tx.unsafe(COLUMNS)}`,
    );
  } catch (error) {
    // A valid token of a user deleted since it was issued: the same answer as GET /api/me.
    if (sqlState(error) === "23503") throw new ApiError("NOT_FOUND", { message: "User not found" });
    throw error;
  }
  ctx.services.webhooks.kick();
  return respond(VaultSchema, present(row!), 201);
}

async function get(ctx: Ctx): Promise<Response> {
  const row = await readById<VaultRow>((fn) => asOwner(ctx, fn), VAULTS, vaultId(ctx));
  if (!row) throw new ApiError("NOT_FOUND", { message: "Vault not found" });
  return respond(VaultSchema, present(row));
}

async function update(ctx: Ctx<unknown, z.output<typeof UpdateVault>>): Promise<Response> {
  const id = vaultId(ctx);
  const body = ctx.body;
  // Deactivating is a delete (the API's delete is a soft one): an API key needs that scope.
  const p = ctx.principal;
  if (body.status === "inactive" && p.kind === "api_key" && !p.scopes.includes("delete")) {
    throw new ApiError("INSUFFICIENT_SCOPE", keyScopeRefusal("delete"));
  }
  if (body.status === "inactive" && p.kind === "user" && p.app) {
    if (!p.app.scopes.includes("vaults:delete")) throw appLacks("vaults:delete");
  }
  const changes = changesOf(body);
  const [row] = await asOwner(
    ctx,
    (tx) =>
      tx<VaultRow[]>`update public.vaults set ${tx(changes)} where id = ${id}
      returning ${tx.unsafe(COLUMNS)}`,
  );
  if (!row) {
    throw await notChanged(ctx, id, body.status === "inactive" ? "vaults:delete" : "vaults:write");
  }
  ctx.services.webhooks.kick();
  return respond(VaultSchema, present(row));
}

async function remove(ctx: Ctx): Promise<Response> {
  const id = vaultId(ctx);
  const rows = await asOwner(
    ctx,
    (tx) => tx`update public.vaults set status = 'inactive' where id = ${id} returning id`,
  );
  if (rows.length === 0) throw await notChanged(ctx, id, "vaults:delete");
  ctx.services.webhooks.kick();
  return new Response(null, { status: 204 });
}

/**
 * The vaults function's operations: the same five for a user's JWT (`/api/vaults…`) and for an
 * API key (`/api/v1/vaults…`, scopes checked by admission from the manifest).
 */
export const operations: Implementations<typeof spec> = {
  listVaults: list,
  createVault: create,
  getVault: get,
  updateVault: update,
  deleteVault: remove,
  v1ListVaults: list,
  v1CreateVault: create,
  v1GetVault: get,
  v1UpdateVault: update,
  v1DeleteVault: remove,
};
