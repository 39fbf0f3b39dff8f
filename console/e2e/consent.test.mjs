/**
 * Third-party apps in the console, in headless Chromium against the test stack: a developer
 * registers an app through the API; the app starts an authorization request (PKCE, from node)
 * and Supabase Auth's stand-in sends the browser to the console's consent page, which signs the
 * user in, shows the app and its API scopes, lets the user narrow them (writing comes with
 * reading), records the grant and approves; the browser lands on the app's loopback redirect URI
 * with a code that the app exchanges. Then: a request already consented to goes back at once; a
 * magic link brings the user back to the same request, and Deny goes back with `access_denied`; "Authorized apps" lists the grant, and revoking it ends
 * both our grant and Supabase's (the app's refresh fails). axe-core runs on both pages, and any
 * console error, page error or CSP violation fails the suite. No request leaves this machine:
 * the app's logo is on an origin the console does not allow, so it is never requested.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  API_URL,
  assertAxe,
  CONSOLE_URL,
  heading as pageHeading,
  latestMail,
  openBrowser,
  refuseOffLoopback,
  signIn as pageSignIn,
  signUp,
  startRedirectServer,
} from "./browser.mjs";

const SCOPES = ["vaults:read", "vaults:write", "vaults:delete", "profile:read"];
let b;
let callback;
let redirectUri = "";
let arrived = [];
const axeReport = {};

async function apiCall(token, path, init = {}) {
  const r = await fetch(`${API_URL}${path}`, {
    ...init,
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
    },
  });
  return { status: r.status, body: r.status === 204 ? null : await r.json() };
}

/** A public app of `developer` with every API scope, redirecting to the loopback server. */
async function registerApp(developer, name) {
  const r = await apiCall(developer.token, "/api/apps", {
    method: "POST",
    body: JSON.stringify({
      name,
      client_type: "public",
      redirect_uris: [redirectUri],
      website: "https://app.example.com",
      // Not an allowed logo origin: the console shows the initial and never fetches it.
      logo_uri: "https://logo.example.com/logo.png",
      scopes: SCOPES,
    }),
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

/** Starts an authorization request as the app would; the consent page's URL and the PKCE. */
async function authorize(clientId, scope = "email") {
  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(16).toString("base64url");
  const url = new URL(`${API_URL}/auth/v1/oauth/authorize`);
  url.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: "code",
    scope,
    state,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  }).toString();
  const r = await fetch(url, { redirect: "manual" });
  await r.body?.cancel();
  assert.equal(r.status, 302);
  const consent = new URL(r.headers.get("location"));
  assert.equal(
    consent.origin + consent.pathname,
    `${CONSOLE_URL}/oauth/consent`,
  );
  assert.ok(consent.searchParams.get("authorization_id"));
  return { consent: consent.href, verifier, state };
}

/** The app's token request. */
async function token(params) {
  const r = await fetch(`${API_URL}/auth/v1/oauth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params),
  });
  return { status: r.status, body: await r.json() };
}

/** Waits for the browser to arrive at the app's redirect URI; that arrival's URL. */
async function arrival() {
  const count = arrived.length;
  await b.page.waitForURL((url) => url.href.startsWith(redirectUri), {
    timeout: 10_000,
  });
  await b.page.getByRole("heading", { name: "Back in the app" }).waitFor();
  assert.equal(arrived.length, count + 1, "one arrival");
  return arrived.at(-1);
}

const heading = (text) => pageHeading(b.page, text);
const signIn = (email) => pageSignIn(b.page, email);

async function checkAxe(name) {
  await assertAxe(b.page, name, axeReport);
}

function noProblems() {
  assert.deepEqual(
    b.problems,
    [],
    "no console error, page error or CSP violation",
  );
}

let developer;
let user;
let app;
let tokens;

before(async () => {
  callback = await startRedirectServer();
  ({ uri: redirectUri, arrived } = callback);
  b = await openBrowser();
  // Nothing off this machine: a request to any other host fails the suite.
  refuseOffLoopback(b);
  developer = await signUp("developer");
  user = await signUp("consenting");
  app = await registerApp(developer, "Vault Sync");
});

after(async () => {
  await b?.close();
  callback?.close();
  console.log(
    `axe-core (serious/critical per page): ${JSON.stringify(axeReport)}`,
  );
});

test("the consent page is served with the console's CSP: no remote image", async () => {
  const response = await fetch(`${CONSOLE_URL}/oauth/consent?authorization_id=x`);
  assert.match(await response.text(), /<div id="app">/);
  const csp = response.headers.get("content-security-policy");
  assert.match(csp, /(^|; )img-src 'self' data:(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
});

test("consent: sign in, see the app, narrow the scopes, approve, back with a code", async () => {
  const started = await authorize(app.client_id);
  await b.page.goto(started.consent);
  await b.page.getByText("An app asks for access to your Torvus account")
    .waitFor();
  await checkAxe("consent sign-in");
  await signIn(user.email);
  await heading("Authorize Vault Sync");
  await checkAxe("consent");
  const page = b.page;
  await page.getByText(`Developer: ${developer.email}`).waitFor();
  await page.getByRole("link", { name: "app.example.com" }).waitFor();
  assert.equal(
    await page.locator("img").count(),
    0,
    "the logo's origin is not allowed",
  );
  const box = (scope) => page.getByRole("checkbox", { name: new RegExp(scope) });
  for (const scope of SCOPES) {
    assert.equal(await box(scope).isChecked(), true, scope);
  }
  // Giving up reading gives up writing and deleting; writing brings reading back.
  await box("vaults:read").uncheck();
  assert.equal(await box("vaults:write").isChecked(), false);
  assert.equal(await box("vaults:delete").isChecked(), false);
  await box("vaults:write").check();
  assert.equal(await box("vaults:read").isChecked(), true);
  await box("profile:read").uncheck();
  assert.equal(await box("vaults:delete").isChecked(), false);
  await page.getByRole("button", { name: "Approve" }).click();
  const back = await arrival();
  assert.equal(back.searchParams.get("state"), started.state);
  const code = back.searchParams.get("code");
  assert.ok(code, `a code in ${back.search}`);

  const exchanged = await token({
    grant_type: "authorization_code",
    client_id: app.client_id,
    code,
    redirect_uri: redirectUri,
    code_verifier: started.verifier,
  });
  assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
  tokens = exchanged.body;
  const claims = JSON.parse(
    Buffer.from(tokens.access_token.split(".")[1], "base64url"),
  );
  assert.equal(claims.client_id, app.client_id);
  assert.equal(claims.sub, user.id);

  const grants = await apiCall(user.token, "/api/grants");
  assert.equal(grants.status, 200);
  assert.deepEqual(
    grants.body.data.map((g) => [g.client_id, g.scopes, g.status]),
    [[app.client_id, ["vaults:read", "vaults:write"], "active"]],
  );
  noProblems();
});

test("consent: a request already consented to goes back to the app at once", async () => {
  const started = await authorize(app.client_id);
  await b.page.goto(started.consent);
  await signIn(user.email);
  const back = await arrival();
  assert.equal(back.searchParams.get("state"), started.state);
  assert.ok(back.searchParams.get("code"));
  noProblems();
});

test("consent: a magic link keeps the request; Deny goes back with access_denied", async () => {
  const other = await registerApp(developer, "Other App");
  const started = await authorize(other.client_id);
  await b.page.goto(started.consent);
  await heading("Sign in to the Torvus console");
  await b.page.getByRole("tab", { name: "Email link or code" }).click();
  await b.page.getByRole("textbox", { name: "Email" }).fill(user.email);
  await b.page.getByRole("button", { name: "Email me a link and a code" }).click();
  await b.page.getByText("Sent.").waitFor();
  await b.page.goto((await latestMail(user.email)).link);
  await heading("Authorize Other App");
  const back = new URL(b.page.url());
  assert.equal(back.pathname, "/oauth/consent");
  assert.deepEqual([...back.searchParams.keys()], ["authorization_id"], "the code is gone");
  await b.page.getByRole("button", { name: "Deny" }).click();
  const denied = await arrival();
  assert.equal(denied.searchParams.get("error"), "access_denied");
  assert.equal(denied.searchParams.get("state"), started.state);
  assert.equal(denied.searchParams.get("code"), null);
  const grants = await apiCall(user.token, "/api/grants?status=all");
  assert.deepEqual(grants.body.data.map((g) => g.client_id), [app.client_id]);
  noProblems();
});

test("Authorized apps lists the grant; Revoke ends it here and at Supabase Auth", async () => {
  await b.page.goto(`${CONSOLE_URL}/apps`);
  await signIn(user.email);
  await heading("Authorized apps");
  await checkAxe("authorized apps");
  const row = b.page.getByRole("row", { name: /Vault Sync/ });
  await row.getByText("Read your vaults").waitFor();
  await row.getByText("Create and change your vaults").waitFor();
  assert.equal(await row.getByText("Delete your vaults").count(), 0);
  assert.equal(
    await row.getByRole("cell", { name: "never", exact: true }).count(),
    1,
  );
  await row.getByRole("button", { name: "Revoke Vault Sync" }).click();
  await b.page.getByRole("dialog").getByRole("button", {
    name: "Revoke access",
  }).click();
  await b.page.getByText("Vault Sync no longer has access to your account.")
    .waitFor();
  await b.page.getByText("No app has access to your account.").waitFor();

  const grants = await apiCall(user.token, "/api/grants?status=all");
  assert.deepEqual(grants.body.data.map((g) => g.status), ["revoked"]);
  const refreshed = await token({
    grant_type: "refresh_token",
    client_id: app.client_id,
    refresh_token: tokens.refresh_token,
  });
  assert.equal(refreshed.status, 400, JSON.stringify(refreshed.body));
  assert.equal(refreshed.body.error_code, "refresh_token_not_found");
  noProblems();
});
