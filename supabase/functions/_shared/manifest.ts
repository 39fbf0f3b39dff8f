/**
 * The route manifest: every function of the API, gathered from the functions' own specs
 * (`<function>/spec.ts`: where the gateway mounts it, its routes with their credentials, each
 * operation with its id, documentation, scope, input schemas and answers).
 *
 * It only gathers. A function's pipeline reads the function's own spec, never this module, so no
 * function loads another's schemas. What needs every function reads it here: the gateway route
 * table (`routes.ts`), the dev server, the gateway export, the OpenAPI document and the security
 * test matrix. It holds no handler: no function reaches into another's code through it.
 *
 * @module
 */
import type { FunctionSpec, OperationSpec, RouteSpec } from "./http/spec.ts";
import { spec as health } from "../health/spec.ts";
import { spec as v1Test } from "../v1-test/spec.ts";
import { spec as me } from "../me/spec.ts";
import { spec as account } from "../account/spec.ts";
import { spec as vaults } from "../vaults/spec.ts";
import { spec as apiKeys } from "../api-keys/spec.ts";
import { spec as usage } from "../usage/spec.ts";
import { spec as webhooks } from "../webhooks/spec.ts";
import { spec as apps } from "../apps/spec.ts";
import { spec as grants } from "../grants/spec.ts";
import { spec as openapi } from "../openapi/spec.ts";

/** Sections of the reference, in the order it shows them. */
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
  {
    name: "Usage",
    description: "Requests made with the caller's API keys, per hour or day (bearer token)",
  },
  {
    name: "Webhooks",
    description: "Endpoints that receive signed events (Standard Webhooks), their deliveries " +
      "and retries (bearer token)",
  },
  {
    name: "Apps",
    description: "Third-party apps: OAuth clients of Supabase Auth with the API scopes they " +
      "ask their users for (bearer token)",
  },
  {
    name: "Grants",
    description: "What the signed-in user grants third-party apps at consent, and revokes " +
      "(bearer token: the user's own, never an app's)",
  },
  { name: "Reference", description: "This document" },
] as const;

/** Every function of the API, by the name it is deployed under. */
export const MANIFEST = {
  health,
  "v1-test": v1Test,
  me,
  account,
  vaults,
  "api-keys": apiKeys,
  usage,
  webhooks,
  apps,
  grants,
  openapi,
} as const satisfies Record<string, FunctionSpec>;

/** A function's name. */
export type FunctionName = keyof typeof MANIFEST;
/** The deployable functions, in the manifest's order. */
export const FUNCTIONS = Object.keys(MANIFEST) as FunctionName[];

/** A route of the manifest with its function. */
export interface ManifestRoute {
  function: FunctionName;
  route: RouteSpec;
}

/** Every operation of the manifest: its function, route, method and spec. */
export function operations(): Array<
  ManifestRoute & { method: keyof RouteSpec["methods"]; operation: OperationSpec }
> {
  return FUNCTIONS.flatMap((name) =>
    (MANIFEST[name].routes as readonly RouteSpec[]).flatMap((route) =>
      (Object.entries(route.methods) as Array<[keyof RouteSpec["methods"], OperationSpec]>)
        .map(([method, operation]) => ({ function: name, route, method, operation }))
    )
  );
}
