import assert from "node:assert/strict";
import { type AdmissionRequest, admit, bearerToken, challengeOf } from "./admission.ts";
import { fakeServices, storedKey } from "../testing/fakes.ts";
import { generateApiKey } from "../auth/key_format.ts";
import type { Scope } from "../auth/principal.ts";
import { Timing } from "./timing.ts";
import { compileRoutes, resolve } from "./router.ts";
import type { AuthKind } from "./spec.ts";
import { probeSpec } from "../testing/run_case.ts";
import { createGrantAuthenticator } from "../auth/app_grant.ts";
import type { EpochSource } from "../auth/epoch.ts";

const timing = () => new Timing();

/** What `method /path` comes to on a function of one route, `GET /`. */
function target(
  auth: AuthKind,
  more: { scope?: Scope; rateLimited?: false; path?: string; method?: string } = {},
): AdmissionRequest["target"] {
  const route = more.rateLimited === false ? { rateLimited: false as const } : {};
  const spec = probeSpec(auth, route, more.scope ? { scope: more.scope } : {});
  const t = resolve(compileRoutes(spec.routes), more.path ?? "/", more.method ?? "GET");
  assert.notEqual(t.kind, "preflight");
  return t as AdmissionRequest["target"];
}

Deno.test("bearerToken() reads RFC 6750's b64token, and nothing else", () => {
  assert.deepEqual(bearerToken(null), { kind: "missing" });
  assert.deepEqual(bearerToken("Basic abc"), { kind: "missing" });
  assert.deepEqual(bearerToken("bearer a.b.c"), { kind: "token", token: "a.b.c" });
  assert.deepEqual(bearerToken("Bearer a.b c"), { kind: "malformed" });
  assert.deepEqual(bearerToken("Bearer"), { kind: "malformed" });
});

Deno.test("challengeOf() names the RFC 6750 error of a refused bearer token", () => {
  assert.equal(
    challengeOf("jwt", { ok: false, code: "MISSING_AUTH_TOKEN" }),
    'Bearer realm="torvus"',
  );
  assert.match(
    challengeOf("jwt", { ok: false, code: "TOKEN_EXPIRED", bearerError: "invalid_token" })!,
    /error="invalid_token", error_description="The access token expired"/,
  );
  assert.equal(challengeOf("none", { ok: false, code: "NOT_FOUND" }), undefined);
});

Deno.test("admit() counts a failed authentication against the client's address", async () => {
  const f = await fakeServices();
  const a = await admit(f.services, {
    target: target("api_key"),
    headers: new Headers({ "x-api-key": "sk_live_nope" }),
    ip: "203.0.113.9",
  }, timing());
  assert.equal(a.kind, "refused");
  assert.equal(a.kind === "refused" && a.code, "INVALID_API_KEY");
  assert.equal(a.kind === "refused" && a.decision?.limit, 100);
  assert.deepEqual([...f.limiter.counts.keys()].map((k) => k.split(":").slice(0, 2).join(":")), [
    "ip:203.0.113.9",
  ]);
});

Deno.test("admit() refuses a key without the operation's scope, after counting it", async () => {
  const f = await fakeServices();
  const { key } = generateApiKey("test");
  f.store.add(key, storedKey({ scopes: ["read"] }));
  const a = await admit(f.services, {
    target: target("api_key", { scope: "delete" }),
    headers: new Headers({ "x-api-key": key }),
    ip: undefined,
  }, timing());
  assert.equal(a.kind, "refused");
  if (a.kind !== "refused") return;
  assert.equal(a.code, "INSUFFICIENT_SCOPE");
  assert.deepEqual(a.extra, { required_scope: "delete" });
  assert.equal(a.decision?.remaining, 19, "the request was counted");
  assert.equal(a.principal?.kind, "api_key");
});

Deno.test("admit() re-reads a key whose state changed since it was cached", async () => {
  const f = await fakeServices();
  const { key } = generateApiKey("test");
  f.store.add(key, storedKey());
  const request = {
    target: target("api_key"),
    headers: new Headers({ "x-api-key": key }),
    ip: undefined,
  };
  assert.equal((await admit(f.services, request, timing())).kind, "admitted");
  // Revoked elsewhere, announced through the epoch.
  f.store.add(key, storedKey({ status: "revoked" }));
  await f.epoch.bump();
  const after = await admit(f.services, request, timing());
  assert.equal(after.kind, "refused");
  assert.equal(after.kind === "refused" && after.code, "API_KEY_NOT_ACTIVE");
  assert.equal(after.kind === "refused" && after.message, "API key is revoked");
  assert.equal(f.store.lookups, 2, "looked up again, once");
  assert.equal(f.limiter.refunds, 1, "the cached decision's token was given back");
});

