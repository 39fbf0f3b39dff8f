/**
 * Third-party apps (`/api/apps`) over real HTTP against the test stack and its local Supabase
 * Auth (the OAuth 2.1 server's admin API): registering creates the OAuth client in Auth and the
 * app's row, the secret is shown once and works at Auth's token endpoint; bad input is a 400
 * naming the field before anything is created; changes reach Auth; deleting removes both; a
 * developer sees only their own apps; without the service role key or with Auth unreachable
 * the answer is a 503 and nothing is left behind.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  api,
  assertError,
  assertInvalid,
  BASE_URL,
  closeDbLast,
  db,
  e2e,
  newUser,
  signedIn,
  uniqueIp,
} from "./_harness.ts";
import { alone } from "./_support/alone.ts";
import { adminClient } from "./_support/oauth.ts";
import { appToken, grantApp, newApp } from "./_support/apps.ts";
import { delay } from "../supabase/functions/_shared/deadline.ts";
import { MAX_APPS } from "../supabase/functions/apps/handler.ts";
import { mintServiceRoleKey } from "../tools/local_auth.ts";

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

const APP = {
  name: "Acme sync",
  redirect_uris: ["https://acme.example/callback", "com.acme.app://oauth"],
  website: "https://acme.example",
  logo_uri: "https://acme.example/logo.png",
  scopes: ["vaults:read", "profile:read"],
};

const post = (body: unknown): RequestInit => ({ method: "POST", body: JSON.stringify(body) });
const patch = (body: unknown): RequestInit => ({ method: "PATCH", body: JSON.stringify(body) });

/** The OAuth client of that id as Auth's admin API has it, or null. */
async function authClient(clientId: string) {
  const admin = (await adminClient()).auth.admin.oauth;
  const { data, error } = await admin.getClient(clientId);
  if (error) return null;
  return data;
}

/** How many clients Auth holds. */
async function authClientCount(): Promise<number> {
  const { data, error } = await (await adminClient()).auth.admin.oauth.listClients();
  assert.equal(error, null);
  return data.clients.length;
}

/**
 * Whether Auth's token endpoint takes `secret` as the client's (`client_secret_basic`): with an
 * unknown code it then answers `invalid_grant`; a wrong secret is refused before the grant is
 * looked at (Supabase Auth's 400 `invalid_credentials`).
 */
async function secretAccepted(clientId: string, secret: string): Promise<boolean> {
  const r = await fetch(`${BASE_URL}/auth/v1/oauth/token`, {
    method: "POST",
    headers: {
      Authorization: `Basic ${btoa(`${clientId}:${secret}`)}`,
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: "unknown-code",
      redirect_uri: APP.redirect_uris[0]!,
      code_verifier: "a".repeat(43),
    }),
  });
  const body = await r.json();
  assert.equal(r.status, 400, JSON.stringify(body));
  if (body.error === "invalid_grant") return true;
  assert.equal(body.error_code, "invalid_credentials", JSON.stringify(body));
  return false;
}

