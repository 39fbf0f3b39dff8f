/**
 * The consent, grant and admin side of the local Auth stand-in's OAuth 2.1 server, driven by
 * supabase-js as the console (consent page, authorized apps) and the API (admin client API)
 * drive Supabase Auth's: both answers of getAuthorizationDetails, approve, deny, listGrants,
 * revokeGrant, the admin client CRUD with regenerateClientSecret; and the refusals, with
 * Supabase Auth's exact statuses and codes.
 */
import assert from "node:assert/strict";
import { closeDbLast, db, e2e } from "./_harness.ts";
import {
  adminClient,
  approve,
  clientSession,
  discover,
  ISSUER,
  newClient,
  REDIRECT_URI,
  signedInUser,
  startAuthorization,
  tokenRequest,
} from "./_support/oauth.ts";
import { mintServiceRoleKey } from "../tools/local_auth.ts";

/** Exchanges the code of an approved redirect for a public client's tokens. */
async function exchange(clientId: string, redirect: URL, verifier: string) {
  return await tokenRequest({
    grant_type: "authorization_code",
    client_id: clientId,
    code: redirect.searchParams.get("code")!,
    redirect_uri: REDIRECT_URI,
    code_verifier: verifier,
  });
}

e2e(
  "consent: details, deny, and a consent that covers the scopes answers only redirect_url",
  async () => {
    const as = await discover();
    const { client } = await newClient("none");
    const { supabase, userId } = await signedInUser();

    const first = await startAuthorization(as, client.client_id, { scope: "email" });
    const details = await supabase.auth.oauth.getAuthorizationDetails(first.authorizationId);
    assert.equal(details.error, null);
    const data = details.data as Record<string, unknown>;
    assert.deepEqual(Object.keys(data).sort(), [
      "authorization_id",
      "client",
      "redirect_uri",
      "scope",
      "user",
    ]);
    assert.equal(data["authorization_id"], first.authorizationId);
    assert.equal(data["redirect_uri"], REDIRECT_URI);
    assert.equal(data["scope"], "email");
    assert.deepEqual(data["client"], { id: client.client_id, name: "test app none" });
    assert.equal((data["user"] as { id: string }).id, userId);

    const denied = await supabase.auth.oauth.denyAuthorization(first.authorizationId);
    assert.equal(denied.error, null);
    const back = new URL(denied.data!.redirect_url);
    assert.equal(back.origin + back.pathname, REDIRECT_URI);
    assert.equal(back.searchParams.get("error"), "access_denied");
    assert.equal(back.searchParams.get("error_description"), "User denied the request");
    assert.equal(back.searchParams.get("state"), first.state);
    const { data: signedIn } = await supabase.auth.getSession();
    const noBody = await fetch(`${ISSUER}/oauth/authorizations/${first.authorizationId}/consent`, {
      method: "POST",
      headers: { Authorization: `Bearer ${signedIn.session!.access_token}` },
    });
    assert.equal(noBody.status, 400);
    assert.deepEqual(await noBody.json(), {
      code: 400,
      error_code: "bad_json",
      msg: "invalid JSON body",
    });
    const late = await supabase.auth.oauth.approveAuthorization(first.authorizationId);
    assert.equal(late.error?.status, 400);
    assert.equal(late.error?.code, "validation_failed");
    assert.equal(late.error?.message, "authorization request is no longer pending");

    const second = await startAuthorization(as, client.client_id, { scope: "email" });
    const code = (await approve(supabase, second.authorizationId)).searchParams.get("code");
    assert.match(code!, /^[0-9a-f-]{36}$/);

    // Consent to "email" covers a new request for "email": approved at once.
    const third = await startAuthorization(as, client.client_id, { scope: "email" });
    const again = await supabase.auth.oauth.getAuthorizationDetails(third.authorizationId);
    assert.equal(again.error, null);
    assert.deepEqual(Object.keys(again.data!), ["redirect_url"]);
    const redirect = new URL((again.data as { redirect_url: string }).redirect_url);
    assert.equal(redirect.searchParams.get("state"), third.state);
    const tokens = await exchange(client.client_id, redirect, third.verifier);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));

    // A wider request asks again; another user cannot touch this one's authorization.
    const wider = await startAuthorization(as, client.client_id, { scope: "email profile" });
    const asked = await supabase.auth.oauth.getAuthorizationDetails(wider.authorizationId);
    assert.equal((asked.data as { scope: string }).scope, "email profile");
    const other = await signedInUser();
    const foreign = await other.supabase.auth.oauth.getAuthorizationDetails(wider.authorizationId);
    assert.equal(foreign.error?.status, 404);
    assert.equal(foreign.error?.code, "oauth_authorization_not_found");
  },
);

