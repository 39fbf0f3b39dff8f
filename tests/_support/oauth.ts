/**
 * Helpers for the suites of the local Auth stand-in's OAuth 2.1 server: an admin supabase-js
 * client (the local service-role key), a signed-in user, discovery and a PKCE authorization
 * request with oauth4webapi, and the consent step done through supabase-js as the console's
 * consent page does it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import * as oauth from "oauth4webapi";
import { BASE_URL, uniqueEmail } from "../_harness.ts";
import { mintServiceRoleKey } from "../../tools/local_auth.ts";
import { localClient, memoryStorage } from "./auth.ts";

/** The issuer of the local Auth stand-in. */
export const ISSUER = `${BASE_URL}/auth/v1`;
/** A loopback redirect URI (never listened on: the tests read the redirect's `Location`). */
export const REDIRECT_URI = "http://127.0.0.1:29444/callback";
/** Plain http is only for this machine's tests. */
export const INSECURE = { [oauth.allowInsecureRequests]: true } as const;

/**
 * `client_secret_basic` as Supabase Auth reads it: the raw `client_id:client_secret` in the
 * Basic header. oauth4webapi's own `ClientSecretBasic` form-encodes both first (RFC 6749 section
 * 2.3.1), turning the `-` of the client id into `%2D`, which Supabase Auth does not decode; its
 * source answers that with 400 "Invalid client_id format", and so does the stand-in.
 */
export function RawClientSecretBasic(secret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    headers.set("authorization", `Basic ${btoa(`${client.client_id}:${secret}`)}`);
  };
}

/** A supabase-js client with the local service-role key (`auth.admin.oauth.*`). */
export async function adminClient(): Promise<SupabaseClient> {
  return createClient(BASE_URL, await mintServiceRoleKey(), {
    auth: { storage: memoryStorage(), persistSession: false, autoRefreshToken: false },
  });
}

/** A new user signed in with supabase-js (as on the consent page). */
export async function signedInUser(): Promise<{ supabase: SupabaseClient; userId: string }> {
  const supabase = localClient();
  const { data, error } = await supabase.auth.signUp({
    email: uniqueEmail("oauth"),
    password: "correct horse battery staple",
  });
  assert.equal(error, null);
  return { supabase, userId: data.user!.id };
}

/** The authorization server's metadata, read with oauth4webapi at RFC 8414's path. */
export async function discover(): Promise<oauth.AuthorizationServer> {
  const response = await oauth.discoveryRequest(new URL(ISSUER), {
    algorithm: "oauth2",
    ...INSECURE,
  });
  return await oauth.processDiscoveryResponse(new URL(ISSUER), response);
}

/** What a started authorization request keeps for the code exchange. */
export interface Started {
  authorizationId: string;
  verifier: string;
  state: string;
  nonce: string;
}

/**
 * Starts an authorization request (PKCE S256 unless `plain`) and follows `/oauth/authorize` to
 * the consent page's URL; returns its `authorization_id`.
 */
export async function startAuthorization(
  as: oauth.AuthorizationServer,
  clientId: string,
  options: { scope?: string; plain?: boolean; redirectUri?: string } = {},
): Promise<Started> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set("client_id", clientId);
  url.searchParams.set("redirect_uri", options.redirectUri ?? REDIRECT_URI);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", options.scope ?? "openid email profile");
  url.searchParams.set("state", state);
  url.searchParams.set("nonce", nonce);
  url.searchParams.set(
    "code_challenge",
    options.plain ? verifier : await oauth.calculatePKCECodeChallenge(verifier),
  );
  url.searchParams.set("code_challenge_method", options.plain ? "plain" : "S256");
  const response = await fetch(url, { redirect: "manual" });
  await response.body?.cancel();
  assert.equal(response.status, 302);
  const consentPage = new URL(response.headers.get("location")!);
  assert.equal(consentPage.pathname, "/oauth/consent");
  const authorizationId = consentPage.searchParams.get("authorization_id")!;
  assert.match(authorizationId, /^[a-z2-7]{32}$/);
  return { authorizationId, verifier, state, nonce };
}

