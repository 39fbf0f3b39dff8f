import assert from "node:assert/strict";
import { join } from "node:path";
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify } from "jose";
import {
  clearSigningKeyCache,
  loadOrCreateSigningKey,
  mintAccessToken,
  publicJwks,
  signingKeyPath,
} from "../tools/local_auth.ts";

const ISSUER = "http://127.0.0.1:54321/auth/v1";
const USER_ID = "6f1c1f5e-4b8e-4a55-9d0e-2c6b0d6a1f00";

async function withKeyFile(fn: (file: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "torvus-auth-" });
  try {
    await fn(join(dir, "nested", "signing-key.json"));
  } finally {
    clearSigningKeyCache();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("signing key is created once with mode 0600 and reused", async () => {
  await withKeyFile(async (file) => {
    const first = await loadOrCreateSigningKey(file);
    const stat = await Deno.stat(file);
    assert.equal((stat.mode ?? 0) & 0o777, 0o600);
    const text = await Deno.readTextFile(file);
    const stored = JSON.parse(text);
    assert.equal(stored.kty, "EC");
    assert.equal(stored.crv, "P-256");
    assert.equal(stored.alg, "ES256");
    assert.equal(stored.use, "sig");
    assert.equal(stored.kid, first.kid);
    assert.equal(typeof stored.d, "string");

    assert.equal(await loadOrCreateSigningKey(file), first, "cached in the module");
    clearSigningKeyCache();
    const again = await loadOrCreateSigningKey(file);
    assert.equal(again.kid, first.kid);
    assert.equal(await Deno.readTextFile(file), text, "file not rewritten");
    const leftovers = [...Deno.readDirSync(join(file, ".."))].map((e) => e.name);
    assert.deepEqual(leftovers, ["signing-key.json"]);
  });
});

Deno.test("TORVUS_AUTH_KEY_FILE overrides the default path", async () => {
  await withKeyFile(async (file) => {
    const previous = Deno.env.get("TORVUS_AUTH_KEY_FILE");
    Deno.env.set("TORVUS_AUTH_KEY_FILE", file);
    try {
      assert.equal(signingKeyPath(), file);
      const key = await loadOrCreateSigningKey();
      assert.equal(key.path, file);
      await Deno.stat(file);
    } finally {
      if (previous === undefined) Deno.env.delete("TORVUS_AUTH_KEY_FILE");
      else Deno.env.set("TORVUS_AUTH_KEY_FILE", previous);
    }
  });
});

Deno.test("JWKS holds only the public key", async () => {
  await withKeyFile(async (file) => {
    const jwks = await publicJwks(file);
    assert.equal(jwks.keys.length, 1);
    const [jwk] = jwks.keys;
    assert.ok(jwk);
    assert.deepEqual(Object.keys(jwk).sort(), ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert.equal("d" in jwk, false);
    assert.ok(!JSON.stringify(jwks).includes('"d"'));
    jwk.kid = "mutated";
    assert.notEqual((await publicJwks(file)).keys[0]?.kid, "mutated", "returns a copy");
  });
});

Deno.test("minted token verifies against the JWKS with Supabase's claims", async () => {
  await withKeyFile(async (file) => {
    const before = Math.floor(Date.now() / 1000);
    const token = await mintAccessToken({
      userId: USER_ID,
      email: "someone@test.local",
      issuer: ISSUER,
      keyFile: file,
      ttlSeconds: 600,
    });
    const header = decodeProtectedHeader(token);
    const { kid } = await loadOrCreateSigningKey(file);
    assert.deepEqual(header, { alg: "ES256", kid, typ: "JWT" });

    const jwks = createLocalJWKSet(await publicJwks(file));
    const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: "authenticated" });
    assert.equal(payload.sub, USER_ID);
    assert.equal(payload.email, "someone@test.local");
    assert.equal(payload.phone, "");
    assert.equal(payload.role, "authenticated");
    assert.equal(payload.aal, "aal1");
    assert.equal(payload.is_anonymous, false);
    assert.deepEqual(payload.app_metadata, { provider: "email", providers: ["email"] });
    assert.deepEqual(payload.user_metadata, {});
    assert.match(String(payload.session_id), /^[0-9a-f-]{36}$/);
    const iat = payload.iat ?? 0;
    assert.ok(iat >= before && iat <= before + 5);
    assert.equal(payload.exp, iat + 600);
    assert.deepEqual(payload.amr, [{ method: "password", timestamp: iat }]);
  });
});

Deno.test("issuer defaults to SUPABASE_URL/auth/v1; options are honoured", async () => {
  await withKeyFile(async (file) => {
    const previous = Deno.env.get("SUPABASE_URL");
    Deno.env.set("SUPABASE_URL", "http://127.0.0.1:54321/");
    try {
      const token = await mintAccessToken({
        userId: USER_ID,
        email: "x@test.local",
        keyFile: file,
        role: "service_role",
        sessionId: "11111111-2222-4333-8444-555555555555",
        extraClaims: { aal: "aal2" },
      });
      const jwks = createLocalJWKSet(await publicJwks(file));
      const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER });
      assert.equal(payload.role, "service_role");
      assert.equal(payload.session_id, "11111111-2222-4333-8444-555555555555");
      assert.equal(payload.aal, "aal2");
      assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);
    } finally {
      if (previous === undefined) Deno.env.delete("SUPABASE_URL");
      else Deno.env.set("SUPABASE_URL", previous);
    }
  });
});

Deno.test("negative ttl gives an expired token", async () => {
  await withKeyFile(async (file) => {
    const token = await mintAccessToken({
      userId: USER_ID,
      email: "old@test.local",
      issuer: ISSUER,
      keyFile: file,
      ttlSeconds: -60,
    });
    const jwks = createLocalJWKSet(await publicJwks(file));
    await assert.rejects(
      jwtVerify(token, jwks, { issuer: ISSUER, audience: "authenticated" }),
      (error: unknown) => {
        assert.ok(error instanceof errors.JWTExpired);
        assert.equal(error.code, "ERR_JWT_EXPIRED");
        return true;
      },
    );
  });
});

Deno.test("a token signed by another key does not verify", async () => {
  await withKeyFile(async (file) => {
    const other = file.replace("signing-key.json", "other-key.json");
    const token = await mintAccessToken({
      userId: USER_ID,
      email: "x@test.local",
      issuer: ISSUER,
      keyFile: other,
    });
    const jwks = createLocalJWKSet(await publicJwks(file));
    await assert.rejects(jwtVerify(token, jwks, { issuer: ISSUER }));
  });
});
