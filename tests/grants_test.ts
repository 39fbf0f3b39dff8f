/**
 * Grants (`/api/grants`) over real HTTP against the test stack: what a consent page reads of an
 * app (another developer's, which the user cannot read otherwise), the grant recorded at consent
 * (scopes within the app's, a new one replacing the active one), the list "Authorized apps"
 * shows, revocation (final), the grant epoch bumped by each change, and the `app_grant.*`
 * events the app's owner receives.
 *
 * @module
 */
import assert from "node:assert/strict";
import { api, assertError, assertInvalid, closeDbLast, db, e2e, signedIn } from "./_harness.ts";
import { grantEpoch } from "./_support/apps.ts";

const post = (body: unknown): RequestInit => ({ method: "POST", body: JSON.stringify(body) });

const APP = {
  name: "Grant tester",
  redirect_uris: ["https://grants.example/callback"],
  website: "https://grants.example",
  logo_uri: "https://grants.example/logo.png",
  scopes: ["vaults:read", "vaults:write", "profile:read"],
};

/** A developer with an app and a webhook endpoint for its grant events. */
async function developerWithApp() {
  const dev = await signedIn();
  const created = await api("/api/apps", dev.as(post(APP)));
  assert.equal(created.status, 201, created.text);
  const hook = await api(
    "/api/webhooks",
    dev.as(post({
      // A local port nobody serves: deliveries never leave this machine.
      url: "https://127.0.0.1:9/grants",
      events: ["app_grant.created", "app_grant.revoked"],
    })),
  );
  assert.equal(hook.status, 201, hook.text);
  return { ...dev, app: created.body, hookId: hook.body.id as string };
}

/** The events queued for the endpoint `hookId`, oldest first: type and data. */
async function eventsOf(hookId: string) {
  return await db()<{ type: string; data: Record<string, unknown> }[]>`
    select e.type, e.payload -> 'data' as data from public.webhook_deliveries d
    join public.webhook_events e on e.id = d.event_id
    where d.endpoint_id = ${hookId} order by e.created_at, e.id`;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

e2e("GET /api/grants/apps/{client_id}: what a consent page shows of another's app", async () => {
  const dev = await developerWithApp();
  const user = await signedIn();
  const r = await api(`/api/grants/apps/${dev.app.client_id}`, user.as());
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, {
    client_id: dev.app.client_id,
    name: APP.name,
    website: APP.website,
    logo_uri: APP.logo_uri,
    owner: { email: dev.user.email },
    scopes: APP.scopes,
  });
  // The user still cannot read the app itself.
  assertError(await api(`/api/apps/${dev.app.id}`, user.as()), 404, "NOT_FOUND");
  for (const unknown of [crypto.randomUUID(), "not-a-client", "a%20b"]) {
    const missing = await api(`/api/grants/apps/${unknown}`, user.as());
    assertError(missing, 404, "NOT_FOUND");
    assert.equal(missing.body.message, "App not found");
  }
});