e2e("grants: listGrants shows the app, revokeGrant ends its sessions and refreshes", async () => {
  const { client, supabase, tokens } = await clientSession("none", { scope: "openid email" });
  const listed = await supabase.auth.oauth.listGrants();
  assert.equal(listed.error, null);
  assert.equal(listed.data!.length, 1);
  assert.deepEqual(listed.data![0]!.client, { id: client.client_id, name: "test app none" });
  assert.deepEqual(listed.data![0]!.scopes, ["openid", "email"]);
  assert.ok(Date.parse(listed.data![0]!.granted_at) > Date.now() - 60_000);

  const revoked = await supabase.auth.oauth.revokeGrant({ clientId: client.client_id });
  assert.deepEqual(revoked, { data: {}, error: null });
  assert.deepEqual((await supabase.auth.oauth.listGrants()).data, []);
  const refresh = await tokenRequest({
    grant_type: "refresh_token",
    client_id: client.client_id,
    refresh_token: tokens.refresh_token!,
  });
  assert.equal(refresh.status, 400);
  assert.equal(refresh.body["error_code"], "refresh_token_not_found");
  // The access token is not expired, but its session is gone: Auth's own endpoints refuse it.
  const info = await fetch(`${ISSUER}/oauth/userinfo`, {
    headers: { Authorization: `Bearer ${tokens.access_token}` },
  });
  assert.equal(info.status, 403);
  assert.equal((await info.json()).error_code, "session_not_found");
  const twice = await supabase.auth.oauth.revokeGrant({ clientId: client.client_id });
  assert.equal(twice.error?.status, 404);
  assert.equal(twice.error?.code, "oauth_consent_not_found");
});

e2e("admin: create, list, get, update, regenerate the secret, delete (service role)", async () => {
  const admin = (await adminClient()).auth.admin.oauth;
  const created = await admin.createClient({
    client_name: "Ledger Sync",
    redirect_uris: ["https://ledger.example/cb", "com.example.ledger://callback", REDIRECT_URI],
    client_uri: "https://ledger.example",
  });
  assert.equal(created.error, null);
  const client = created.data!;
  assert.equal(client.client_type, "confidential");
  assert.equal(client.token_endpoint_auth_method, "client_secret_basic");
  assert.equal(client.registration_type, "manual");
  assert.match(client.client_secret!, /^[A-Za-z0-9_-]{43}$/);
  const [stored] = await db()`select client_secret_hash from auth.oauth_clients
                              where id = ${client.client_id}`;
  assert.notEqual(stored!["client_secret_hash"], client.client_secret, "only a hash is stored");

  const got = await admin.getClient(client.client_id);
  assert.equal(got.data!.client_secret, undefined, "the secret is shown once");
  assert.equal(got.data!.client_uri, "https://ledger.example");
  const list = await admin.listClients();
  assert.ok(list.data.clients.some((c) => c.client_id === client.client_id));
  const updated = await admin.updateClient(client.client_id, {
    client_name: "Ledger Sync 2",
    redirect_uris: [REDIRECT_URI],
  });
  assert.equal(updated.data!.client_name, "Ledger Sync 2");
  assert.deepEqual(updated.data!.redirect_uris, [REDIRECT_URI]);

  const rolled = await admin.regenerateClientSecret(client.client_id);
  assert.notEqual(rolled.data!.client_secret, client.client_secret);
  const basic = (secret: string) => ({ id: client.client_id, secret });
  const old = await tokenRequest(
    { grant_type: "refresh_token", refresh_token: "x" },
    basic(client.client_secret!),
  );
  assert.deepEqual(old, {
    status: 400,
    body: { code: 400, error_code: "invalid_credentials", msg: "invalid client credentials" },
  });
  const fresh = await tokenRequest(
    { grant_type: "refresh_token", refresh_token: "x" },
    basic(rolled.data!.client_secret!),
  );
  assert.equal(fresh.body["error_code"], "refresh_token_not_found", "the new secret is accepted");

  const serverLog = await Deno.readTextFile(
    new URL("../.local/logs/test-server.log", import.meta.url),
  );
  for (const secret of [client.client_secret!, rolled.data!.client_secret!]) {
    assert.ok(!serverLog.includes(secret), "no client secret in the server's log");
  }

  assert.deepEqual(await admin.deleteClient(client.client_id), { data: null, error: null });
  const gone = await admin.getClient(client.client_id);
  assert.equal(gone.error?.status, 404);
  assert.equal(gone.error?.code, "oauth_client_not_found");
});