Deno.test("admit() lets a route that is never limited through without counting", async () => {
  const f = await fakeServices();
  const a = await admit(f.services, {
    target: target("none", { rateLimited: false }),
    headers: new Headers(),
    ip: "x",
  }, timing());
  assert.deepEqual(a, { kind: "admitted", principal: undefined, decision: undefined });
  const missing = await admit(f.services, {
    target: target("none", { rateLimited: false, method: "POST" }),
    headers: new Headers(),
    ip: "x",
  }, timing());
  assert.equal(missing.kind === "refused" && missing.code, "METHOD_NOT_ALLOWED");
  assert.equal(missing.kind === "refused" && missing.decision, undefined);
  assert.equal(f.limiter.counts.size, 0);
});

Deno.test("admit() refuses an unknown path and a missing method, counted against the address", async () => {
  const f = await fakeServices();
  const ask = (more: { path?: string; method?: string }) =>
    admit(f.services, { target: target("jwt", more), headers: new Headers(), ip: "x" }, timing());
  const missing = await ask({ path: "/nope" });
  assert.equal(missing.kind === "refused" && missing.code, "NOT_FOUND");
  assert.equal(missing.kind === "refused" && missing.message, "Route not found");
  const method = await ask({ method: "DELETE" });
  assert.equal(method.kind === "refused" && method.code, "METHOD_NOT_ALLOWED");
  assert.equal(method.kind === "refused" && method.allow, "GET, OPTIONS");
  assert.equal(method.kind === "refused" && method.decision?.remaining, 98, "both were counted");
});

Deno.test("admit() confirms a cached grant refusal in the address's count, and counts once", async () => {
  const f = await fakeServices();
  // The grant authenticator with an epoch, so a refusal is cached and confirmed.
  const keys = ["epoch", "epoch:1"];
  const epoch: EpochSource<string> = {
    keysOf: () => keys,
    versionOf: f.epoch.versionOf,
    current: async () => f.epoch.versionOf(await f.epoch.read(keys)),
  };
  const find = (user: string, client: string) =>
    Promise.resolve(f.grants.get(`${user}\n${client}`) ?? null);
  const s = {
    ...f.services,
    grants: createGrantAuthenticator({ store: { find }, epoch, now: f.clock.now }),
  };
  const [user, client] = [crypto.randomUUID(), "client-1"];
  const token = await f.signer.token(user, f.clock.now(), { client_id: client });
  const spec = probeSpec("jwt", {}, { appScope: "profile:read" });
  const request = {
    target: resolve(compileRoutes(spec.routes), "/", "GET") as AdmissionRequest["target"],
    headers: new Headers({ authorization: `Bearer ${token}` }),
    ip: "203.0.113.7",
  };
  const ipCount = () =>
    [...f.limiter.counts].filter(([k]) => k.startsWith("ip:203.0.113.7:")).map(([, n]) => n);

  const first = await admit(s, request, timing());
  assert.equal(first.kind === "refused" && first.code, "APP_GRANT_NOT_ACTIVE");
  assert.deepEqual(ipCount(), [1]);
  // The user's grants change (another app's), announced: the cached refusal is stale, looked up
  // again and still a refusal: counted once against the address, nothing given back.
  await f.epoch.bump([1]);
  const still = await admit(s, request, timing());
  assert.equal(still.kind === "refused" && still.code, "APP_GRANT_NOT_ACTIVE");
  assert.deepEqual(ipCount(), [2]);
  assert.equal(f.limiter.refunds, 0);
  // Now granted: the address's count is given back and the app's windows count the request.
  f.grants.set(`${user}\n${client}`, {
    clientId: client,
    grantId: "01JBG7XKQM9F3Y8W2Z5N4P1R6T",
    appId: "01JBG7XKQM9F3Y8W2Z5N4P1R6V",
    scopes: ["profile:read"],
    tierId: "01JBG7XKQM9F3Y8W2Z5N4P1R6W",
    tierName: "free",
    limits: { perMinute: 20, perDay: 1000 },
  });
  await f.epoch.bump([1]);
  const admitted = await admit(s, request, timing());
  assert.equal(admitted.kind, "admitted");
  assert.equal(f.limiter.refunds, 1);
  assert.deepEqual(ipCount(), [3], "the fake limiter records a refund without undoing it");
  assert.ok([...f.limiter.counts.keys()].some((k) => !k.startsWith("ip:")), "counted as the app");
});
