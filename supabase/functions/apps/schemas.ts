/**
 * Third-party apps: what a developer sends to register one (an OAuth client of Supabase Auth
 * with the API scopes it asks for) and what they get back. The checks are Supabase Auth's own
 * for its OAuth clients (internal/api/oauthserver/service.go: at most 10 redirect URIs, absolute
 * with a host, no fragment, no `javascript:`/`data:`/`file:`-like scheme, plain http only for a
 * loopback host; names up to 1,024 characters, URIs up to 2,048), made here first so that a bad
 * request is a 400 naming its field before anything is created, and the database's rules for
 * scopes (`app_scopes_valid`: writing or deleting vaults comes with reading them).
 *
 * @module
 */
import { z } from "zod";
import { components } from "../_shared/schemas/component.ts";
import { AppScopeList, AppScopes } from "../_shared/schemas/app_scopes.ts";
import { listQuery, pageOf, Timestamp, Ulid, updateBody, Uuid } from "../_shared/schemas/common.ts";

/** Longest app name (the database's check; Supabase Auth allows 1,024). */
export const MAX_APP_NAME = 100;
/** Most redirect URIs of a client (Supabase Auth's limit). */
export const MAX_REDIRECT_URIS = 10;
/** Longest URI of a client (Supabase Auth's limit for `client_uri` and `logo_uri`). */
export const MAX_URI_LENGTH = 2048;
/** Schemes Supabase Auth refuses in a redirect URI. */
const DANGEROUS_SCHEMES = new Set([
  "javascript",
  "data",
  "file",
  "vbscript",
  "about",
  "blob",
]);
/** Hosts plain http is allowed for in a redirect URI (Supabase Auth's list). */
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Why a redirect URI would be refused by Supabase Auth, or undefined when it is accepted. */
export function redirectUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "must be an absolute URI";
  }
  const scheme = url.protocol.slice(0, -1);
  if (DANGEROUS_SCHEMES.has(scheme)) {
    return `the ${scheme}: scheme is not allowed`;
  }
  // `myapp:/cb` parses with an empty host; Supabase Auth needs scheme://host.
  if (url.host === "" || !uri.slice(scheme.length + 1).startsWith("//")) {
    return "must have a scheme and a host (scheme://host/...)";
  }
  if (scheme === "http" && !LOOPBACK_HOSTS.has(url.hostname)) {
    return "plain http is allowed for localhost, 127.0.0.1 and [::1] only; use https";
  }
  if (uri.includes("#")) return "must not have a fragment";
  return undefined;
}

/** A redirect URI as Supabase Auth accepts it; compared exactly, so kept exactly as sent. */
export const RedirectUri = z.string().min(1).max(MAX_URI_LENGTH).check(
  (ctx) => {
    const problem = redirectUriProblem(ctx.value);
    if (problem !== undefined) {
      ctx.issues.push({ code: "custom", message: problem, input: ctx.value });
    }
  },
).meta({
  description: "Compared exactly. https, a custom scheme (`myapp://callback`), or http on a " +
    "loopback host; no fragment",
  examples: ["https://app.example.com/oauth/callback"],
});

/** A web page of the app: its site or its logo (shown on the consent page, so https). */
const WebUri = z.url({ protocol: /^https$/, hostname: z.regexes.domain }).max(
  MAX_URI_LENGTH,
);

/** The scopes an app asks for. */
const Scopes = AppScopes;

const RedirectUris = z.array(RedirectUri).min(1).max(MAX_REDIRECT_URIS).check(
  (ctx) => {
    if (new Set(ctx.value).size !== ctx.value.length) {
      ctx.issues.push({
        code: "custom",
        message: "a redirect URI is listed twice",
        input: ctx.value,
      });
    }
  },
);

/** Body of `POST /api/apps`. */
export const CreateApp = z.strictObject({
  name: z.string().trim().min(1).max(MAX_APP_NAME),
  redirect_uris: RedirectUris,
  client_type: z.enum(["public", "confidential"]).default("confidential").meta({
    description: "`confidential` (a server that keeps a secret; `client_secret_basic`) or " +
      "`public` (a browser or mobile app; PKCE alone)",
  }),
  website: WebUri.optional(),
  logo_uri: WebUri.optional(),
  scopes: Scopes,
}).register(components, { id: "CreateAppRequest" });

/** Body of `PATCH /api/apps/{id}`: what changes (the type of client does not). */
export const UpdateApp = updateBody(
  {
    name: z.string().trim().min(1).max(MAX_APP_NAME).optional(),
    redirect_uris: RedirectUris.optional(),
    website: WebUri.nullable().optional(),
    logo_uri: WebUri.nullable().optional(),
    scopes: Scopes.optional(),
  },
  "UpdateAppRequest",
  "nothing to change",
);

/** An app as its owner sees it (never the client secret). */
export const AppSchema = z.object({
  id: Ulid,
  client_id: Uuid.meta({
    description: "The OAuth client id Supabase Auth issued",
  }),
  client_type: z.enum(["public", "confidential"]),
  name: z.string().max(MAX_APP_NAME),
  website: z.string().max(MAX_URI_LENGTH).nullable(),
  logo_uri: z.string().max(MAX_URI_LENGTH).nullable(),
  redirect_uris: z.array(z.string().max(MAX_URI_LENGTH)).max(MAX_REDIRECT_URIS),
  scopes: AppScopeList,
  tier_id: Ulid.meta({
    description: "The tier that sets the app's rate limits",
  }),
  created_at: Timestamp,
  updated_at: Timestamp,
}).meta({ description: "A third-party app" }).register(components, {
  id: "App",
});

/** `POST /api/apps` 201 and `POST /api/apps/{id}/secret` 200: the secret, shown this once. */
export const CreatedAppSchema = AppSchema.extend({
  client_secret: z.string().max(200).nullable().meta({
    description: "The client secret of a confidential app, shown only this once; null for a " +
      "public app",
  }),
}).meta({ description: "The app, with its client secret" }).register(
  components,
  {
    id: "CreatedApp",
  },
);

/** Query of `GET /api/apps`. */
// Not a component: the reference shows a query as its parameters (an unused component otherwise).
export const ListAppsQuery = listQuery({});

/** `GET /api/apps` 200. */
export const AppListSchema = pageOf(AppSchema, "A page of apps, newest first")
  .register(components, { id: "AppList" });
