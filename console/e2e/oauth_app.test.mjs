/**
 * A real third-party client against the test stack (issue 25, item 7). The app's side is written
 * only with oauth4webapi (an OpenID-certified client library): discovery, a PKCE authorization
 * request, the code exchange, the API calls and the refreshes; the user's side is headless
 * Chromium. Two apps a developer registered through `/api/apps`: a confidential one
 * (`client_secret_basic`) and a public one (PKCE only). For each: the browser opens the
 * authorization URL, Auth's stand-in sends it to the console's consent page, the user signs in,
 * grants `vaults:read` and `vaults:write` only, approves and lands on the app's loopback redirect
 * URI; the app exchanges the code, reads (200) and creates (201) vaults, is refused deleting one
 * and reading the profile (403 `INSUFFICIENT_SCOPE`, with the scope in the challenge) and any
 * account route (403 `APP_TOKEN_NOT_ACCEPTED`), and refreshes. Then the user revokes each app in
 * "Authorized apps": the app's next request with its unexpired access token is 401
 * `APP_GRANT_NOT_ACTIVE`, and the confidential app's refresh fails. The public app first shows
 * rotation: its replaced refresh token is refused past Supabase's 10 s reuse interval (which ends
 * that session). Any console error, page error, CSP violation or request off loopback fails the
 * suite (axe-core runs on these pages in consent.test.mjs).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import * as oauth from "oauth4webapi";
import {
  API_URL,
  CONSOLE_URL,
  heading,
  openBrowser,
  refuseOffLoopback,
  signIn,
  signUp,
  startRedirectServer,
} from "./browser.mjs";

const ISSUER = new URL(`${API_URL}/auth/v1`);
/** Plain http: only for this machine's loopback stack. */
const INSECURE = { [oauth.allowInsecureRequests]: true };
/** Supabase Auth's reuse interval of a replaced refresh token (its default, the stand-in's). */
const REUSE_INTERVAL_MS = 10_000;

/**
 * `client_secret_basic` as Supabase Auth reads it: the raw `client_id:client_secret`. oauth4webapi's
 * own `ClientSecretBasic` form-encodes both first (RFC 6749 section 2.3.1), so the `-` of the
 * client id arrives as `%2D`, which Supabase Auth does not decode: 400 "Invalid client_id format"
 * (the stand-in answers the same, on purpose).
 */
function RawClientSecretBasic(secret) {
  return (_as, client, _body, headers) => {
    headers.set("authorization", `Basic ${btoa(`${client.client_id}:${secret}`)}`);
  };
}

let b;
let redirect;
let user;
let as;
/** The two apps: their oauth4webapi client, client authentication and latest tokens. */
const apps = [
  { name: "Sync Server", clientType: "confidential" },
  { name: "Vault CLI", clientType: "public" },
];

