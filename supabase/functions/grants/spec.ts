/**
 * The grants function's routes and operations: what a signed-in user gives third-party apps.
 * The consent page reads the app it is asked to approve, records the scopes the user chose
 * before it approves the authorization with Supabase Auth, and "Authorized apps" lists and
 * revokes them. The user's own token only (an app's token never reaches account routes).
 *
 * @module
 */
import {
  ConsentAppSchema,
  CreateGrant,
  GrantListSchema,
  GrantSchema,
  ListGrantsQuery,
} from "./schemas.ts";
import { type FunctionSpec, SMALL_BODY_BYTES, ulidPath } from "../_shared/http/spec.ts";

const TAG = "Grants";

/** The grants function. */
export const spec = {
  gateway: [{ prefix: "/api/grants", target: "" }],
  pathId: ulidPath("The grant"),
  pathParams: {
    client_id: {
      description: "The app's OAuth client id",
      schema: { type: "string", format: "uuid", minLength: 36, maxLength: 36 },
    },
  },
  routes: [
    {
      path: "/",
      auth: "jwt",
      methods: {
        GET: {
          id: "listGrants",
          tag: TAG,
          summary: "List grants",
          description: "The caller's grants to third-party apps, newest first, with the app's " +
            "name, website and logo.",
          query: ListGrantsQuery,
          success: {
            status: 200,
            description: "A page of grants",
            schema: GrantListSchema,
          },
        },
        POST: {
          id: "createGrant",
          tag: TAG,
          summary: "Grant an app API scopes",
          description: "Records the API scopes the caller grants an app at consent, some or " +
            "all of those it asks for, before the authorization is approved with Supabase " +
            "Auth. It replaces the caller's active grant to that app, and the app's tokens " +
            "get the new scopes from their next request. The app's owner gets " +
            "`app_grant.created` (and `app_grant.revoked` for the grant replaced).",
          body: {
            schema: CreateGrant,
            required: true,
            maxBytes: SMALL_BODY_BYTES,
          },
          success: {
            status: 201,
            description: "The grant",
            schema: GrantSchema,
          },
          errors: ["NOT_FOUND"],
        },
      },
    },
    {
      path: "/apps/:client_id",
      auth: "jwt",
      methods: {
        GET: {
          id: "getConsentApp",
          tag: TAG,
          summary: "Get an app to consent to",
          description: "What the consent page shows of an app: its name, website, logo, " +
            "the email address of its developer and the API scopes it asks for.",
          success: {
            status: 200,
            description: "The app",
            schema: ConsentAppSchema,
          },
          errors: ["NOT_FOUND"],
        },
      },
    },
    {
      path: "/:id/revoke",
      auth: "jwt",
      methods: {
        POST: {
          id: "revokeGrant",
          tag: TAG,
          summary: "Revoke a grant",
          description: "The app's tokens are refused from the next request, on every " +
            "instance; the app's owner gets `app_grant.revoked`. Supabase Auth's own grant " +
            "(what lets the app refresh) is revoked by the user with supabase-js " +
            "`auth.oauth.revokeGrant`, as the console does.",
          success: {
            status: 200,
            description: "The grant, revoked",
            schema: GrantSchema,
          },
          errors: ["NOT_FOUND", "GRANT_REVOKED"],
        },
      },
    },
  ],
} as const satisfies FunctionSpec;
