/**
 * OAuth clients of the local Auth stand-in's OAuth 2.1 server, as Supabase Auth keeps and checks
 * them (`auth.oauth_clients`): public clients (PKCE only, `token_endpoint_auth_method` `none`)
 * and confidential ones (`client_secret_basic`, the default, or `client_secret_post`) whose
 * secret (32 random bytes, base64url) is shown once and stored only as its base64url SHA-256.
 * Redirect URIs: 1 to 10, absolute with a host, no fragment, never `javascript:`/`data:`/...,
 * and `http` only on localhost, 127.0.0.1 or ::1.
 *
 * The messages are Supabase Auth's, with their quirks: a registration refused by validation
 * answers `400: <reason>` as its message (the Go error's text wrapped once more).
 *
 * @module
 */
import type postgres from "postgres";
import { base64url } from "jose";
import { AuthError, validationFailed } from "./http.ts";
import { randomToken } from "./store.ts";

/** `token_endpoint_auth_method` values. */
export const AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** A stored client. */
export interface ClientRow {
  id: string;
  client_secret_hash: string | null;
  registration_type: "dynamic" | "manual";
  client_type: "public" | "confidential";
  token_endpoint_auth_method: AuthMethod;
  redirect_uris: string;
  grant_types: string;
  client_name: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * A client as Auth shows it to a signed-in user (the consent screen's request, the user's
 * grants): its id and the names it gave, an empty one left out.
 */
export function clientSummary(
  c: Pick<ClientRow, "id" | "client_name" | "client_uri" | "logo_uri">,
): { id: string; name: string | undefined; uri: string | undefined; logo_uri: string | undefined } {
  return {
    id: c.id,
    name: c.client_name || undefined,
    uri: c.client_uri || undefined,
    logo_uri: c.logo_uri || undefined,
  };
}

const COLUMNS = `id, client_secret_hash, registration_type, client_type,
  token_endpoint_auth_method, redirect_uris, grant_types, client_name, client_uri, logo_uri,
  created_at, updated_at`;

/** The client's redirect URIs (stored comma-separated, as Supabase Auth stores them). */
export function redirectUris(client: ClientRow): string[] {
  return client.redirect_uris === "" ? [] : client.redirect_uris.split(",");
}

/** The client as the admin API and registration answer it; `secret` only when just made. */
export function clientJson(client: ClientRow, secret?: string): Record<string, unknown> {
  const optional = (value: string | null) => (value === null || value === "" ? undefined : value);
  const uris = redirectUris(client);
  return {
    client_id: client.id,
    client_secret: secret,
    client_type: client.client_type,
    redirect_uris: uris.length > 0 ? uris : undefined,
    token_endpoint_auth_method: client.token_endpoint_auth_method,
    grant_types: client.grant_types === "" ? undefined : client.grant_types.split(","),
    response_types: ["code"],
    client_name: optional(client.client_name),
    client_uri: optional(client.client_uri),
    logo_uri: optional(client.logo_uri),
    registration_type: client.registration_type,
    created_at: client.created_at.toISOString(),
    updated_at: client.updated_at.toISOString(),
  };
}

/** Base64url SHA-256 of a secret: all that is stored of it. */
async function secretHash(secret: string): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return new Uint8Array(digest);
}

/** Whether `secret` is the client's, compared in constant time over the hashes. */
export async function secretMatches(secret: string, storedHash: string | null): Promise<boolean> {
  if (storedHash === null) return false;
  let stored: Uint8Array;
  try {
    stored = base64url.decode(storedHash);
  } catch {
    return false;
  }
  const given = await secretHash(secret);
  if (stored.length !== given.length) return false;
  let diff = 0;
  for (let i = 0; i < given.length; i++) diff |= given[i]! ^ stored[i]!;
  return diff === 0;
}

async function newSecret(): Promise<{ secret: string; hash: string }> {
  const secret = randomToken(32);
  return { secret, hash: base64url.encode(await secretHash(secret)) };
}

const DANGEROUS_SCHEMES = new Set(["javascript", "data", "file", "vbscript", "about", "blob"]);
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** Why a redirect URI is refused (Supabase Auth's reasons), or undefined. */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri === "") return "redirect URI cannot be empty";
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "invalid URL format";
  }
  const scheme = url.protocol.slice(0, -1);
  if (url.host === "") return "must have scheme and host";
  if (DANGEROUS_SCHEMES.has(scheme.toLowerCase())) {
    return `scheme '${scheme}' is not allowed for security reasons`;
  }
  if (scheme === "http" && !LOOPBACK_HOSTS.has(url.hostname)) {
    return "HTTP scheme only allowed for localhost";
  }
  if (url.hash !== "") return "fragment not allowed in redirect URI";
  return undefined;
}