e2e("POST /api/apps: a confidential app, its client in Auth, the secret once", async () => {
  const { user, as } = await signedIn();
  const r = await api("/api/apps", as(post(APP)));
  assert.equal(r.status, 201, r.text);
  const app = r.body;
  assert.match(app.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.match(app.client_id, /^[0-9a-f-]{36}$/);
  assert.match(app.client_secret, /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(
    { ...app, id: 0, client_id: 0, client_secret: 0, created_at: 0, updated_at: 0 },
    {
      ...APP,
      id: 0,
      client_id: 0,
      client_secret: 0,
      client_type: "confidential",
      tier_id: "01JBG7XKQM9F3Y8W2Z5N4P1R6A",
      created_at: 0,
      updated_at: 0,
    },
  );
  const client = await authClient(app.client_id);
  assert.equal(client?.client_name, APP.name);
  assert.deepEqual(client?.redirect_uris, APP.redirect_uris);
  assert.equal(client?.client_type, "confidential");
  assert.equal(client?.token_endpoint_auth_method, "client_secret_basic");
  assert.equal(await secretAccepted(app.client_id, app.client_secret), true);
  assert.equal(await secretAccepted(app.client_id, "not-the-secret"), false);

  // Never again: not in the list, not in the app.
  const got = await api(`/api/apps/${app.id}`, as());
  assert.equal(got.status, 200, got.text);
  assert.equal("client_secret" in got.body, false);
  const { client_secret: _shown, ...stored } = app;
  assert.deepEqual(got.body, stored);
  const [row] = await db()<{ owner_id: string }[]>`select owner_id from public.oauth_apps
    where id = ${app.id}`;
  assert.equal(row?.owner_id, user.userId);
});

e2e("POST /api/apps: a public app has no secret, and PKCE alone", async () => {
  const { as } = await signedIn();
  const r = await api("/api/apps", as(post({ ...APP, client_type: "public" })));
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.client_secret, null);
  assert.equal(r.body.client_type, "public");
  const client = await authClient(r.body.client_id);
  assert.equal(client?.token_endpoint_auth_method, "none");
  assertError(
    await api(`/api/apps/${r.body.id}/rotate`, as({ method: "POST" })),
    409,
    "APP_IS_PUBLIC",
  );
});

e2e("POST /api/apps: bad input is a 400 naming the field, and creates nothing", async () => {
  const { user, as } = await signedIn();
  const before = await authClientCount();
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ name: "" }, "name"],
    [{ redirect_uris: [] }, "redirect_uris"],
    [
      { redirect_uris: Array.from({ length: 11 }, (_, i) => `https://a.example/${i}`) },
      "redirect_uris",
    ],
    [{ redirect_uris: ["http://acme.example/cb"] }, "redirect_uris.0"],
    [{ redirect_uris: ["https://acme.example/cb#x"] }, "redirect_uris.0"],
    [{ redirect_uris: ["javascript://x/alert(1)"] }, "redirect_uris.0"],
    [{ scopes: ["vaults:admin"] }, "scopes.0"],
    [{ scopes: ["vaults:write"] }, "scopes"],
    [{ client_type: "private" }, "client_type"],
    [{ website: "http://acme.example" }, "website"],
  ];
  for (const [change, path] of cases) {
    assertInvalid(await api("/api/apps", as(post({ ...APP, ...change }))), path);
  }
  assert.equal(await authClientCount(), before, "no client was created in Auth");
  const [n] = await db()<{ n: number }[]>`select count(*)::int as n from public.oauth_apps
    where owner_id = ${user.userId}`;
  assert.equal(n?.n, 0);
});

e2e("apps: list, change (Auth follows), rotate, delete; others' apps are 404", async () => {
  const { as } = await signedIn();
  const first = (await api("/api/apps", as(post(APP)))).body;
  const second = (await api("/api/apps", as(post({ ...APP, name: "Second" })))).body;
  const list = await api("/api/apps?limit=10", as());
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.body.data.map((a: { id: string }) => a.id), [second.id, first.id]);
  assert.deepEqual(list.body.pagination, { limit: 10, offset: 0, total: 2 });

  const changed = await api(
    `/api/apps/${first.id.toLowerCase()}`,
    as(patch({ name: "Renamed", redirect_uris: ["https://acme.example/new"], website: null })),
  );
  assert.equal(changed.status, 200, changed.text);
  assert.equal(changed.body.name, "Renamed");
  assert.equal(changed.body.website, null);
  assert.deepEqual(changed.body.redirect_uris, ["https://acme.example/new"]);
  const client = await authClient(first.client_id);
  assert.equal(client?.client_name, "Renamed");
  assert.deepEqual(client?.redirect_uris, ["https://acme.example/new"]);
  assertInvalid(await api(`/api/apps/${first.id}`, as(patch({}))), "(root)");

  const rotated = await api(`/api/apps/${first.id}/rotate`, as({ method: "POST" }));
  assert.equal(rotated.status, 200, rotated.text);
  assert.notEqual(rotated.body.client_secret, first.client_secret);
  assert.equal(await secretAccepted(first.client_id, first.client_secret), false);
  assert.equal(await secretAccepted(first.client_id, rotated.body.client_secret), true);

  const stranger = await signedIn();
  for (
    const [path, init] of [
      [`/api/apps/${first.id}`, {}],
      [`/api/apps/${first.id}`, patch({ name: "mine" })],
      [`/api/apps/${first.id}`, { method: "DELETE" }],
      [`/api/apps/${first.id}/rotate`, { method: "POST" }],
    ] as const
  ) {
    assertError(await api(path, stranger.as(init)), 404, "NOT_FOUND");
  }
  assert.deepEqual((await api("/api/apps", stranger.as())).body.data, []);

  const deleted = await api(`/api/apps/${first.id}`, as({ method: "DELETE" }));
  assert.equal(deleted.status, 204, deleted.text);
  assert.equal(await authClient(first.client_id), null, "the client is gone from Auth");
  assertError(await api(`/api/apps/${first.id}`, as()), 404, "NOT_FOUND");
  assertError(await api(`/api/apps/${first.id}`, as({ method: "DELETE" })), 404, "NOT_FOUND");
  assertError(await api("/api/apps/not-an-id", as()), 404, "NOT_FOUND");
});

