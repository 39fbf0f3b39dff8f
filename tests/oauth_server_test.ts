/**
 * The local Auth stand-in's OAuth 2.1 server driven by oauth4webapi (an OpenID-certified client)
 * as a third-party app drives Supabase Auth's: discovery, a PKCE authorization request, the
 * consent step (through supabase-js, as the console's consent page does it), the code exchange
 * with each client authentication method, the ID token, userinfo, and refresh-token rotation.
 * Dynamic registration, off in supabase/config.toml, is driven against a stand-in with it on,
 * served here over HTTP against the same database.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import * as oauth from "oauth4webapi";
import { closeDbLast, db, e2e } from "./_harness.ts";
import {
  clientSession,
  discover,
  INSECURE,
  ISSUER,
  REDIRECT_URI,
  refresh,
  tokenRequest,
} from "./_support/oauth.ts";
import { createAuthHandler } from "../tools/auth/server.ts";
import { Mailbox } from "../tools/auth/mailbox.ts";
import { OAUTH_SERVER_OFF } from "../tools/auth/oauth_server.ts";

e2e("discovery: the metadata at RFC 8414's path and at OpenID Connect's are the same", async () => {
  const as = await discover();
  assert.equal(as.issuer, ISSUER);
  assert.equal(as.authorization_endpoint, `${ISSUER}/oauth/authorize`);
  assert.equal(as.token_endpoint, `${ISSUER}/oauth/token`);
  assert.equal(as.userinfo_endpoint, `${ISSUER}/oauth/userinfo`);
  assert.equal(as.jwks_uri, `${ISSUER}/.well-known/jwks.json`);
  assert.deepEqual(as.code_challenge_methods_supported, ["S256", "plain"]);
  assert.deepEqual(as.grant_types_supported, ["authorization_code", "refresh_token"]);
  assert.deepEqual(as.token_endpoint_auth_methods_supported, [
    "client_secret_basic",
    "client_secret_post",
    "none",
  ]);
  assert.equal(as.registration_endpoint, undefined, "dynamic registration is off");
  const oidc = await oauth.processDiscoveryResponse(
    new URL(ISSUER),
    await oauth.discoveryRequest(new URL(ISSUER), { algorithm: "oidc", ...INSECURE }),
  );
  assert.deepEqual({ ...oidc }, { ...as });
  const inside = await fetch(`${ISSUER}/.well-known/oauth-authorization-server`);
  assert.deepEqual(await inside.json(), { ...as });
});

e2e("client_secret_basic: PKCE S256, consent, code, ID token, userinfo, refresh", async () => {
  const { as, client, secret, auth, userId, started, tokens } = await clientSession(
    "client_secret_basic",
  );
  assert.deepEqual(Object.keys(tokens).sort(), [
    "access_token",
    "expires_in",
    "id_token",
    "refresh_token",
    "token_type",
  ]);
  assert.equal(tokens.token_type, "bearer");
  assert.equal(tokens.expires_in, 3600);
  const claims = decodeJwt(tokens.access_token);
  assert.equal(claims.aud, "authenticated");
  assert.equal(claims["role"], "authenticated");
  assert.equal(claims.sub, userId);
  assert.equal(claims.iss, ISSUER);
  assert.equal(typeof claims["session_id"], "string");
  assert.equal(claims["client_id"], client.client_id);
  assert.equal(claims["scope"], "openid email profile");
  assert.deepEqual((claims["amr"] as { method: string }[]).map((a) => a.method), [
    "oauth_provider/authorization_code",
  ]);
  const idToken = oauth.getValidatedIdTokenClaims(tokens)!;
  assert.deepEqual(idToken.aud, [client.client_id]);
  assert.equal(idToken.sub, userId);
  assert.equal(idToken.nonce, started.nonce);
  assert.equal(typeof idToken["email"], "string");
  assert.equal(idToken["email_verified"], true);

  const info = await oauth.processUserInfoResponse(
    as,
    client,
    userId,
    await oauth.userInfoRequest(as, client, tokens.access_token, INSECURE),
  );
  assert.equal(info.sub, userId);
  assert.equal(info.email, idToken["email"]);
  assert.equal(info.email_verified, true);
  assert.equal(info.name, idToken["email"], "the name falls back to the email");

  const refreshed = await refresh(as, client, auth, tokens.refresh_token!);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  assert.equal(refreshed.id_token, undefined, "a refresh gives no ID token");
  const again = decodeJwt(refreshed.access_token);
  assert.equal(again["client_id"], client.client_id);
  assert.equal(again["session_id"], claims["session_id"]);
  assert.deepEqual(again["amr"], claims["amr"], "the sign-in method outlives a refresh");

  // oauth4webapi's form-encoded Basic credentials are refused, as Supabase Auth refuses them.
  const encoded = await oauth.refreshTokenGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic(secret),
    refreshed.refresh_token!,
    INSECURE,
  );
  assert.equal(encoded.status, 400);
  assert.deepEqual(await encoded.json(), {
    code: 400,
    error_code: "invalid_credentials",
    msg: "Invalid client_id format",
  });
});

e2e("client_secret_post, plain PKCE; refresh rotation refuses an old token", async () => {
  const { as, client, secret, auth, tokens } = await clientSession("client_secret_post", {
    scope: "email",
    plain: true,
  });
  assert.equal(tokens.id_token, undefined, "no openid scope, no ID token");
  assert.equal(decodeJwt(tokens.access_token)["scope"], "email");
  const r1 = tokens.refresh_token!;
  const second = await refresh(as, client, auth, r1);
  const third = await refresh(as, client, auth, second.refresh_token!);
  // Past Supabase Auth's 10 s reuse interval, a used token is refused and ends the session.
  await db()`update auth.refresh_tokens set updated_at = now() - interval '20 seconds'
             where token = ${r1}`;
  const post = { client_id: client.client_id, client_secret: secret };
  const reused = await tokenRequest({ ...post, grant_type: "refresh_token", refresh_token: r1 });
  assert.equal(reused.status, 400);
  assert.deepEqual(reused.body, {
    code: 400,
    error_code: "refresh_token_already_used",
    msg: "Invalid Refresh Token: Already Used",
  });
  const latest = await tokenRequest({
    ...post,
    grant_type: "refresh_token",
    refresh_token: third.refresh_token!,
  });
  assert.equal(latest.status, 400);
  assert.equal(latest.body["error_code"], "refresh_token_not_found");
});

e2e("public client: PKCE only, token_endpoint_auth_method none", async () => {
  const { as, client, secret, userId, tokens } = await clientSession("none", { scope: "openid" });
  assert.equal(secret, "", "a public client has no secret");
  assert.equal(decodeJwt(tokens.access_token)["client_id"], client.client_id);
  const info = await oauth.processUserInfoResponse(
    as,
    client,
    userId,
    await oauth.userInfoRequest(as, client, tokens.access_token, INSECURE),
  );
  assert.deepEqual(info, { sub: userId }, "openid alone grants only the subject");
  const refreshed = await refresh(as, client, oauth.None(), tokens.refresh_token!);
  const withSecret = await tokenRequest({
    grant_type: "refresh_token",
    refresh_token: refreshed.refresh_token!,
    client_id: client.client_id,
    client_secret: "anything",
  });
  assert.equal(withSecret.status, 400);
  assert.deepEqual(withSecret.body, {
    code: 400,
    error_code: "invalid_credentials",
    msg: "invalid authentication method: client is registered for 'none' but " +
      "'client_secret_post' was used",
  });
});

e2e("dynamic registration: off here (403), and with it on a public client registers", async () => {
  const off = await fetch(`${ISSUER}/oauth/clients/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Supabase-Api-Version": "2024-01-01" },
    body: JSON.stringify({ redirect_uris: [REDIRECT_URI] }),
  });
  assert.equal(off.status, 403);
  assert.deepEqual(await off.json(), {
    code: "oauth_dynamic_client_registration_disabled",
    message: "Dynamic client registration is not enabled",
  });

  const settings = {
    sql: db(),
    mailbox: new Mailbox(),
    siteUrl: "http://127.0.0.1:29333",
    redirectUrls: [],
    jwtExpiry: 3600,
    allowTtlHeader: false,
  };
  const serve = (handler: (req: Request) => Promise<Response>) =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  let handler = (_req: Request) => Promise.resolve(new Response(null, { status: 503 }));
  const server = serve((req) => handler(req));
  const publicUrl = `http://127.0.0.1:${server.addr.port}`;
  const issuer = `${publicUrl}/auth/v1`;
  handler = createAuthHandler({
    ...settings,
    publicUrl,
    oauthServer: { ...OAUTH_SERVER_OFF, enabled: true, allowDynamicRegistration: true },
  });
  const disabled = serve(
    createAuthHandler({ ...settings, publicUrl, oauthServer: OAUTH_SERVER_OFF }),
  );
  try {
    const as = await oauth.processDiscoveryResponse(
      new URL(issuer),
      await oauth.discoveryRequest(new URL(issuer), { algorithm: "oauth2", ...INSECURE }),
    );
    assert.equal(as.registration_endpoint, `${issuer}/oauth/clients/register`);
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(as, {
        redirect_uris: ["com.example.app://callback"],
        token_endpoint_auth_method: "none",
        client_name: "registered by itself",
      }, INSECURE),
    );
    assert.equal(registered.token_endpoint_auth_method, "none");
    assert.equal(registered["registration_type"], "dynamic");
    assert.equal(registered.client_secret, undefined);

    const off = `http://127.0.0.1:${disabled.addr.port}/auth/v1`;
    const metadata = await fetch(`${off}/.well-known/oauth-authorization-server`);
    assert.equal(metadata.status, 404);
    assert.equal((await metadata.json()).error_code, "feature_disabled");
    const openid = await fetch(`${off}/.well-known/openid-configuration`);
    assert.equal(openid.status, 200, "the OpenID configuration is served either way");
    await openid.body?.cancel();
  } finally {
    await server.shutdown();
    await disabled.shutdown();
  }
});

closeDbLast("oauth_server");