/** Checks a list of redirect URIs as Supabase Auth does; `required` for a registration. */
export function checkRedirectUris(uris: string[], required: boolean): void {
  if (required && uris.length === 0) throw validationFailed("redirect_uris is required");
  if (uris.length === 0) throw validationFailed("redirect_uris cannot be empty");
  if (uris.length > 10) throw validationFailed("redirect_uris cannot exceed 10 items");
  for (const uri of uris) {
    const problem = redirectUriProblem(uri);
    if (problem !== undefined) throw validationFailed(`invalid redirect_uri '${uri}': ${problem}`);
  }
}

function checkGrantTypes(types: string[]): void {
  if (types.length === 0) throw validationFailed("grant_types cannot be empty");
  if (types.some((t) => t !== "authorization_code" && t !== "refresh_token")) {
    throw validationFailed(
      "grant_types must only contain 'authorization_code' and/or 'refresh_token'",
    );
  }
}

/** Go's `url.ParseRequestURI`: an absolute URI or an absolute path. */
function checkUri(name: string, value: string | undefined): void {
  if (value === undefined || value === "") return;
  if (value.length > 2048) throw validationFailed(`${name} cannot exceed 2048 characters`);
  let ok = value.startsWith("/");
  try {
    ok ||= new URL(value).protocol !== "";
  } catch { /* not absolute */ }
  if (!ok) throw validationFailed(`${name} must be a valid URL`);
}

/** The members of a client body, typed as Go's decoder would read them; `bad_json` otherwise. */
export interface ClientParams {
  redirect_uris?: string[];
  grant_types?: string[];
  client_type?: string;
  token_endpoint_auth_method?: string;
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
}