/** The user approves through supabase-js; the redirect back to the client, as a URL. */
export async function approve(supabase: SupabaseClient, authorizationId: string): Promise<URL> {
  const details = await supabase.auth.oauth.getAuthorizationDetails(authorizationId);
  assert.equal(details.error, null);
  const approved = await supabase.auth.oauth.approveAuthorization(authorizationId);
  assert.equal(approved.error, null);
  return new URL(approved.data!.redirect_url);
}

/**
 * The whole code flow of `client` for the signed-in user of `supabase`: authorization request,
 * approval, code exchange with `clientAuth`; an ID token is required (and its nonce checked)
 * when the scope has `openid`.
 */
export async function authorizeAndExchange(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  clientAuth: oauth.ClientAuth,
  supabase: SupabaseClient,
  options: { scope?: string; plain?: boolean } = {},
): Promise<{ started: Started; tokens: oauth.TokenEndpointResponse }> {
  const started = await startAuthorization(as, client.client_id, options);
  const approved = await approve(supabase, started.authorizationId);
  const callback = oauth.validateAuthResponse(as, client, approved, started.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    clientAuth,
    callback,
    REDIRECT_URI,
    started.verifier,
    INSECURE,
  );
  const openid = (options.scope ?? "openid email profile").split(" ").includes("openid");
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    response,
    openid ? { expectedNonce: started.nonce, requireIdToken: true } : undefined,
  );
  return { started, tokens };
}

/** How a client registered with each method authenticates at the token endpoint. */
const CLIENT_AUTH: Record<ClientMethod, (secret: string) => oauth.ClientAuth> = {
  client_secret_basic: RawClientSecretBasic,
  client_secret_post: (secret) => oauth.ClientSecretPost(secret),
  none: () => oauth.None(),
};

/**
 * A new client registered with `method` (see {@link newClient}) and a new signed-in user who has
 * been through its whole code flow ({@link authorizeAndExchange} with `options`), the client
 * authenticating as it was registered (`auth`).
 */
export async function clientSession(
  method: ClientMethod,
  options: { scope?: string; plain?: boolean } = {},
) {
  const as = await discover();
  const { client, secret } = await newClient(method);
  const auth = CLIENT_AUTH[method](secret);
  const { supabase, userId } = await signedInUser();
  const { started, tokens } = await authorizeAndExchange(as, client, auth, supabase, options);
  return { as, client, secret, auth, supabase, userId, started, tokens };
}

/** A refresh with oauth4webapi. */
export async function refresh(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  clientAuth: oauth.ClientAuth,
  refreshToken: string,
): Promise<oauth.TokenEndpointResponse> {
  const response = await oauth.refreshTokenGrantRequest(
    as,
    client,
    clientAuth,
    refreshToken,
    INSECURE,
  );
  return await oauth.processRefreshTokenResponse(as, client, response);
}

/** How a client authenticates at the token endpoint: a confidential one's two, or a public one. */
export type ClientMethod = "client_secret_basic" | "client_secret_post" | "none";

/** A confidential or public client registered through the admin API. */
export async function newClient(
  method: ClientMethod,
  redirectUris = [REDIRECT_URI],
): Promise<{ client: oauth.Client; secret: string }> {
  const admin = await adminClient();
  const { data, error } = await admin.auth.admin.oauth.createClient({
    client_name: `test app ${method}`,
    redirect_uris: redirectUris,
    token_endpoint_auth_method: method,
  });
  assert.equal(error, null);
  return {
    client: { client_id: data!.client_id, token_endpoint_auth_method: method },
    secret: data!.client_secret ?? "",
  };
}

/** A raw `POST /oauth/token` form request (for exact statuses and bodies). */
export async function tokenRequest(
  params: Record<string, string>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded" };
  if (basic) headers["Authorization"] = `Basic ${btoa(`${basic.id}:${basic.secret}`)}`;
  const response = await fetch(`${ISSUER}/oauth/token`, {
    method: "POST",
    headers,
    body: new URLSearchParams(params),
  });
  return { status: response.status, body: await response.json() };
}