e2e("admin: refusals (user token, too many or unsafe redirect URIs, public secret)", async () => {
  const { supabase } = await signedInUser();
  const { data } = await supabase.auth.getSession();
  const asUser = await fetch(`${ISSUER}/admin/oauth/clients`, {
    headers: { Authorization: `Bearer ${data.session!.access_token}` },
  });
  assert.equal(asUser.status, 403);
  assert.equal((await asUser.json()).error_code, "not_admin");

  const serviceRole = await mintServiceRoleKey();
  const empty = await fetch(`${ISSUER}/admin/oauth/clients`, {
    method: "POST",
    headers: { Authorization: `Bearer ${serviceRole}` },
  });
  assert.equal(empty.status, 400);
  assert.deepEqual(await empty.json(), {
    code: 400,
    error_code: "bad_json",
    msg: "Invalid JSON body",
  });
  const admin = (await adminClient()).auth.admin.oauth;
  const create = (redirect_uris: string[]) =>
    admin.createClient({ client_name: "x", redirect_uris });
  const eleven = Array.from({ length: 11 }, (_, i) => `https://app.example/cb${i}`);
  const tooMany = await create(eleven);
  assert.equal(tooMany.error?.status, 400);
  assert.equal(tooMany.error?.code, "validation_failed");
  assert.equal(tooMany.error?.message, "400: redirect_uris cannot exceed 10 items");
  const plainHttp = await create(["http://app.example/cb"]);
  assert.equal(
    plainHttp.error?.message,
    "400: invalid redirect_uri 'http://app.example/cb': HTTP scheme only allowed for localhost",
  );
  const fragment = await create(["https://app.example/cb#x"]);
  assert.match(fragment.error!.message, /fragment not allowed in redirect URI$/);
  const script = await create(["javascript://x/alert(1)"]);
  assert.match(script.error!.message, /scheme 'javascript' is not allowed/);
  for (const ok of ["http://localhost:8080/cb", "http://[::1]/cb", "myapp://cb"]) {
    assert.equal((await create([ok])).error, null, ok);
  }
  const { client } = await newClient("none");
  const regenerate = await admin.regenerateClientSecret(client.client_id);
  assert.equal(regenerate.error?.message, "Cannot regenerate secret for public client");
});

