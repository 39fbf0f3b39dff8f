import assert from "node:assert/strict";
import { JWT_CASES } from "../testing/hostile.ts";
import { fakeServices } from "../testing/fakes.ts";
import { catalogueTest } from "../testing/run_case.ts";
import { createJwtVerifier } from "./jwt.ts";

Deno.test(
  "createJwtVerifier() refuses every hostile token of the catalogue as documented",
  catalogueTest("jwt", JWT_CASES),
);

Deno.test("createJwtVerifier() accepts a genuine token and keeps the verified claims", async () => {
  const f = await fakeServices();
  const sub = crypto.randomUUID();
  const token = await f.signer.token(sub, f.clock.now(), { email: "a@example.com" });
  const result = await f.services.jwt.verify(token);
  assert.ok(result.ok);
  assert.equal(result.principal.userId, sub);
  assert.equal(result.principal.email, "a@example.com");
  assert.equal(result.principal.claims.role, "authenticated");
});

Deno.test("createJwtVerifier() says expired only of a genuine token, by the service clock", async () => {
  const f = await fakeServices();
  const token = await f.signer.token(crypto.randomUUID(), f.clock.now(), {}, 60);
  assert.equal((await f.services.jwt.verify(token)).ok, true);
  f.clock.advance(61_000);
  const expired = await f.services.jwt.verify(token);
  assert.deepEqual(expired, { ok: false, code: "TOKEN_EXPIRED", bearerError: "invalid_token" });
});

Deno.test("createJwtVerifier() caches a verified token no longer than its exp", async () => {
  const f = await fakeServices();
  let fetches = 0;
  const verifier = createJwtVerifier({
    issuer: f.signer.issuer,
    audience: "authenticated",
    jwks: (header, token) => {
      fetches++;
      return f.signer.keys(header, token);
    },
    now: f.clock.now,
  });
  const token = await f.signer.token(crypto.randomUUID(), f.clock.now(), {}, 30);
  for (let i = 0; i < 5; i++) assert.equal((await verifier.verify(token)).ok, true);
  assert.equal(fetches, 1, "one signature check for five requests");
  f.clock.advance(31_000);
  assert.equal((await verifier.verify(token)).ok, false, "not served from cache past exp");
});

Deno.test("createJwtVerifier() answers an unreachable key set as unavailable, not invalid", async () => {
  const f = await fakeServices();
  const verifier = createJwtVerifier({
    issuer: f.signer.issuer,
    audience: "authenticated",
    jwks: () => Promise.reject(Object.assign(new Error("timed out"), { code: "ERR_JWKS_TIMEOUT" })),
    now: f.clock.now,
  });
  const token = await f.signer.token(crypto.randomUUID(), f.clock.now());
  assert.deepEqual(await verifier.verify(token), {
    ok: false,
    code: "SERVICE_UNAVAILABLE",
    unavailable: true,
  });
});