/** Reads a client body; anything of another type than Supabase Auth's struct is `bad_json`. */
export function readClientParams(body: Record<string, unknown>): ClientParams {
  const bad = () => new AuthError(400, "bad_json", "Invalid JSON body");
  const params: Record<string, unknown> = {};
  for (const key of ["redirect_uris", "grant_types"]) {
    const value = body[key];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw bad();
    params[key] = value;
  }
  const strings = [
    "client_type",
    "token_endpoint_auth_method",
    "client_name",
    "client_uri",
    "logo_uri",
  ];
  for (const key of strings) {
    const value = body[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") throw bad();
    params[key] = value;
  }
  return params as ClientParams;
}

function clientTypeOf(method: string): "public" | "confidential" {
  return method === "none" ? "public" : "confidential";
}

/** Registration checks, in Supabase Auth's order. */
function checkRegistration(p: ClientParams): void {
  checkRedirectUris(p.redirect_uris ?? [], true);
  if (p.grant_types !== undefined && p.grant_types.length > 0) checkGrantTypes(p.grant_types);
  if ((p.client_name ?? "").length > 1024) {
    throw validationFailed("client_name cannot exceed 1024 characters");
  }
  checkUri("client_uri", p.client_uri);
  checkUri("logo_uri", p.logo_uri);
  const type = p.client_type ?? "";
  if (type !== "" && type !== "public" && type !== "confidential") {
    throw validationFailed("client_type must be 'public' or 'confidential'");
  }
  const method = p.token_endpoint_auth_method ?? "";
  if (method !== "" && !(AUTH_METHODS as readonly string[]).includes(method)) {
    throw validationFailed(
      `token_endpoint_auth_method must be one of: [${AUTH_METHODS.join(" ")}]`,
    );
  }
  if (type !== "" && method !== "" && clientTypeOf(method) !== type) {
    throw validationFailed(
      `client_type '${type}' is inconsistent with token_endpoint_auth_method '${method}' ` +
        `(expected client_type '${clientTypeOf(method)}')`,
    );
  }
}

/**
 * Registers a client (by an admin, or dynamically); the answer carries the secret of a
 * confidential client, once. A refused registration is 400 `validation_failed`.
 */
export async function registerClient(
  sql: postgres.Sql,
  p: ClientParams,
  registration: "dynamic" | "manual",
): Promise<Record<string, unknown>> {
  try {
    checkRegistration(p);
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    throw validationFailed(`${error.status}: ${error.message}`);
  }
  const grantTypes = p.grant_types?.length
    ? p.grant_types
    : ["authorization_code", "refresh_token"];
  const type = p.client_type ||
    (p.token_endpoint_auth_method ? clientTypeOf(p.token_endpoint_auth_method) : "confidential");
  const method = p.token_endpoint_auth_method ||
    (type === "public" ? "none" : "client_secret_basic");
  const made = type === "confidential" ? await newSecret() : undefined;
  const [row] = await sql.unsafe<ClientRow[]>(
    `insert into auth.oauth_clients (id, client_secret_hash, registration_type, client_type,
       token_endpoint_auth_method, redirect_uris, grant_types, client_name, client_uri, logo_uri)
     values (gen_random_uuid(), $1, $2, $3, $4, $5, $6, nullif($7, ''), nullif($8, ''),
             nullif($9, ''))
     returning ${COLUMNS}`,
    [
      made?.hash ?? null,
      registration,
      type,
      method,
      (p.redirect_uris ?? []).join(","),
      grantTypes.join(","),
      p.client_name ?? "",
      p.client_uri ?? "",
      p.logo_uri ?? "",
    ],
  );
  return clientJson(row!, made?.secret);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a UUID (client ids are). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A client that is not deleted, or undefined (also for a string that is not a UUID). */
export async function findClient(
  sql: postgres.Sql | postgres.TransactionSql,
  id: string,
): Promise<ClientRow | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await sql.unsafe<ClientRow[]>(
    `select ${COLUMNS} from auth.oauth_clients where id = $1 and deleted_at is null`,
    [id],
  );
  return row;
}

/** Every client, newest first (the admin list, unpaginated as Supabase Auth's is). */
export function listClients(sql: postgres.Sql): Promise<ClientRow[]> {
  return sql.unsafe<ClientRow[]>(
    `select ${COLUMNS} from auth.oauth_clients where deleted_at is null order by created_at desc`,
  );
}

/** Applies an update (`PUT`): only the members given; 400 `validation_failed` as Auth has it. */
export async function updateClient(
  sql: postgres.Sql,
  client: ClientRow,
  p: ClientParams,
): Promise<ClientRow> {
  if (Object.values(p).every((v) => v === undefined)) {
    throw validationFailed("No fields provided for update");
  }
  if (p.redirect_uris !== undefined) checkRedirectUris(p.redirect_uris, false);
  if (p.grant_types !== undefined) checkGrantTypes(p.grant_types);
  if ((p.client_name ?? "").length > 1024) {
    throw validationFailed("client_name cannot exceed 1024 characters");
  }
  checkUri("client_uri", p.client_uri);
  checkUri("logo_uri", p.logo_uri);
  const method = p.token_endpoint_auth_method;
  if (method !== undefined) {
    if (!(AUTH_METHODS as readonly string[]).includes(method)) {
      throw validationFailed(
        `invalid token_endpoint_auth_method: must be one of [${AUTH_METHODS.join(" ")}]`,
      );
    }
    if (clientTypeOf(method) !== client.client_type) {
      const valid = client.client_type === "public"
        ? "[none]"
        : "[client_secret_basic client_secret_post]";
      throw validationFailed(
        `token_endpoint_auth_method '${method}' is not valid for client_type ` +
          `'${client.client_type}'; valid methods: ${valid}`,
      );
    }
  }
  const [row] = await sql.unsafe<ClientRow[]>(
    `update auth.oauth_clients set
       redirect_uris = coalesce($2, redirect_uris), grant_types = coalesce($3, grant_types),
       client_name = case when $4::text is null then client_name else nullif($4, '') end,
       client_uri = case when $5::text is null then client_uri else nullif($5, '') end,
       logo_uri = case when $6::text is null then logo_uri else nullif($6, '') end,
       token_endpoint_auth_method = coalesce($7, token_endpoint_auth_method),
       updated_at = now()
     where id = $1 returning ${COLUMNS}`,
    [
      client.id,
      p.redirect_uris?.join(",") ?? null,
      p.grant_types?.join(",") ?? null,
      p.client_name ?? null,
      p.client_uri ?? null,
      p.logo_uri ?? null,
      method ?? null,
    ],
  );
  return row!;
}

/** Soft-deletes a client, as Supabase Auth does. */
export async function deleteClient(sql: postgres.Sql, id: string): Promise<void> {
  await sql`update auth.oauth_clients set deleted_at = now(), updated_at = now()
             where id = ${id}`;
}

/** A new secret for a confidential client (the old one stops working); public: 400. */
export async function regenerateSecret(
  sql: postgres.Sql,
  client: ClientRow,
): Promise<Record<string, unknown>> {
  if (client.client_type !== "confidential") {
    throw validationFailed("Cannot regenerate secret for public client");
  }
  const made = await newSecret();
  const [row] = await sql.unsafe<ClientRow[]>(
    `update auth.oauth_clients set client_secret_hash = $2, updated_at = now()
      where id = $1 returning ${COLUMNS}`,
    [client.id, made.hash],
  );
  return clientJson(row!, made.secret);
}
