/**
 * Vaults: list, create, get, update and soft-delete, reachable with a user's JWT at
 * `/api/vaults…` and with an API key at `/api/v1/vaults…` (scopes read / write / delete).
 *
 * Every query runs as the caller under RLS (`asCaller`): a user sees only their own vaults, and
 * an API key sees only its owner's vaults of the key's mode, so test data never meets live data.
 *
 * @module
 */
import { z } from "zod";
import {
  defineFunction,
  type Operation,
  type RequestContext,
  type RouteSpec,
} from "../_shared/http/app.ts";
import { VaultListSchema, VaultSchema } from "../_shared/schemas/vaults.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { ApiError } from "../_shared/http/errors.ts";
import { parseQuery, readJson } from "../_shared/http/input.ts";
import { asCaller, sqlState, type Tx } from "../_shared/db/client.ts";
import { claimsOf } from "../_shared/auth/principal.ts";

const Tag = z.string().min(1).max(64);

/** Query of the list operation. */
export const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  status: z.enum(["active", "inactive"]).optional(),
});

/** Body of the create operation. Names arrive encrypted by the client; stored as given. */
export const CreateVault = z.strictObject({
  name: z.string().min(1).max(10_000),
  description: z.string().max(100_000).nullable().optional(),
  tags: z.array(Tag).max(50).default([]),
});

/** Body of the update operation: at least one field. */
export const UpdateVault = z.strictObject({
  name: z.string().min(1).max(10_000).optional(),
  description: z.string().max(100_000).nullable().optional(),
  tags: z.array(Tag).max(50).optional(),
  status: z.enum(["active", "inactive"]).optional(),
}).refine((v) => Object.keys(v).length > 0, { message: "at least one field is required" });

const VaultId = z.uuid();

interface VaultRow {
  id: string;
  name: string;
  description: string | null;
  tags: string[];
  status: "active" | "inactive";
  mode: "live" | "test";
  created_at: Date;
  updated_at: Date;
  total?: string;
}

const COLUMNS = "id, name, description, tags, status, mode, created_at, updated_at";

function present(row: VaultRow): z.input<typeof VaultSchema> {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    tags: row.tags,
    status: row.status,
    mode: row.mode,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

function asOwner<T>(ctx: RequestContext, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (!ctx.principal) throw new Error("vault routes are authenticated");
  const claims = claimsOf(ctx.principal);
  return ctx.timing.measure("db", () => asCaller(ctx.services.sql, claims, fn));
}

function vaultId(ctx: RequestContext): string {
  const parsed = VaultId.safeParse(ctx.params.id);
  // A malformed id names no vault; answering 404 keeps ids opaque.
  if (!parsed.success) throw new ApiError("NOT_FOUND", { message: "Vault not found" });
  return parsed.data;
}

async function list(ctx: RequestContext): Promise<Response> {
  const q = parseQuery(ctx.url, ListQuery);
  const rows = await asOwner(
    ctx,
    (tx) =>
      tx<VaultRow[]>`select ${tx.unsafe(COLUMNS)}, count(*) over () as total
      from public.vaults
      where ${q.status ? tx`status = ${q.status}` : tx`true`}
      order by created_at desc, id
      limit ${q.limit} offset ${q.offset}`,
  );
  const total = rows[0]?.total !== undefined
    ? Number(rows[0].total)
    : await countAll(ctx, q.status);
  return respond(VaultListSchema, {
    data: rows.map(present),
    pagination: { limit: q.limit, offset: q.offset, total },
  });
}

// An offset past the end returns no rows, and with them no window count: count separately.
function countAll(ctx: RequestContext, status: string | undefined): Promise<number> {
  return asOwner(ctx, async (tx) => {
    const [row] = await tx<{ n: string }[]>`select count(*) as n from public.vaults
      where ${status ? tx`status = ${status}` : tx`true`}`;
    return Number(row?.n ?? 0);
  });
}

async function create(ctx: RequestContext): Promise<Response> {
  const body = await readJson(ctx.req, CreateVault);
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
  return respond(VaultSchema, present(row!), 201);
}

async function get(ctx: RequestContext): Promise<Response> {
  const id = vaultId(ctx);
  const [row] = await asOwner(
    ctx,
    (tx) => tx<VaultRow[]>`select ${tx.unsafe(COLUMNS)} from public.vaults where id = ${id}`,
  );
  if (!row) throw new ApiError("NOT_FOUND", { message: "Vault not found" });
  return respond(VaultSchema, present(row));
}

async function update(ctx: RequestContext): Promise<Response> {
  const id = vaultId(ctx);
  const body = await readJson(ctx.req, UpdateVault);
  // Deactivating is a delete (the API's delete is a soft one): an API key needs that scope.
  const p = ctx.principal;
  if (body.status === "inactive" && p?.kind === "api_key" && !p.scopes.includes("delete")) {
    throw new ApiError("INSUFFICIENT_SCOPE", {
      message: "API key lacks the 'delete' scope",
      extra: { required_scope: "delete" },
    });
  }
  const changes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (v !== undefined) changes[k] = v;
  const [row] = await asOwner(
    ctx,
    (tx) =>
      tx<VaultRow[]>`update public.vaults set ${tx(changes)} where id = ${id}
      returning ${tx.unsafe(COLUMNS)}`,
  );
  if (!row) throw new ApiError("NOT_FOUND", { message: "Vault not found" });
  return respond(VaultSchema, present(row));
}

async function remove(ctx: RequestContext): Promise<Response> {
  const id = vaultId(ctx);
  const rows = await asOwner(
    ctx,
    (tx) => tx`update public.vaults set status = 'inactive' where id = ${id} returning id`,
  );
  if (rows.length === 0) throw new ApiError("NOT_FOUND", { message: "Vault not found" });
  return new Response(null, { status: 204 });
}

const collection = (scoped: boolean): RouteSpec["methods"] => ({
  GET: op(list, scoped ? "read" : undefined),
  POST: op(create, scoped ? "write" : undefined),
});
const item = (scoped: boolean): RouteSpec["methods"] => ({
  GET: op(get, scoped ? "read" : undefined),
  PATCH: op(update, scoped ? "write" : undefined),
  DELETE: op(remove, scoped ? "delete" : undefined),
});

function op(handler: Operation["handler"], scope: Operation["scope"] | undefined): Operation {
  return scope ? { handler, scope } : { handler };
}

/** The vaults function's routes: `/v1…` for API keys first, so `v1` is never taken for an id. */
export const routes: readonly RouteSpec[] = [
  { path: "/v1", auth: "api_key", methods: collection(true) },
  { path: "/v1/:id", auth: "api_key", methods: item(true) },
  { path: "/", auth: "jwt", methods: collection(false) },
  { path: "/:id", auth: "jwt", methods: item(false) },
];

/** The vaults function's handler. */
export const handler = defineFunction("vaults", routes);
