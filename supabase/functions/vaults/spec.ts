/**
 * The vaults function's routes and operations: vaults, with a user's token (`/api/vaults`) and with
 * an API key (`/api/v1/vaults`).
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
  CreateVault,
  ListVaultsQuery,
  UpdateVault,
  VaultListSchema,
  VaultSchema,
} from "../_shared/schemas/vaults.ts";
import type { FunctionSpec } from "../_shared/http/spec.ts";

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
  // An API key's scope on /api/v1, a third-party app's on /api/vaults (its user's grant).
  const scope = <S extends "read" | "write" | "delete">(s: S) =>
    keyed ? { scope: s } : { appScope: `vaults:${s}` as const };
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
          description: "Changes the fields given; at least one is required. Setting `status` " +
            (keyed
              ? "to `inactive` is a delete: it needs `delete`."
              : "to `inactive` is a delete: an app's token needs `vaults:delete`."),
          ...scope("write"),
          body: { schema: UpdateVault, required: true },
          success: { status: 200, description: "The updated vault", schema: VaultSchema },
          errors: ["INSUFFICIENT_SCOPE"] as const,
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

// Built outside the spec's literal, whose context would widen their credentials and ids.
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

/** The vaults function. */
export const spec = {
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
} as const satisfies FunctionSpec;