before(async () => {
  redirect = await startRedirectServer();
  b = await openBrowser();
  refuseOffLoopback(b);
  const developer = await signUp("developer");
  user = await signUp("app-user");
  for (const app of apps) {
    const r = await fetch(`${API_URL}/api/apps`, {
      method: "POST",
      headers: { Authorization: `Bearer ${developer.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        name: app.name,
        client_type: app.clientType,
        redirect_uris: [redirect.uri],
        scopes: ["vaults:read", "vaults:write", "vaults:delete", "profile:read"],
      }),
    });
    const body = await r.json();
    assert.equal(r.status, 201, JSON.stringify(body));
    app.client = { client_id: body.client_id };
    app.auth = app.clientType === "public"
      ? oauth.None()
      : RawClientSecretBasic(body.client_secret);
  }
});

after(async () => {
  await b?.close();
  redirect?.close();
});

function noProblems() {
  assert.deepEqual(b.problems, [], "no console error, page error, CSP violation or remote request");
}

/** The app calls the API with its access token: status, body, and the parsed challenge if any. */
async function call(token, method, path, body) {
  const headers = new Headers(body ? { "content-type": "application/json" } : {});
  try {
    const r = await oauth.protectedResourceRequest(
      token,
      method,
      new URL(path, API_URL),
      headers,
      body ? JSON.stringify(body) : null,
      INSECURE,
    );
    return { status: r.status, body: r.status === 204 ? null : await r.json() };
  } catch (error) {
    // oauth4webapi throws on any answer with a WWW-Authenticate challenge.
    if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
    return { status: error.status, body: await error.response.json(), challenge: error.cause };
  }
}

/** The challenge of a 403 for a missing scope (or an account route, without `scope`). */
function insufficientScope(description, scope) {
  const parameters = { realm: "torvus", error: "insufficient_scope" };
  if (scope) parameters.scope = scope;
  parameters.error_description = description;
  return [{ scheme: "bearer", parameters }];
}

/** A refresh with oauth4webapi; the error it throws, if it does. */
async function refresh(app, refreshToken) {
  const response = await oauth.refreshTokenGrantRequest(
    as,
    app.client,
    app.auth,
    refreshToken,
    INSECURE,
  );
  return await oauth.processRefreshTokenResponse(as, app.client, response);
}

/**
 * Asserts that a refresh fails with Supabase Auth's `error_code`. Its refresh failures are in its
 * own error format (`{code, error_code, msg}`, no OAuth `error`), so oauth4webapi reports a
 * non-conforming response and keeps it as the cause.
 */
async function assertRefreshFails(app, refreshToken, errorCode) {
  const error = await refresh(app, refreshToken).then(() => null, (e) => e);
  assert.ok(error instanceof oauth.OperationProcessingError, String(error));
  assert.equal(error.code, oauth.RESPONSE_IS_NOT_CONFORM);
  assert.equal(error.cause.status, 400);
  assert.equal((await error.cause.json()).error_code, errorCode);
}

/** The user revokes `app` in the console's "Authorized apps". */
async function revokeInConsole(app) {
  await b.page.goto(`${CONSOLE_URL}/apps`);
  await signIn(b.page, user.email);
  await heading(b.page, "Authorized apps");
  await b.page.getByRole("row", { name: new RegExp(app.name) })
    .getByRole("button", { name: `Revoke ${app.name}` }).click();
  await b.page.getByRole("dialog").getByRole("button", { name: "Revoke access" }).click();
  await b.page.getByText(`${app.name} no longer has access to your account.`).waitFor();
}

/** Asserts that the app's unexpired access token is refused: its grant is not active. */
async function assertGrantRefused(app) {
  const [, payload] = app.tokens.access_token.split(".");
  const { exp } = JSON.parse(Buffer.from(payload, "base64url"));
  assert.ok(exp * 1000 > Date.now() + 60_000, "the access token has not expired");
  const r = await call(app.tokens.access_token, "GET", "/api/vaults");
  assert.equal(r.status, 401, JSON.stringify(r.body));
  assert.equal(r.body.code, "APP_GRANT_NOT_ACTIVE");
  assert.deepEqual(r.challenge, [{
    scheme: "bearer",
    parameters: {
      realm: "torvus",
      error: "invalid_token",
      error_description: "The user's grant to this app is not active",
    },
  }]);
}

test("discovery: oauth4webapi reads the authorization server's metadata", async () => {
  const response = await oauth.discoveryRequest(ISSUER, { algorithm: "oauth2", ...INSECURE });
  as = await oauth.processDiscoveryResponse(ISSUER, response);
  assert.equal(as.issuer, ISSUER.href);
  assert.equal(as.authorization_endpoint, `${ISSUER.href}/oauth/authorize`);
  assert.equal(as.token_endpoint, `${ISSUER.href}/oauth/token`);
  assert.ok(as.code_challenge_methods_supported.includes("S256"));
  for (const method of ["client_secret_basic", "none"]) {
    assert.ok(as.token_endpoint_auth_methods_supported.includes(method), method);
  }
});

for (const app of apps) {
  test(`${app.clientType} app: PKCE request, consent narrowed in Chromium, code exchange`, async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint);
    url.searchParams.set("client_id", app.client.client_id);
    url.searchParams.set("redirect_uri", redirect.uri);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("scope", "email");
    url.searchParams.set("state", state);
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set("code_challenge_method", "S256");

    await b.page.goto(url.href);
    assert.ok(b.page.url().startsWith(`${CONSOLE_URL}/oauth/consent?authorization_id=`));
    await signIn(b.page, user.email);
    await heading(b.page, `Authorize ${app.name}`);
    for (const scope of ["vaults:delete", "profile:read"]) {
      await b.page.getByRole("checkbox", { name: new RegExp(scope) }).uncheck();
    }
    await b.page.getByRole("button", { name: "Approve" }).click();
    await b.page.waitForURL((u) => u.href.startsWith(redirect.uri));
    await heading(b.page, "Back in the app");

    const params = oauth.validateAuthResponse(as, app.client, new URL(b.page.url()), state);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      app.client,
      app.auth,
      params,
      redirect.uri,
      verifier,
      INSECURE,
    );
    app.tokens = await oauth.processAuthorizationCodeResponse(as, app.client, response);
    assert.equal(app.tokens.token_type, "bearer");
    assert.ok(app.tokens.refresh_token);
    noProblems();
  });
}

for (const app of apps) {
  test(`${app.clientType} app: 200/201 within its scopes, 403 beyond them`, async () => {
    const token = app.tokens.access_token;
    const listed = await call(token, "GET", "/api/vaults");
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    const created = await call(token, "POST", "/api/vaults", {
      name: `by ${app.name}`,
      description: "written by a third-party app",
      tags: ["oauth"],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.name, `by ${app.name}`);

    const deleted = await call(token, "DELETE", `/api/vaults/${created.body.id}`);
    assert.equal(deleted.status, 403);
    assert.equal(deleted.body.code, "INSUFFICIENT_SCOPE");
    assert.equal(deleted.body.required_scope, "vaults:delete");
    assert.deepEqual(
      deleted.challenge,
      insufficientScope("The app's grant lacks the 'vaults:delete' scope", "vaults:delete"),
    );
    const me = await call(token, "GET", "/api/me");
    assert.equal(me.status, 403);
    assert.equal(me.body.code, "INSUFFICIENT_SCOPE");
    assert.equal(me.body.required_scope, "profile:read");

    const keys = await call(token, "GET", "/api/keys");
    assert.equal(keys.status, 403);
    assert.equal(keys.body.code, "APP_TOKEN_NOT_ACCEPTED");
    assert.deepEqual(
      keys.challenge,
      insufficientScope("This route does not accept tokens issued to third-party apps"),
    );
  });
}

for (const app of apps) {
  test(`${app.clientType} app: refresh rotates both tokens`, async () => {
    const before = app.tokens;
    app.tokens = await refresh(app, before.refresh_token);
    app.refreshedAt = Date.now();
    app.replaced = before.refresh_token;
    assert.notEqual(app.tokens.access_token, before.access_token);
    assert.notEqual(app.tokens.refresh_token, before.refresh_token);
    assert.equal((await call(app.tokens.access_token, "GET", "/api/vaults")).status, 200);
    // Within Supabase's reuse interval the replaced token answers the same successor (a client
    // that lost the answer may retry); no new token is made.
    const retried = await refresh(app, before.refresh_token);
    assert.equal(retried.refresh_token, app.tokens.refresh_token);
  });
}

test("confidential app: revoked in the console, refused with its unexpired token", async () => {
  const [app] = apps;
  await revokeInConsole(app);
  await assertGrantRefused(app);
  // Revoking also ended Supabase's grant, so its sessions: the refresh token is gone.
  await assertRefreshFails(app, app.tokens.refresh_token, "refresh_token_not_found");
  noProblems();
});

test("public app: a replaced refresh token past the reuse interval is refused; revoked", async () => {
  const app = apps[1];
  await sleep(Math.max(0, app.refreshedAt + REUSE_INTERVAL_MS + 1000 - Date.now()));
  await assertRefreshFails(app, app.replaced, "refresh_token_already_used");
  // Reuse ends the whole session (a stolen token's family): the successor is refused too.
  await assertRefreshFails(app, app.tokens.refresh_token, "refresh_token_not_found");
  // The access token still admits it (a JWT) until the user revokes the grant.
  assert.equal((await call(app.tokens.access_token, "GET", "/api/vaults")).status, 200);
  await revokeInConsole(app);
  await assertGrantRefused(app);
  noProblems();
});
