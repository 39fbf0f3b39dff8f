/**
 * The apps function's routes and operations: third-party apps of the signed-in developer, each
 * an OAuth client of Supabase Auth with the API scopes it asks its users for.
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
  AppListSchema,
  AppSchema,
  CreateApp,
  CreatedAppSchema,
  ListAppsQuery,
  UpdateApp,
} from "./schemas.ts";
import { KeyUsageQuery, USAGE_DESCRIPTION, UsageSchema } from "../_shared/schemas/usage.ts";
import { type FunctionSpec, SMALL_BODY_BYTES, ulidPath } from "../_shared/http/spec.ts";

const TAG = "Apps";

/** The apps function. */
export const spec = {
  gateway: [{ prefix: "/api/apps", target: "" }],
  pathId: ulidPath("The app"),
  routes: [
    {
      path: "/",
      auth: "jwt",
      methods: {
        GET: {
          id: "listApps",
          tag: TAG,
          summary: "List apps",
          description: "The caller's apps, newest first. Never the client secrets.",
          query: ListAppsQuery,
          success: { status: 200, description: "A page of apps", schema: AppListSchema },
        },
        POST: {
          id: "createApp",
          tag: TAG,
          summary: "Register an app",
          description: "Registers an OAuth client with Supabase Auth and the API scopes the app " +
            "asks its users for. A confidential app's client secret is in the answer, shown " +
            "this once. Redirect URIs are checked as Supabase Auth checks them, before " +
            "anything is created.",
          body: { schema: CreateApp, required: true, maxBytes: SMALL_BODY_BYTES },
          success: { status: 201, description: "The app and its secret", schema: CreatedAppSchema },
          errors: ["APP_LIMIT_REACHED", "NOT_FOUND"],
        },
      },
    },
    {
      path: "/:id",
      auth: "jwt",
      methods: {
        GET: {
          id: "getApp",
          tag: TAG,
          summary: "Get an app",
          description: "One of the caller's apps. Never the client secret.",
          success: { status: 200, description: "The app", schema: AppSchema },
          errors: ["NOT_FOUND"],
        },
        PATCH: {
          id: "updateApp",
          tag: TAG,
          summary: "Change an app",
          description: "Name, redirect URIs, website, logo and scopes; `null` removes the " +
            "website or the logo. Users' grants keep the scopes they gave, within the app's.",
          body: { schema: UpdateApp, required: true, maxBytes: SMALL_BODY_BYTES },
          success: { status: 200, description: "The app as changed", schema: AppSchema },
          errors: ["NOT_FOUND"],
        },
        DELETE: {
          id: "deleteApp",
          tag: TAG,
          summary: "Delete an app",
          description: "Deletes the OAuth client and the app: its tokens are refused from the " +
            "next request.",
          success: { status: 204, description: "Deleted" },
          errors: ["NOT_FOUND"],
        },
      },
    },
    {
      path: "/:id/usage",
      auth: "jwt",
      methods: {
        GET: {
          id: "getAppUsage",
          tag: TAG,
          summary: "An app's usage",
          description: "Requests the app made for all its users, per hour or per UTC day, as " +
            "`GET /api/usage` shows them. " + USAGE_DESCRIPTION,
          query: KeyUsageQuery,
          success: { status: 200, description: "The app's usage", schema: UsageSchema },
          errors: ["NOT_FOUND"],
        },
      },
    },
    {
      path: "/:id/rotate",
      auth: "jwt",
      methods: {
        POST: {
          id: "rotateAppSecret",
          tag: TAG,
          summary: "Regenerate a client secret",
          description: "A new client secret for a confidential app, shown this once; the old " +
            "one stops working at once.",
          success: {
            status: 200,
            description: "The app and its new secret",
            schema: CreatedAppSchema,
          },
          errors: ["NOT_FOUND", "APP_IS_PUBLIC"],
        },
      },
    },
  ],
} as const satisfies FunctionSpec;
