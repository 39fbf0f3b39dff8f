/**
 * What the reference says about each operation beyond what the route table already knows:
 * its id, summary, input schemas, success body and the errors its handler itself can raise.
 *
 * Keys are `<function> <METHOD> <route path>`, as the functions declare their routes. The
 * document builder refuses to build if a route has no entry here or an entry names no route,
 * so a new endpoint cannot ship undocumented.
 *
 * @module
 */
import type { z } from "zod";
import type { ErrorCode } from "../_shared/http/errors.ts";
import {
  ApiKeySchema,
  CreatedKeySchema,
  HealthOkSchema,
  HealthUnavailableSchema,
  KeyListSchema,
  MeSchema,
  OpenApiDocumentSchema,
  RolledKeySchema,
  V1TestSchema,
  VaultListSchema,
  VaultSchema,
} from "../_shared/schemas/mod.ts";
import { CreateVault, ListQuery, UpdateVault } from "../vaults/handler.ts";
import { CreateKey, ListKeys, RollKey } from "../api-keys/schemas.ts";

/** The documentation of one operation. */
export interface OperationDoc {
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  /** Query parameters, one per property of this object schema (validated by `parseQuery`). */
  query?: z.ZodObject;
  /** JSON body (validated by `readJson`, or `readOptionalJson` when not required). */
  body?: { schema: z.ZodType; required: boolean };
  success: { status: number; description: string; schema?: z.ZodType };
  /** Other answers of the handler itself (not errors of the catalogue). */
  otherResponses?: ReadonlyArray<{ status: number; description: string; schema: z.ZodType }>;
  /** Errors the handler raises itself, beyond authentication, rate limits and input checks. */
  errors?: readonly ErrorCode[];
}

/** Tags, in the order the reference shows them. */
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
  { name: "Reference", description: "This document" },
] as const;

const listVaults = {
  summary: "List vaults",
  description: "Newest first, `limit` (1-100, default 20) from `offset`.",
  query: ListQuery,
  success: { status: 200, description: "A page of vaults", schema: VaultListSchema },
};
const createVault = {
  summary: "Create a vault",
  body: { schema: CreateVault, required: true },
  success: { status: 201, description: "The created vault", schema: VaultSchema },
};
const getVault = {
  summary: "Get a vault",
  success: { status: 200, description: "The vault", schema: VaultSchema },
};
const updateVault = {
  summary: "Update a vault",
  description: "Changes the fields given; at least one is required.",
  body: { schema: UpdateVault, required: true },
  success: { status: 200, description: "The updated vault", schema: VaultSchema },
};
const deleteVault = {
  summary: "Delete a vault",
  description: "A soft delete: the vault's status becomes `inactive`.",
  success: { status: 204, description: "Deleted" },
};

/** Every operation of every function. */
export const OPERATIONS: Readonly<Record<string, OperationDoc>> = {
  "health GET /": {
    operationId: "getHealth",
    summary: "Health check",
    description: "200 when the database and Redis answer, 503 naming the one that does not. " +
      "No credentials needed.",
    tag: "Health",
    success: { status: 200, description: "Healthy", schema: HealthOkSchema },
    otherResponses: [{
      status: 503,
      description: "A dependency is unavailable",
      schema: HealthUnavailableSchema,
    }],
  },
  "v1-test GET /": {
    operationId: "testApiKey",
    summary: "Test an API key",
    description: "Verifies the `X-API-Key` header and describes the key and its rate limits.",
    tag: "Authentication",
    success: { status: 200, description: "The key is valid", schema: V1TestSchema },
  },
  "me GET /": {
    operationId: "getMe",
    summary: "The signed-in user",
    tag: "Authentication",
    success: { status: 200, description: "The user's profile", schema: MeSchema },
    errors: ["NOT_FOUND"],
  },
  "vaults GET /": { operationId: "listVaults", tag: "Vaults", ...listVaults },
  "vaults POST /": { operationId: "createVault", tag: "Vaults", ...createVault },
  "vaults GET /:id": { operationId: "getVault", tag: "Vaults", ...getVault },
  "vaults PATCH /:id": { operationId: "updateVault", tag: "Vaults", ...updateVault },
  "vaults DELETE /:id": { operationId: "deleteVault", tag: "Vaults", ...deleteVault },
  "vaults GET /v1": { operationId: "v1ListVaults", tag: "Vaults (API key)", ...listVaults },
  "vaults POST /v1": { operationId: "v1CreateVault", tag: "Vaults (API key)", ...createVault },
  "vaults GET /v1/:id": { operationId: "v1GetVault", tag: "Vaults (API key)", ...getVault },
  "vaults PATCH /v1/:id": {
    operationId: "v1UpdateVault",
    tag: "Vaults (API key)",
    ...updateVault,
  },
  "vaults DELETE /v1/:id": {
    operationId: "v1DeleteVault",
    tag: "Vaults (API key)",
    ...deleteVault,
  },
  "api-keys GET /": {
    operationId: "listApiKeys",
    summary: "List API keys",
    description: "Newest first; filter by `mode` and `status`. Never the keys themselves.",
    tag: "API keys",
    query: ListKeys,
    success: { status: 200, description: "A page of keys", schema: KeyListSchema },
  },
  "api-keys POST /": {
    operationId: "createApiKey",
    summary: "Create an API key",
    description: "The response holds the key, shown this once. An IP allowlist needs the " +
      "Enterprise tier; `expires_in` and `expires_at` are exclusive.",
    tag: "API keys",
    body: { schema: CreateKey, required: true },
    success: { status: 201, description: "The created key", schema: CreatedKeySchema },
    errors: ["KEY_LIMIT_REACHED", "IP_ALLOWLIST_REQUIRES_ENTERPRISE", "NOT_FOUND"],
  },
  "api-keys GET /:id": {
    operationId: "getApiKey",
    summary: "Get an API key's metadata",
    tag: "API keys",
    success: { status: 200, description: "The key's metadata", schema: ApiKeySchema },
  },
  "api-keys POST /:id/revoke": {
    operationId: "revokeApiKey",
    summary: "Revoke an API key",
    description: "Takes effect on the next request everywhere. Revoking twice is not an error.",
    tag: "API keys",
    success: { status: 200, description: "The revoked key", schema: ApiKeySchema },
    errors: ["KEY_NOT_ACTIVE"],
  },
  "api-keys POST /:id/roll": {
    operationId: "rollApiKey",
    summary: "Roll an API key",
    description: "Issues a replacement with the same name, scopes, expiry and allowlist; the " +
      "old key keeps working for `grace_period_seconds` (default 86400, 0: stops now).",
    tag: "API keys",
    body: { schema: RollKey, required: false },
    success: { status: 201, description: "The replacement key", schema: RolledKeySchema },
    errors: ["KEY_NOT_ACTIVE", "IP_ALLOWLIST_REQUIRES_ENTERPRISE"],
  },
  "openapi GET /": {
    operationId: "getOpenApiDocument",
    summary: "This API reference",
    description: "The OpenAPI 3.1 document of the API, generated from the schemas that " +
      "validate requests and shape responses.",
    tag: "Reference",
    success: { status: 200, description: "The document", schema: OpenApiDocumentSchema },
  },
};