e2e(`POST /api/apps: at most ${MAX_APPS} apps per developer`, async () => {
  const { as } = await signedIn();
  for (let i = 0; i < MAX_APPS; i++) {
    const r = await api("/api/apps", as(post({ ...APP, name: `app ${i}`, client_type: "public" })));
    assert.equal(r.status, 201, r.text);
  }
  const before = await authClientCount();
  assertError(await api("/api/apps", as(post(APP))), 409, "APP_LIMIT_REACHED");
  assert.equal(await authClientCount(), before);
});

e2e("apps without the service role key, or with Auth unreachable: 503, nothing left", async () => {
  const user = await newUser();
  const send = (base: string) =>
    fetch(`${base}/apps`, {
      method: "POST",
      headers: { ...bearer(user.token), "Content-Type": "application/json" },
      body: JSON.stringify(APP),
    });
  await alone("apps", async (base) => {
    const r = await send(base);
    const body = await r.json();
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.equal(body.code, "CONFIGURATION_INVALID");
  }, { SUPABASE_SERVICE_ROLE_KEY: "" });
  const serviceKey = await mintServiceRoleKey();
  await alone("apps", async (base) => {
    const r = await send(base);
    const body = await r.json();
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.equal(body.code, "SERVICE_UNAVAILABLE");
  }, {
    // Tokens are still checked against the real Auth; its admin API is at a port nobody serves.
    SUPABASE_URL: "http://127.0.0.1:9",
    SUPABASE_SERVICE_ROLE_KEY: serviceKey,
    TORVUS_JWT_ISSUER: `${BASE_URL}/auth/v1`,
    TORVUS_JWKS_URL: `${BASE_URL}/auth/v1/.well-known/jwks.json`,
  });
  const [n] = await db()<{ n: number }[]>`select count(*)::int as n from public.oauth_apps
    where owner_id = ${user.userId}`;
  assert.equal(n?.n, 0);
});

e2e(
  "GET /api/apps/{id}/usage: the app's requests across its users, for its owner only",
  async () => {
    const app = await newApp({ scopes: ["vaults:read"] });
    const users = [await newUser(), await newUser()];
    for (const user of users) await grantApp(user, app, ["vaults:read"]);
    for (const [i, user] of users.entries()) {
      const token = await appToken(user, app.clientId);
      for (let n = 0; n <= i; n++) {
        const r = await api("/api/vaults", { ip: uniqueIp(), headers: bearer(token) });
        assert.equal(r.status, 200, r.text);
      }
      // Beyond its grant: a client error the app's usage counts too.
      const refused = await api("/api/vaults", {
        method: "POST",
        ip: uniqueIp(),
        headers: { ...bearer(token), "Content-Type": "application/json" },
        body: JSON.stringify({ name: "no" }),
      });
      assertError(refused, 403, "INSUFFICIENT_SCOPE");
    }
    const path = `/api/apps/${app.appId}/usage?granularity=hour`;
    const owner = { ip: uniqueIp(), headers: bearer(app.owner.token) };
    let r = await api(path, owner);
    for (let tries = 0; r.body?.totals?.requests !== 5 && tries < 50; tries++) {
      await delay(100);
      r = await api(path, owner);
    }
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.totals, {
      requests: 5,
      success: 3,
      rate_limited: 0,
      client_errors: 2,
      server_errors: 0,
    });
    assert.equal(r.body.granularity, "hour");
    assert.equal(r.body.buckets.length, 24);
    const stranger = await signedIn();
    assertError(await api(path, stranger.as()), 404, "NOT_FOUND");
    assertError(await api("/api/apps/not-an-id/usage", owner), 404, "NOT_FOUND");
  },
);

closeDbLast("apps");