e2e("POST /api/grants records the scopes chosen, bumps the epoch, tells the owner", async () => {
  const dev = await developerWithApp();
  const user = await signedIn();
  const epoch = grantEpoch();
  const before = await epoch.current(user.user.userId);
  const r = await api(
    "/api/grants",
    user.as(post({ client_id: dev.app.client_id, scopes: ["vaults:read"] })),
  );
  assert.equal(r.status, 201, r.text);
  assert.match(r.body.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.match(r.body.granted_at, ISO);
  assert.deepEqual({ ...r.body, id: 0, granted_at: 0 }, {
    id: 0,
    client_id: dev.app.client_id,
    app: { name: APP.name, website: APP.website, logo_uri: APP.logo_uri },
    scopes: ["vaults:read"],
    status: "active",
    granted_at: 0,
    revoked_at: null,
    last_used_at: null,
  });
  assert.notEqual(await epoch.current(user.user.userId), before, "the grant epoch moved");

  // Consenting again replaces the active grant: the first is revoked, the owner hears both.
  const again = await api(
    "/api/grants",
    user.as(post({ client_id: dev.app.client_id, scopes: ["vaults:read", "profile:read"] })),
  );
  assert.equal(again.status, 201, again.text);
  const events = await eventsOf(dev.hookId);
  // Deliveries are not ordered (README): the two events of the replacing statement share its
  // instant, so they are compared as a set.
  const seen = (list: unknown[][]) => list.map((e) => JSON.stringify(e)).sort();
  assert.deepEqual(
    seen(events.map((e) => [e.type, e.data.user_id, e.data.scopes])),
    seen([
      ["app_grant.created", user.user.userId, ["vaults:read"]],
      ["app_grant.revoked", user.user.userId, ["vaults:read"]],
      ["app_grant.created", user.user.userId, ["vaults:read", "profile:read"]],
    ]),
  );
  for (const e of events) assert.equal(e.data.client_id, dev.app.client_id);
  const listed = await api("/api/grants?status=all", user.as());
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(
    listed.body.data.map((g: { id: string; status: string }) => [g.id, g.status]),
    [[again.body.id, "active"], [r.body.id, "revoked"]],
  );
});

e2e(
  "POST /api/grants refuses scopes the app does not ask for, unknown apps, bad input",
  async () => {
    const dev = await developerWithApp();
    const user = await signedIn();
    const notAsked = await api(
      "/api/grants",
      user.as(post({ client_id: dev.app.client_id, scopes: ["vaults:read", "vaults:delete"] })),
    );
    assertInvalid(notAsked, "scopes");
    assert.equal(
      notAsked.body.message,
      "Invalid body: scopes: includes a scope the app does not ask for",
    );
    const unknown = await api(
      "/api/grants",
      user.as(post({ client_id: crypto.randomUUID(), scopes: ["vaults:read"] })),
    );
    assertError(unknown, 404, "NOT_FOUND");
    assert.equal(unknown.body.message, "App not found");
    for (
      const [body, field] of [
        [{ client_id: dev.app.client_id, scopes: ["vaults:write"] }, "scopes"],
        [{ client_id: dev.app.client_id, scopes: [] }, "scopes"],
        [{ client_id: dev.app.client_id, scopes: ["vaults:read", "vaults:read"] }, "scopes"],
        [{ client_id: dev.app.client_id, scopes: ["admin"] }, "scopes.0"],
        [{ client_id: "x", scopes: ["vaults:read"] }, "client_id"],
        [{ client_id: dev.app.client_id, scopes: ["vaults:read"], user_id: "x" }, "user_id"],
      ] as const
    ) {
      assertInvalid(await api("/api/grants", user.as(post(body))), field);
    }
    assert.equal((await eventsOf(dev.hookId)).length, 0, "nothing was granted");
  },
);

e2e("POST /api/grants/{id}/revoke: revoked at once, then 409; others' grants are 404", async () => {
  const dev = await developerWithApp();
  const user = await signedIn();
  const other = await signedIn();
  const epoch = grantEpoch();
  const granted = await api(
    "/api/grants",
    user.as(post({ client_id: dev.app.client_id, scopes: ["profile:read"] })),
  );
  assert.equal(granted.status, 201, granted.text);
  const id = granted.body.id as string;
  assertError(
    await api(`/api/grants/${id}/revoke`, other.as({ method: "POST" })),
    404,
    "NOT_FOUND",
  );
  assertError(
    await api("/api/grants/01ARZ3NDEKTSV4RRFFQ69G5FAV/revoke", user.as({ method: "POST" })),
    404,
    "NOT_FOUND",
  );
  assertError(await api("/api/grants/nope/revoke", user.as({ method: "POST" })), 404, "NOT_FOUND");

  const before = await epoch.current(user.user.userId);
  const r = await api(`/api/grants/${id.toLowerCase()}/revoke`, user.as({ method: "POST" }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, "revoked");
  assert.match(r.body.revoked_at, ISO);
  assert.deepEqual(r.body.scopes, ["profile:read"]);
  assert.notEqual(await epoch.current(user.user.userId), before, "the grant epoch moved");

  const twice = await api(`/api/grants/${id}/revoke`, user.as({ method: "POST" }));
  assertError(twice, 409, "GRANT_REVOKED");
  assert.equal(twice.body.message, "The grant is already revoked");

  const active = await api("/api/grants", user.as());
  assert.deepEqual(active.body, { data: [], pagination: { limit: 20, offset: 0, total: 0 } });
  const revoked = await api("/api/grants?status=revoked", user.as());
  assert.deepEqual(revoked.body.data.map((g: { id: string }) => g.id), [id]);

  const events = await eventsOf(dev.hookId);
  assert.deepEqual(events.map((e) => e.type), ["app_grant.created", "app_grant.revoked"]);
  assert.deepEqual(Object.keys(events[1]!.data).sort(), [
    "app_id",
    "client_id",
    "granted_at",
    "revoked_at",
    "scopes",
    "user_id",
  ]);
  assert.equal(events[1]!.data.app_id, dev.app.id);
});

e2e("GET /api/grants: newest first, the user's own only, paged", async () => {
  const devA = await developerWithApp();
  const devB = await developerWithApp();
  const user = await signedIn();
  const other = await signedIn();
  const a = await api(
    "/api/grants",
    user.as(post({ client_id: devA.app.client_id, scopes: ["vaults:read"] })),
  );
  const b = await api(
    "/api/grants",
    user.as(post({ client_id: devB.app.client_id, scopes: ["vaults:read", "vaults:write"] })),
  );
  assert.equal(b.status, 201, b.text);
  const r = await api("/api/grants?limit=1", user.as());
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.pagination, { limit: 1, offset: 0, total: 2 });
  assert.deepEqual(r.body.data, [b.body]);
  const next = await api("/api/grants?limit=1&offset=1", user.as());
  assert.deepEqual(next.body.data, [a.body]);
  const theirs = await api("/api/grants?status=all", other.as());
  assert.deepEqual(theirs.body.pagination.total, 0);
  assertInvalid(await api("/api/grants?status=expired", user.as()), "status");
});

closeDbLast("grants");