e2e("token and authorize refusals: PKCE, reuse, expiry, redirect URI, unknown client", async () => {
  const as = await discover();
  const { client, secret } = await newClient("client_secret_basic");
  const basic = { id: client.client_id, secret };
  const { supabase } = await signedInUser();
  const started = await startAuthorization(as, client.client_id, { scope: "email" });
  const code = (await approve(supabase, started.authorizationId)).searchParams.get("code")!;
  const grant = (extra: Record<string, string>) =>
    tokenRequest(
      { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, ...extra },
      basic,
    );
  const invalidGrant = (error_description: string) => ({
    status: 400,
    body: { error: "invalid_grant", error_description },
  });

  assert.deepEqual(
    await grant({ code_verifier: started.verifier.slice(1) }),
    invalidGrant(
      "PKCE verification failed: code challenge does not match previously saved code verifier",
    ),
  );
  assert.deepEqual(
    await grant({ code_verifier: started.verifier, redirect_uri: "http://127.0.0.1:29444/other" }),
    invalidGrant("Invalid redirect_uri"),
  );
  assert.deepEqual(
    await tokenRequest({ grant_type: "authorization_code", code }, {
      id: client.client_id,
      secret: "wrong",
    }),
    {
      status: 400,
      body: { code: 400, error_code: "invalid_credentials", msg: "invalid client credentials" },
    },
  );
  const unknown = { id: crypto.randomUUID(), secret };
  assert.deepEqual(await tokenRequest({ grant_type: "authorization_code", code }, unknown), {
    status: 400,
    body: { code: 400, error_code: "invalid_credentials", msg: "Invalid client credentials" },
  });
  assert.equal((await grant({ code_verifier: started.verifier })).status, 200);
  assert.deepEqual(
    await grant({ code_verifier: started.verifier }),
    invalidGrant("Invalid authorization code"),
  );

  // Ten minutes to decide, and to exchange the code.
  const pending = await startAuthorization(as, client.client_id, { scope: "email" });
  const late = await startAuthorization(as, client.client_id, { scope: "email profile" });
  const lateCode = (await approve(supabase, late.authorizationId)).searchParams.get("code")!;
  const [ttl] = await db()`select extract(epoch from expires_at - created_at)::int as s
                             from auth.oauth_authorizations
                            where authorization_id = ${pending.authorizationId}`;
  assert.equal(ttl!["s"], 600);
  await db()`update auth.oauth_authorizations
                set created_at = created_at - interval '11 minutes',
                    expires_at = expires_at - interval '11 minutes'
              where authorization_id in (${pending.authorizationId}, ${late.authorizationId})`;
  const expired = await supabase.auth.oauth.getAuthorizationDetails(pending.authorizationId);
  assert.equal(expired.error?.status, 404);
  assert.equal(expired.error?.code, "oauth_authorization_not_found");
  assert.deepEqual(
    await tokenRequest({
      grant_type: "authorization_code",
      code: lateCode,
      code_verifier: late.verifier,
    }, basic),
    invalidGrant("Authorization code has expired"),
  );

  // Errors before the client and redirect URI are trusted are answered, never redirected.
  const authorize = (params: Record<string, string>) =>
    fetch(`${as.authorization_endpoint}?${new URLSearchParams(params)}`, {
      redirect: "manual",
      headers: { "X-Supabase-Api-Version": "2024-01-01" },
    });
  const mismatch = await authorize({
    client_id: client.client_id,
    redirect_uri: `${REDIRECT_URI}/x`,
  });
  assert.equal(mismatch.status, 400);
  assert.deepEqual(await mismatch.json(), {
    code: "validation_failed",
    message: "invalid redirect_uri",
  });
  const stranger = await authorize({ client_id: crypto.randomUUID(), redirect_uri: REDIRECT_URI });
  assert.equal(stranger.status, 400);
  assert.deepEqual(await stranger.json(), {
    code: "oauth_client_not_found",
    message: "invalid client_id",
  });
  const noPkce = await authorize({
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    state: "s1",
  });
  await noPkce.body?.cancel();
  assert.equal(noPkce.status, 302);
  const refused = new URL(noPkce.headers.get("location")!);
  assert.equal(refused.searchParams.get("error"), "invalid_request");
  assert.equal(
    refused.searchParams.get("error_description"),
    "PKCE flow requires both code_challenge and code_challenge_method",
  );
  assert.equal(refused.searchParams.get("state"), "s1");
});

e2e("refresh: an OAuth session's token is refused at /token and to another client", async () => {
  const { tokens } = await clientSession("none", { scope: "email" });
  const refreshToken = tokens.refresh_token!;
  const own = await fetch(`${ISSUER}/token?grant_type=refresh_token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  assert.equal(own.status, 400);
  assert.deepEqual(await own.json(), {
    error: "invalid_client",
    error_description: "Client authentication required for OAuth session",
  });
  const other = await newClient("none");
  const foreign = await tokenRequest({
    grant_type: "refresh_token",
    client_id: other.client.client_id,
    refresh_token: refreshToken,
  });
  assert.deepEqual(foreign, {
    status: 400,
    body: {
      error: "invalid_client",
      error_description: "Client does not match the session's OAuth client",
    },
  });
});

closeDbLast("oauth_consent");
