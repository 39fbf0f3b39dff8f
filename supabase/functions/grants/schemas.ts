/**
 * Grants: what a user gives a third-party app at consent (the API scopes chosen, a subset of
 * those the app asks for), what the consent page shows of the app, and the user's grants as the
 * console's "Authorized apps" lists them.
 *
 * @module
 */
import { z } from "zod";
import { components } from "../_shared/schemas/component.ts";
import { AppScopeList, AppScopes } from "../_shared/schemas/app_scopes.ts";
import { listQuery, pageOf, Timestamp, Ulid, Uuid } from "../_shared/schemas/common.ts";

/** Longest app name, URI and email shown (the apps' and Supabase Auth's limits). */
const MAX_NAME = 100;
const MAX_URI = 2048;
const MAX_EMAIL = 320;

const ClientId = Uuid.meta({
  description: "The app's OAuth client id (Supabase Auth's)",
});

/** What the consent page shows of an app before the user grants it anything. */
export const ConsentAppSchema = z.object({
  client_id: ClientId,
  name: z.string().max(MAX_NAME),
  website: z.string().max(MAX_URI).nullable(),
  logo_uri: z.string().max(MAX_URI).nullable(),
  owner: z.object({
    email: z.string().max(MAX_EMAIL).nullable().meta({
      description: "The email address of the developer who registered the app",
    }),
  }),
  scopes: AppScopeList.meta({ description: "The API scopes the app asks for" }),
}).meta({ description: "An app as its consent page shows it" }).register(
  components,
  {
    id: "ConsentApp",
  },
);

/** Body of `POST /api/grants`. */
export const CreateGrant = z.strictObject({
  client_id: ClientId,
  scopes: AppScopes.meta({
    description: "The API scopes granted: some or all of those the app asks for; " +
      "`vaults:write` and `vaults:delete` come with `vaults:read`",
  }),
}).register(components, { id: "CreateGrantRequest" });

/** A user's grant to an app. */
export const GrantSchema = z.object({
  id: Ulid,
  client_id: ClientId,
  app: z.object({
    name: z.string().max(MAX_NAME),
    website: z.string().max(MAX_URI).nullable(),
    logo_uri: z.string().max(MAX_URI).nullable(),
  }),
  scopes: AppScopeList,
  status: z.enum(["active", "revoked"]).meta({
    description: "`revoked` once the user revoked it or granted the app again",
  }),
  granted_at: Timestamp,
  revoked_at: Timestamp.nullable(),
  last_used_at: Timestamp.nullable().meta({
    description: "The app's last request with it (moved at most once a minute)",
  }),
}).meta({ description: "A user's grant to a third-party app" }).register(
  components,
  {
    id: "Grant",
  },
);

/** Query of `GET /api/grants`. */
export const ListGrantsQuery = listQuery({
  status: z.enum(["active", "revoked", "all"]).default("active").meta({
    description: "Which grants: the active ones (default), the revoked ones, or all",
  }),
});

/** `GET /api/grants` 200. */
export const GrantListSchema = pageOf(GrantSchema, "A page of grants, newest first").register(
  components,
  { id: "GrantList" },
);
