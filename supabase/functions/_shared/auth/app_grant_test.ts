import assert from "node:assert/strict";
import { createGrantAuthenticator, GRANT_CACHE_TTL_MS } from "./app_grant.ts";
import type { AppAccess, UserPrincipal } from "./principal.ts";

const USER = "7d9f3c2e-1b4a-4c5d-9e8f-0a1b2c3d4e5f";
const CLIENT = "3b0e6a0c-52f4-4b49-9d6b-2f0f8e1c9a10";

const principal = (exp = 2_000_000_000): UserPrincipal & { clientId: string } => ({
  kind: "user",
  userId: USER,
  clientId: CLIENT,
  email: undefined,
  mode: "live",
  claims: { sub: USER, client_id: CLIENT },
  exp,
});

const access: AppAccess = {
  clientId: CLIENT,
  grantId: "01JBG7XKQM9F3Y8W2Z5N4P1R6T",
  appId: "01JBG7XKQM9F3Y8W2Z5N4P1R6A",
  scopes: ["vaults:read"],
  tierId: "01JBG7XKQM9F3Y8W2Z5N4P1R6B",
  tierName: "free",
  limits: { perMinute: 10, perDay: 1000 },
};

/** A store that counts its lookups, an epoch read from `version`, and a clock. */
function setup(initial: AppAccess | null) {
  const state = { grant: initial, lookups: 0, version: "0.0", now: 1_000_000 };
  const auth = createGrantAuthenticator({
    store: {
      find: (user, client) => {
        state.lookups++;
        assert.equal(user, USER);
        assert.equal(client, CLIENT);
        return Promise.resolve(state.grant);
      },
    },
    epoch: {
      keysOf: () => ["p:grants:epoch", "p:grants:epoch:7"],
      versionOf: (values) => `${values[0] ?? 0}.${values[1] ?? 0}`,
      current: () => Promise.resolve(state.version),
    },
    now: () => state.now,
  });
  return { state, auth };
}

Deno.test("createGrantAuthenticator() admits a token on its grant, with the grant's scopes", async () => {
  const { auth } = setup(access);
  const r = await auth.admit(principal());
  assert.ok(r.ok);
  assert.deepEqual(r.principal.app, access);
  assert.equal(r.principal.userId, USER);
  assert.equal(r.confirm, undefined, "a fresh lookup needs no confirmation");
});

Deno.test("createGrantAuthenticator() trusts a cached grant only while its epoch is unchanged", async () => {
  const { state, auth } = setup(access);
  await auth.admit(principal());
  const hit = await auth.admit(principal());
  assert.ok(hit.ok && hit.confirm);
  assert.deepEqual(hit.confirm.keys, ["p:grants:epoch", "p:grants:epoch:7"]);
  assert.equal(hit.confirm.matches([null, null]), true);
  assert.equal(state.lookups, 1);
  // Revoked and announced: the epoch read with the rate limits differs, the entry is dropped.
  state.grant = null;
  state.version = "0.1";
  assert.equal(hit.confirm.matches([null, 1]), false);
  const again = await auth.admit(principal());
  assert.equal(again.ok, false);
  assert.equal(!again.ok && again.code, "APP_GRANT_NOT_ACTIVE");
  assert.equal(state.lookups, 2);
  // Nothing read (Redis failed): not trusted either.
  const cached = await auth.admit(principal());
  assert.ok(cached.confirm);
  assert.equal(cached.confirm.matches(undefined), false);
});

Deno.test("createGrantAuthenticator() confirms a cached refusal too, so a new grant counts at once", async () => {
  const { state, auth } = setup(null);
  const first = await auth.admit(principal());
  assert.equal(!first.ok && first.code, "APP_GRANT_NOT_ACTIVE");
  const cached = await auth.admit(principal());
  assert.ok(!cached.ok && cached.confirm, "a cached refusal carries its confirmation");
  state.grant = access;
  state.version = "0.1";
  assert.equal(cached.confirm.matches([0, 1]), false);
  const granted = await auth.admit(principal());
  assert.ok(granted.ok);
  assert.equal(state.lookups, 2);
});

Deno.test("createGrantAuthenticator() keeps an entry no longer than its lifetime or the token", async () => {
  const { state, auth } = setup(access);
  await auth.admit(principal());
  state.now += GRANT_CACHE_TTL_MS;
  await auth.admit(principal());
  assert.equal(state.lookups, 2, "the lifetime lapsed");
  const short = setup(access);
  const soon = Math.floor(short.state.now / 1000) + 1;
  await short.auth.admit(principal(soon));
  short.state.now += 1000;
  await short.auth.admit(principal(soon));
  assert.equal(short.state.lookups, 2, "never beyond the token's exp");
});

Deno.test("createGrantAuthenticator() caches nothing without an epoch to confirm against", async () => {
  let lookups = 0;
  const auth = createGrantAuthenticator({
    store: { find: () => (lookups++, Promise.resolve(access)) },
  });
  for (let i = 0; i < 3; i++) {
    const r = await auth.admit(principal());
    assert.ok(r.ok && r.confirm === undefined);
  }
  assert.equal(lookups, 3);
});
