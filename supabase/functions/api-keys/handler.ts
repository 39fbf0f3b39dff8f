/**
 * API-key management for signed-in users (JWT only): create, list, get, revoke and roll.
 *
 * Every statement runs as the caller under RLS, and the table's guard trigger enforces what a
 * user may change (a key starts active on the account's tier, may be revoked or have its expiry
 * brought closer, never reactivated; an IP allowlist needs the enterprise tier). The full key
 * is returned once, by create and roll; nothing else ever returns it or its hash.
 *
 * Revocation takes effect on the next request everywhere: revoke and roll bump the key-state
 * epoch of the key's shard before they answer, and a cached key is used only while its epoch is
 * unchanged (see `_shared/auth/api_key.ts` and `key_epoch.ts`). Create, revoke and roll write
 * their webhook events in the same transaction (triggers of the migration); the dispatcher is
 * kicked after the answer.
 *
 * @module
 */
import type { z } from "zod";
import type { HandlerContext, Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import {
  ApiKeySchema,
  CreatedKeySchema,
  type CreateKey,
  KeyListSchema,
  type ListKeysQuery,
  RolledKeySchema,
  type RollKey,
} from "../_shared/schemas/keys.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { ApiError } from "../_shared/errors.ts";
import { invalidField, ulidParam } from "../_shared/http/input.ts";
import type { Tx } from "../_shared/db/client.ts";
import { asUser as asSignedIn, type Refusals } from "../_shared/http/as_user.ts";
import { newestFirst, readById, readPage } from "../_shared/db/read.ts";
import { type RowOf, rowShape } from "../_shared/db/rows.ts";
import { generateApiKey } from "../_shared/auth/key_format.ts";
import { answerUsage } from "../_shared/usage.ts";
import type { KeyUsageQuery } from "../_shared/schemas/usage.ts";
import type { UserPrincipal } from "../_shared/auth/principal.ts";

/** A request of a key operation: always a signed-in user's. */
type Ctx<Q = unknown, B = unknown> = HandlerContext<UserPrincipal, Q, B>;

/** Most active keys one user may hold. */
export const MAX_ACTIVE_KEYS = 100;
/** Furthest expiry a key may be given: 5 years. */
const MAX_EXPIRY_MS = 5 * 366 * 86_400_000;

/** A key as read: one column per field of {@link ApiKeySchema}, and its epoch's shard. */
type KeyRow = RowOf<typeof ApiKeySchema> & {
  /** The key-state epoch's shard of the key (never shown). */
  epoch_shard: number;
};

const KEY = rowShape<typeof ApiKeySchema, KeyRow>(ApiKeySchema, { extra: ["epoch_shard"] });
const COLUMNS = KEY.columns;
const KEYS = newestFirst(COLUMNS, "public.api_keys");

/** A key's metadata as the API shows it; `status` is `expired` once `expires_at` has passed. */
function present(row: KeyRow, now: number): z.input<typeof ApiKeySchema> {
  const lapsed = row.status === "active" && row.expires_at !== null &&
    Date.parse(row.expires_at) <= now;
  return { ...KEY.present(row), status: lapsed ? "expired" : row.status };
}

/** The guard trigger's refusals (migration: api_keys_guard), as catalogued errors. */
const KEY_REFUSALS: Refusals = {
  TV403: () => new ApiError("IP_ALLOWLIST_REQUIRES_ENTERPRISE"),
  TV409: () => new ApiError("KEY_NOT_ACTIVE"),
  TV404: () => new ApiError("NOT_FOUND", { message: "Account not found" }),
};

function asUser<T>(ctx: Ctx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return asSignedIn(ctx, fn, KEY_REFUSALS);
}

function keyId(ctx: Ctx): string {
  return ulidParam(
    ctx.params,
    "id",
    () => new ApiError("NOT_FOUND", { message: "API key not found" }),
  );
}

/** Filters on the status the API shows: an active key past its expiry is `expired`. */
function statusFilter(tx: Tx, status: KeyRow["status"] | undefined) {
  switch (status) {
    case undefined:
      return tx`true`;
    case "active":
      return tx`status = 'active' and (expires_at is null or expires_at > now())`;
    case "expired":
      return tx`(status = 'expired' or (status = 'active' and expires_at <= now()))`;
    default:
      return tx`status = ${status}`;
  }
}

/** The expiry instant a create request asks for, or null for never. */
function expiryOf(body: z.output<typeof CreateKey>, now: number): Date | null {
  if (body.expires_at !== undefined) {
    const at = Date.parse(body.expires_at);
    if (at <= now || at > now + MAX_EXPIRY_MS) {
      throw invalidField("body", "expires_at", "must be in the future and within 5 years");
    }
    return new Date(at);
  }
  switch (body.expires_in) {
    case "90d":
      return new Date(now + 90 * 86_400_000);
    case "1y":
      return new Date(now + 365 * 86_400_000);
    default:
      return null;
  }
}

async function list(ctx: Ctx<z.output<typeof ListKeysQuery>>): Promise<Response> {
  const q = ctx.query;
  const { rows, pagination } = await readPage<KeyRow>(
    (fn) => asUser(ctx, fn),
    KEYS,
    q,
    (tx) => tx`${q.mode ? tx`mode = ${q.mode}` : tx`true`} and ${statusFilter(tx, q.status)}`,
  );
  const now = ctx.services.now();
  return respond(KeyListSchema, { data: rows.map((r) => present(r, now)), pagination });
}

async function get(ctx: Ctx): Promise<Response> {
  const row = await readById<KeyRow>((fn) => asUser(ctx, fn), KEYS, keyId(ctx));
  if (!row) throw new ApiError("NOT_FOUND", { message: "API key not found" });
  return respond(ApiKeySchema, present(row, ctx.services.now()));
}

async function create(ctx: Ctx<unknown, z.output<typeof CreateKey>>): Promise<Response> {
  const body = ctx.body;
  const user = ctx.principal;
  const expiresAt = expiryOf(body, ctx.services.now());
  const generated = generateApiKey(body.mode);
  const row = await asUser(ctx, async (tx) => {
    // One creation at a time per user, so concurrent requests cannot pass the bound together.
    await tx`select pg_advisory_xact_lock(hashtextextended(${user.userId}, 0))`;
    const [count] = await tx<{ n: number }[]>`select count(*)::int as n from public.api_keys
      where status = 'active'`;
    if ((count?.n ?? 0) >= MAX_ACTIVE_KEYS) throw new ApiError("KEY_LIMIT_REACHED");
    const [inserted] = await tx<KeyRow[]>`insert into public.api_keys
        (user_id, name, mode, start, key_hash, scopes, expires_at, ip_allowlist)
      values (${user.userId}, ${body.name}, ${body.mode}, ${generated.start},
        ${generated.hash as never}, ${body.scopes}::text[], ${expiresAt},
        ${body.ip_allowlist ?? null}::cidr[])
      returning ${tx.unsafe(COLUMNS)}`;
    return inserted!;
  });
  ctx.services.webhooks.kick();
  return respond(
    CreatedKeySchema,
    { ...present(row, ctx.services.now()), key: generated.key },
    201,
  );
}

/**
 * Tells every instance that a key's state changed, before the change is acknowledged, so the
 * caller's next request anywhere sees it. If Redis cannot be told, cached lookups still expire
 * within `KEY_CACHE_TTL_MS` (30 s); the failure is logged.
 */
async function announce(ctx: Ctx, key: KeyRow): Promise<void> {
  try {
    await ctx.services.keyEpoch.bump([key.epoch_shard]);
  } catch (error) {
    ctx.log.warn("key state change not announced; caches expire within 30 s", { err: error });
  }
}

async function revoke(ctx: Ctx): Promise<Response> {
  const id = keyId(ctx);
  const row = await asUser(ctx, async (tx) => {
    const [current] = await tx<KeyRow[]>`select ${tx.unsafe(COLUMNS)} from public.api_keys
      where id = ${id} for update`;
    if (!current) throw new ApiError("NOT_FOUND", { message: "API key not found" });
    // Revoking a key that is already over (revoked, or expired by an operator) is not an error.
    if (current.status === "revoked" || current.status === "expired") return current;
    const [updated] = await tx<KeyRow[]>`update public.api_keys set status = 'revoked'
      where id = ${id} returning ${tx.unsafe(COLUMNS)}`;
    return updated!;
  });
  await announce(ctx, row);
  ctx.services.webhooks.kick();
  return respond(ApiKeySchema, present(row, ctx.services.now()));
}

async function roll(ctx: Ctx<unknown, z.output<typeof RollKey>>): Promise<Response> {
  const id = keyId(ctx);
  const { grace_period_seconds: grace } = ctx.body;
  const user = ctx.principal;
  const now = ctx.services.now();
  const result = await asUser(ctx, async (tx) => {
    const [old] = await tx<KeyRow[]>`select ${tx.unsafe(COLUMNS)} from public.api_keys
      where id = ${id} for update`;
    if (!old) throw new ApiError("NOT_FOUND", { message: "API key not found" });
    const lapsed = old.expires_at !== null && Date.parse(old.expires_at) <= now;
    if (old.status !== "active" || lapsed) throw new ApiError("KEY_NOT_ACTIVE");
    const generated = generateApiKey(old.mode);
    const [created] = await tx<KeyRow[]>`insert into public.api_keys
        (user_id, name, mode, start, key_hash, scopes, expires_at, ip_allowlist, rolled_from)
      values (${user.userId}, ${old.name}, ${old.mode}, ${generated.start},
        ${generated.hash as never}, ${old.scopes}::text[], ${old.expires_at},
        ${old.ip_allowlist}::cidr[], ${old.id})
      returning ${tx.unsafe(COLUMNS)}`;
    // The old key lapses when the grace period ends (now, for a grace of 0), never later
    // than it already would have.
    const [previous] = await tx<KeyRow[]>`update public.api_keys
      set expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => ${grace}))
      where id = ${old.id} returning ${tx.unsafe(COLUMNS)}`;
    return { created: created!, previous: previous!, key: generated.key };
  });
  await announce(ctx, result.previous);
  ctx.services.webhooks.kick();
  // Shown as of now, after the change: a grace of 0 has already expired the old key.
  const shown = ctx.services.now();
  return respond(RolledKeySchema, {
    ...present(result.created, shown),
    key: result.key,
    previous_key: present(result.previous, shown),
  }, 201);
}

/**
 * `GET /api/keys/{id}/usage`: the key's usage, if the caller owns it. A malformed id is a 400
 * naming it; another user's key, like an unknown one, is a 404.
 */
async function usage(ctx: Ctx<z.output<typeof KeyUsageQuery>>): Promise<Response> {
  const id = ulidParam(
    ctx.params,
    "id",
    () => invalidField("path", "id", "must be an API key id (a ULID)"),
  );
  return await answerUsage(ctx, async (tx) => {
    const [key] = await tx`select id from public.api_keys where id = ${id}`;
    if (!key) throw new ApiError("NOT_FOUND", { message: "API key not found" });
    return { keyId: id };
  });
}

/** The api-keys function's operations. */
export const operations: Implementations<typeof spec> = {
  listApiKeys: list,
  createApiKey: create,
  getApiKey: get,
  revokeApiKey: revoke,
  rollApiKey: roll,
  getApiKeyUsage: usage,
};
