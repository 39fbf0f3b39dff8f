/**
 * JWT attacks beyond the shared matrix (tests/_matrix.ts runs its cases on every route; these
 * are the rest of issue 5 §1, each against `GET /api/me` with its exact status and code):
 * `alg: none` in every other casing, null and zero signatures (CVE-2022-21449), HS256 and
 * friends keyed with every public form of the ES256 key, embedded `jwk` / `jku` / `x5u` / `x5c`
 * headers (the `jku` / `x5u` URLs point at a server of this test that counts its hits: none
 * allowed), `kid` injection, wrong-length and DER signatures, one flipped bit anywhere,
 * non-canonical base64url, odd `exp` / `iat` / `iss` / `aud` / `role` values, 1, 3-with-empty
 * and 5 segments, non-JSON headers and the 8 KiB length boundary.
 *
 * The flood of unknown `kid`s runs against a dev server of its own (port 54362) whose
 * `SUPABASE_JWKS_URL` points at a JWKS server of this test, with a 30 s refetch cooldown: 200
 * tokens with unknown kids cause at most one refetch.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import {
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  type JWK,
  SignJWT,
} from "jose";
import { loadOrCreateSigningKey, type SigningKey } from "../tools/local_auth.ts";
import { claimsOf } from "./_matrix.ts";
import { mintTokenFor } from "../tools/admin/ops.ts";
import { type DevServer, freePort, stackEnv, startDevServer } from "./_support/dev_server.ts";
import { api, type ApiResponse, assertCommonHeaders, BASE_URL, e2e, uniqueIp } from "./_harness.ts";
import { closeDb, db, newUser, type TestUser, uniqueEmail } from "./_fixtures.ts";

// --- expectations ----------------------------------------------------------------------------

interface Expectation {
  status: number;
  code: string;
  /** The `error="…"` of the Bearer challenge; undefined for a 200. */
  bearerError?: string;
}

const OK: Expectation = { status: 200, code: "" };
const INVALID: Expectation = {
  status: 401,
  code: "INVALID_AUTH_TOKEN",
  bearerError: "invalid_token",
};
const MALFORMED: Expectation = {
  status: 401,
  code: "INVALID_AUTH_TOKEN",
  bearerError: "invalid_request",
};
const EXPIRED: Expectation = { status: 419, code: "TOKEN_EXPIRED", bearerError: "invalid_token" };
const FORBIDDEN: Expectation = {
  status: 403,
  code: "FORBIDDEN",
  bearerError: "insufficient_scope",
};

const BODY: Record<number, { error: string; message: string }> = {
  401: { error: "Unauthorized", message: "Invalid or missing authentication token" },
  403: { error: "Forbidden", message: "Valid token but insufficient permissions" },
  419: { error: "Token Expired", message: "JWT token has expired, refresh required" },
};

function assertAnswer(r: ApiResponse, expect: Expectation, token: string, name: string): void {
  const where = `${name}: ${r.status} ${r.text.slice(0, 300)}`;
  assert.equal(r.status, expect.status, where);
  assertCommonHeaders(r);
  assert.ok(!r.text.includes(token), `token echoed in the body: ${name}`);
  for (const [h, v] of r.headers) assert.ok(!v.includes(token), `token echoed in ${h}: ${name}`);
  if (expect.status === 200) {
    assert.equal(typeof r.body?.id, "string", where);
    return;
  }
  assert.equal(r.headers.get("content-type"), "application/json", where);
  assert.equal(r.body?.code, expect.code, where);
  assert.equal(r.body?.statusCode, expect.status, where);
  assert.equal(r.body?.request_id, r.headers.get("x-request-id"), where);
  const documented = BODY[expect.status];
  if (documented) {
    assert.equal(r.body?.error, documented.error, where);
    assert.equal(r.body?.message, documented.message, where);
  }
  if (expect.bearerError === undefined) return;
  const challenge = r.headers.get("www-authenticate") ?? "";
  assert.match(challenge, /^Bearer realm="torvus"/, `WWW-Authenticate: ${where}`);
  assert.ok(challenge.includes(`error="${expect.bearerError}"`), `${challenge}: ${where}`);
}

// --- token forging ---------------------------------------------------------------------------

const encoder = new TextEncoder();
const b64json = (value: unknown) => base64url.encode(JSON.stringify(value));
const now = () => Math.floor(Date.now() / 1000);

interface Fixtures {
  user: TestUser;
  signing: SigningKey;
  issuer: string;
  attacker: { privateKey: CryptoKey; publicJwk: JWK };
  p384: { privateKey: CryptoKey };
  rsa: { privateKey: CryptoKey };
  ed: { privateKey: CryptoKey };
  publicPem: string;
  publicDer: Uint8Array;
  /** The JWKS document exactly as the dev server serves it. */
  jwksText: string;
  attackServer: AttackServer;
}

/** A server on a random port: serves the attacker's JWKS and counts every request. */
interface AttackServer {
  url: string;
  hits: number;
  close(): Promise<void>;
}

function startAttackServer(publicJwk: JWK): AttackServer {
  const state = { hits: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    state.hits++;
    return Response.json({ keys: [{ ...publicJwk, kid: "attacker", alg: "ES256", use: "sig" }] });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get hits() {
      return state.hits;
    },
    close: () => server.shutdown(),
  };
}

let fixturesPromise: Promise<Fixtures> | undefined;
const fixtures = () => (fixturesPromise ??= makeFixtures());

async function makeFixtures(): Promise<Fixtures> {
  const signing = await loadOrCreateSigningKey();
  const user = await newUser();
  const issuer = `${(Deno.env.get("SUPABASE_URL") ?? BASE_URL).replace(/\/+$/, "")}/auth/v1`;
  const attacker = await generateKeyPair("ES256", { extractable: true });
  const p384 = await generateKeyPair("ES384");
  const rsa = await generateKeyPair("PS256");
  const ed = await generateKeyPair("EdDSA");
  const publicKey = await importJWK(signing.publicJwk, "ES256");
  if (publicKey instanceof Uint8Array) throw new Error("unexpected symmetric key");
  const publicPem = await exportSPKI(publicKey);
  const publicDer = new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
  const jwksText = await (await fetch(new URL("/auth/v1/.well-known/jwks.json", BASE_URL))).text();
  const attackerJwk = await exportJWK(attacker.publicKey);
  return {
    user,
    signing,
    issuer,
    attacker: { privateKey: attacker.privateKey, publicJwk: attackerJwk },
    p384: { privateKey: p384.privateKey },
    rsa: { privateKey: rsa.privateKey },
    ed: { privateKey: ed.privateKey },
    publicPem,
    publicDer,
    jwksText,
    attackServer: startAttackServer(attackerJwk),
  };
}

/** Supabase-shaped claims for the fixture user (the matrix's), issued by the fixture issuer. */
function claims(f: Fixtures, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return claimsOf({ issuer: f.issuer, now: Date.now, user: f.user }, overrides);
}

const trustedHeader = (f: Fixtures) => ({ alg: "ES256", kid: f.signing.kid, typ: "JWT" });

/** ES256 over raw header and payload text (any bytes, JSON or not). */
async function signEs256Raw(key: CryptoKey, headerText: string, payloadText: string) {
  const input = `${base64url.encode(headerText)}.${base64url.encode(payloadText)}`;
  const sig = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    encoder.encode(input),
  );
  return `${input}.${base64url.encode(new Uint8Array(sig))}`;
}

/** A token signed by the trusted key with this header and these claims. */
function trusted(f: Fixtures, overrides: Record<string, unknown> = {}, header?: object) {
  return signEs256Raw(
    f.signing.privateKey,
    JSON.stringify(header ?? trustedHeader(f)),
    JSON.stringify(claims(f, overrides)),
  );
}

/** A token the attacker signed with their own key: this header over the fixture user's claims. */
function byAttacker(f: Fixtures, header: object) {
  return signEs256Raw(f.attacker.privateKey, JSON.stringify(header), JSON.stringify(claims(f)));
}

/** HMAC-SHA-2 over header.payload with an arbitrary (even empty) secret. */
function hmacToken(
  alg: "HS256" | "HS384" | "HS512",
  secret: Uint8Array,
  header: object,
  payload: object,
) {
  const input = `${b64json(header)}.${b64json(payload)}`;
  const hash = { HS256: "sha256", HS384: "sha384", HS512: "sha512" }[alg];
  const mac = createHmac(hash, Buffer.from(secret)).update(input).digest();
  return `${input}.${base64url.encode(new Uint8Array(mac))}`;
}

function split(token: string): [string, string, string] {
  const [h, p, s] = token.split(".");
  if (h === undefined || p === undefined || s === undefined) throw new Error("not a JWS");
  return [h, p, s];
}

function flipBit(segment: string, byteIndex: number, bit = 0): string {
  const bytes = base64url.decode(segment);
  const i = byteIndex < 0 ? bytes.length + byteIndex : byteIndex;
  bytes[i] = bytes[i]! ^ (1 << bit);
  return base64url.encode(bytes);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** The same bytes with the unused low bits of the last character set (non-canonical). */
function setTrailingBits(segment: string): string {
  const spare = [0, 0, 4, 2][segment.length % 4]!; // unused bits of the last character
  if (spare === 0) throw new Error("segment has no spare bits");
  const last = ALPHABET.indexOf(segment.at(-1)!);
  return segment.slice(0, -1) + ALPHABET[last | ((1 << spare) - 1)];
}

/** IEEE P1363 (r || s) to an ASN.1 DER ECDSA-Sig-Value. */
function toDer(raw: Uint8Array): Uint8Array {
  const int = (bytes: Uint8Array) => {
    let b = [...bytes];
    while (b.length > 1 && b[0] === 0 && b[1]! < 0x80) b = b.slice(1);
    if (b[0]! >= 0x80) b = [0, ...b];
    return [0x02, b.length, ...b];
  };
  const body = [...int(raw.subarray(0, 32)), ...int(raw.subarray(32))];
  return new Uint8Array([0x30, body.length, ...body]);
}

/** The P-256 group order n, big-endian. */
const P256_N = Uint8Array.from(
  Buffer.from("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", "hex"),
);

/** Replaces the signature of a trusted token. */
async function withSignature(f: Fixtures, signature: Uint8Array | string): Promise<string> {
  const [h, p] = split(await trusted(f));
  const s = typeof signature === "string" ? signature : base64url.encode(signature);
  return `${h}.${p}.${s}`;
}

/** A validly signed token of about `target` characters (claims padded). */
async function tokenOfLength(f: Fixtures, target: number): Promise<string> {
  let pad = Math.max(0, Math.floor(((target - 400) * 3) / 4));
  for (let i = 0; i < 400; i++) {
    const token = await trusted(f, { pad: "x".repeat(pad) });
    if (token.length >= target - 3 && token.length <= target) return token;
    pad += token.length < target ? 1 : -1;
  }
  throw new Error(`no token of length ~${target}`);
}

// --- cases -----------------------------------------------------------------------------------

interface Case {
  name: string;
  expect: Expectation;
  /** The Authorization header value (defaults to `Bearer <token>`). */
  token: (f: Fixtures) => Promise<string> | string;
  raw?: boolean;
}

const c = (
  name: string,
  expect: Expectation,
  token: Case["token"],
  extra: Partial<Case> = {},
): Case => ({ name, expect, token, ...extra });

/** Every casing of "none" the matrix does not already send (it sends none/None/NONE/nOnE). */
const NONE_CASINGS = Array.from(
  { length: 16 },
  (_, mask) => [..."none"].map((ch, i) => (mask & (1 << i)) ? ch.toUpperCase() : ch).join(""),
).filter((alg) => !["none", "None", "NONE", "nOnE"].includes(alg));

const CASES: Case[] = [
  // alg none, null and zero signatures (CVE-2022-21449).
  ...NONE_CASINGS.map((alg) =>
    c(
      `alg "${alg}", empty signature`,
      INVALID,
      (f) => `${b64json({ alg, typ: "JWT" })}.${b64json(claims(f))}.`,
    )
  ),
  c(
    "alg missing, empty signature",
    INVALID,
    (f) => `${b64json({ typ: "JWT" })}.${b64json(claims(f))}.`,
  ),
  c('alg "", empty signature', INVALID, (f) => `${b64json({ alg: "" })}.${b64json(claims(f))}.`),
  c("alg null, genuine signature", INVALID, async (f) => {
    const [, p, s] = split(await trusted(f));
    return `${b64json({ alg: null, kid: f.signing.kid })}.${p}.${s}`;
  }),
  c(
    'alg "none" with kid of the trusted key and signature "null"',
    INVALID,
    (f) =>
      `${b64json({ alg: "none", kid: f.signing.kid })}.${b64json(claims(f))}.${
        base64url.encode("null")
      }`,
  ),
  c(
    "ES256 signature of 64 zero bytes (r = s = 0, CVE-2022-21449)",
    INVALID,
    (f) => withSignature(f, new Uint8Array(64)),
  ),
  c(
    "ES256 signature r = s = n (the group order)",
    INVALID,
    (f) => withSignature(f, new Uint8Array([...P256_N, ...P256_N])),
  ),
  c("ES256 signature r = 0, s = genuine s", INVALID, async (f) => {
    const sig = base64url.decode(split(await trusted(f))[2]);
    sig.fill(0, 0, 32);
    return withSignature(f, sig);
  }),
  c("ES256 signature of one zero byte", INVALID, (f) => withSignature(f, new Uint8Array(1))),
  // Wrong-length and DER signatures.
  c(
    "genuine signature truncated to 63 bytes",
    INVALID,
    async (f) => withSignature(f, base64url.decode(split(await trusted(f))[2]).subarray(0, 63)),
  ),
  c(
    "genuine signature with a 65th byte",
    INVALID,
    async (f) =>
      withSignature(f, new Uint8Array([...base64url.decode(split(await trusted(f))[2]), 0])),
  ),
  c("genuine signature twice (128 bytes)", INVALID, async (f) => {
    const s = base64url.decode(split(await trusted(f))[2]);
    return withSignature(f, new Uint8Array([...s, ...s]));
  }),
  c(
    "genuine signature, first half only (32 bytes)",
    INVALID,
    async (f) => withSignature(f, base64url.decode(split(await trusted(f))[2]).subarray(0, 32)),
  ),
  c("genuine signature DER-encoded", INVALID, async (f) => {
    const token = await trusted(f);
    const [h, p, s] = split(token);
    return `${h}.${p}.${base64url.encode(toDer(base64url.decode(s)))}`;
  }),
  // Algorithm confusion: HMAC keyed with public forms of the trusted key.
  c(
    "HS256 keyed with the JWKS document as served",
    INVALID,
    (f) =>
      hmacToken(
        "HS256",
        encoder.encode(f.jwksText),
        { alg: "HS256", kid: f.signing.kid },
        claims(f),
      ),
  ),
  c(
    "HS256 keyed with the PEM without its final newline",
    INVALID,
    (f) => hmacToken("HS256", encoder.encode(f.publicPem.trimEnd()), { alg: "HS256" }, claims(f)),
  ),
  c(
    "HS256 keyed with the SPKI DER bytes",
    INVALID,
    (f) => hmacToken("HS256", f.publicDer, { alg: "HS256", kid: f.signing.kid }, claims(f)),
  ),
  c(
    "HS256 keyed with the x coordinate (base64url text)",
    INVALID,
    (f) => hmacToken("HS256", encoder.encode(f.signing.publicJwk.x!), { alg: "HS256" }, claims(f)),
  ),
  c(
    "HS256 keyed with the kid",
    INVALID,
    (f) =>
      hmacToken(
        "HS256",
        encoder.encode(f.signing.kid),
        { alg: "HS256", kid: f.signing.kid },
        claims(f),
      ),
  ),
  c(
    "HS256 with an empty secret",
    INVALID,
    (f) => hmacToken("HS256", new Uint8Array(), { alg: "HS256" }, claims(f)),
  ),
  c(
    "HS384 keyed with the PEM",
    INVALID,
    (f) => hmacToken("HS384", encoder.encode(f.publicPem), { alg: "HS384" }, claims(f)),
  ),
  c(
    "HS512 keyed with the PEM",
    INVALID,
    (f) => hmacToken("HS512", encoder.encode(f.publicPem), { alg: "HS512" }, claims(f)),
  ),
  // Other algorithms and keys.
  c(
    "ES384 signature by a P-384 key, trusted kid",
    INVALID,
    async (f) =>
      await new SignJWT(claims(f)).setProtectedHeader({ alg: "ES384", kid: f.signing.kid })
        .sign(f.p384.privateKey),
  ),
  c("ES256 header over an ES384 signature", INVALID, async (f) => {
    const t = await new SignJWT(claims(f)).setProtectedHeader({ alg: "ES384", kid: f.signing.kid })
      .sign(f.p384.privateKey);
    const [, p, s] = split(t);
    return `${b64json(trustedHeader(f))}.${p}.${s}`;
  }),
  c(
    "PS256 by an attacker's RSA key, trusted kid",
    INVALID,
    async (f) =>
      await new SignJWT(claims(f)).setProtectedHeader({ alg: "PS256", kid: f.signing.kid })
        .sign(f.rsa.privateKey),
  ),
  c(
    "EdDSA by an attacker's key",
    INVALID,
    async (f) =>
      await new SignJWT(claims(f)).setProtectedHeader({ alg: "EdDSA", kid: f.signing.kid })
        .sign(f.ed.privateKey),
  ),
  // Embedded keys and key URLs: the server must never take a key from the token.
  c(
    "attacker key embedded as jwk, with the trusted kid",
    INVALID,
    (f) => byAttacker(f, { alg: "ES256", kid: f.signing.kid, jwk: f.attacker.publicJwk }),
  ),
  c(
    "jku pointing at the attacker's JWKS",
    INVALID,
    (f) => byAttacker(f, { alg: "ES256", kid: "attacker", jku: `${f.attackServer.url}/jwks.json` }),
  ),
  c("jku + embedded jwk + trusted kid", INVALID, (f) =>
    byAttacker(f, {
      alg: "ES256",
      kid: f.signing.kid,
      jku: `${f.attackServer.url}/.well-known/jwks.json`,
      jwk: f.attacker.publicJwk,
    })),
  c(
    "x5u pointing at the attacker's server",
    INVALID,
    (f) => byAttacker(f, { alg: "ES256", kid: "attacker", x5u: `${f.attackServer.url}/cert.pem` }),
  ),
  c(
    "x5c with a made-up certificate chain",
    INVALID,
    (f) => byAttacker(f, { alg: "ES256", x5c: [Buffer.from(f.publicDer).toString("base64")] }),
  ),
  // kid injection, signed by the attacker and (kid not in the JWKS) by the trusted key.
  ...[
    ["path traversal", "../../../../../../etc/passwd"],
    ["path to /dev/null", "../../../../dev/null"],
    ["SQL injection", "' OR 1=1 --"],
    ["SQL union", "x' UNION SELECT 'secret' --"],
    ["command injection", "key|cat /etc/passwd"],
    ["empty", ""],
    ["NUL byte", "\u0000"],
    ["URL", "http://127.0.0.1:1/jwks.json"],
    ["5,000 characters", "k".repeat(5000)],
  ].flatMap(([label, kid]) => [
    c(`kid ${label}, attacker's signature`, INVALID, (f) => byAttacker(f, { alg: "ES256", kid })),
    c(
      `kid ${label}, trusted key's signature`,
      INVALID,
      (f) => trusted(f, {}, { alg: "ES256", kid, typ: "JWT" }),
    ),
  ]),
  c(
    "kid a number, attacker's signature",
    INVALID,
    (f) => byAttacker(f, { alg: "ES256", kid: 0 }),
  ),
  c(
    "kid an object, attacker's signature",
    INVALID,
    (f) => byAttacker(f, { alg: "ES256", kid: { $ne: null } }),
  ),
  // One flipped bit.
  c("one bit flipped in the header", INVALID, async (f) => {
    const [h, p, s] = split(await trusted(f));
    return `${flipBit(h, 5, 1)}.${p}.${s}`;
  }),
  c("one bit flipped in the payload (inside the email)", INVALID, async (f) => {
    const [h, p, s] = split(await trusted(f));
    const text = new TextDecoder().decode(base64url.decode(p));
    return `${h}.${flipBit(p, text.indexOf("@") + 2, 0)}.${s}`;
  }),
  c("one bit flipped in the last signature byte", INVALID, async (f) => {
    const [h, p, s] = split(await trusted(f));
    return `${h}.${p}.${flipBit(s, -1, 7)}`;
  }),
  c("one bit flipped in the first signature byte", INVALID, async (f) => {
    const [h, p, s] = split(await trusted(f));
    return `${h}.${p}.${flipBit(s, 0, 3)}`;
  }),
  // Non-canonical base64url.
  // A lenient decoder maps a signature whose last character has its unused low bits set to the
  // genuine 64 bytes: one token would have several spellings, defeating string-keyed deny-lists
  // and the verified-token cache. auth/jwt.ts refuses segments that do not re-encode to
  // themselves.
  c("signature with trailing bits set (same bytes, non-canonical)", INVALID, async (f) => {
    const [h, p, s] = split(await trusted(f));
    return `${h}.${p}.${setTrailingBits(s)}`;
  }),
  c("payload with trailing bits set", INVALID, async (f) => {
    // Pad the claims until the payload segment has spare bits.
    for (let i = 0; i < 3; i++) {
      const [h, p, s] = split(await trusted(f, { x: "y".repeat(i) }));
      if (p.length % 4 !== 0) return `${h}.${setTrailingBits(p)}.${s}`;
    }
    throw new Error("unreachable");
  }),
  c("header with trailing bits set", INVALID, async (f) => {
    for (let i = 0; i < 3; i++) {
      const header = { ...trustedHeader(f), x: "y".repeat(i) };
      const [h, p, s] = split(await trusted(f, {}, header));
      if (h.length % 4 !== 0) return `${setTrailingBits(h)}.${p}.${s}`;
    }
    throw new Error("unreachable");
  }),
  c("'=' padding after the signature", INVALID, async (f) => `${await trusted(f)}==`),
  c("'=' padding inside the header segment", MALFORMED, async (f) => {
    const [h, p, s] = split(await trusted(f));
    return `${h}=.${p}.${s}`;
  }),
  c("standard base64 alphabet (+ and /)", INVALID, async (f) => {
    for (let i = 0; i < 40; i++) {
      const t = await trusted(f, { n: i });
      if (/[-_]/.test(t)) return t.replace(/-/g, "+").replace(/_/g, "/");
    }
    throw new Error("no token with - or _");
  }),
  c("base64 with whitespace inside", MALFORMED, async (f) => {
    const t = await trusted(f);
    return `${t.slice(0, 30)} ${t.slice(30)}`;
  }),
  // Claims.
  c("exp 0", EXPIRED, (f) => trusted(f, { exp: 0, iat: 0 })),
  c("exp -1", EXPIRED, (f) => trusted(f, { exp: -1, iat: 0 })),
  c("exp 1e400 (Infinity once parsed)", INVALID, async (f) => {
    const payload = JSON.stringify(claims(f)).replace(/"exp":\d+/, '"exp":1e400');
    return await signEs256Raw(f.signing.privateKey, JSON.stringify(trustedHeader(f)), payload);
  }),
  c("exp null", INVALID, (f) => trusted(f, { exp: null })),
  c("exp as an array", INVALID, (f) => trusted(f, { exp: [now() + 3600] })),
  c("exp as a numeric string in the past", INVALID, (f) => trusted(f, { exp: "1" })),
  // RFC 7519 §4.1.6 makes iat the issue time; one more than 30 s ahead means a forged or
  // mis-minted token (jose checks iat only with maxTokenAge, so auth/jwt.ts does).
  c("iat ten minutes ahead", INVALID, (f) => trusted(f, { iat: now() + 600 })),
  c(
    "iat a day ahead, exp after it",
    INVALID,
    (f) => trusted(f, { iat: now() + 86_400, exp: now() + 90_000 }),
  ),
  c("iat as a string", INVALID, (f) => trusted(f, { iat: String(now()) })),
  c("nbf a day ahead", INVALID, (f) => trusted(f, { nbf: now() + 86_400 })),
  c("nbf as a string", INVALID, (f) => trusted(f, { nbf: "0" })),
  c("iss in upper case", INVALID, (f) => trusted(f, { iss: f.issuer.toUpperCase() })),
  c(
    "iss of another port",
    INVALID,
    (f) => trusted(f, { iss: f.issuer.replace(/:(\d+)\//, (_, port) => `:${Number(port) + 1}/`) }),
  ),
  c("iss as an array holding the right issuer", INVALID, (f) => trusted(f, { iss: [f.issuer] })),
  c("iss missing", INVALID, (f) => trusted(f, { iss: undefined })),
  c("aud in another case", INVALID, (f) => trusted(f, { aud: "Authenticated" })),
  c("aud service_role", INVALID, (f) => trusted(f, { aud: "service_role" })),
  c(
    "aud as an array holding authenticated (RFC 7519 allows it)",
    OK,
    (f) => trusted(f, { aud: ["other", "authenticated"] }),
  ),
  c("role missing", FORBIDDEN, (f) => trusted(f, { role: undefined })),
  c("role Authenticated (case)", FORBIDDEN, (f) => trusted(f, { role: "Authenticated" })),
  c("role supabase_admin", FORBIDDEN, (f) => trusted(f, { role: "supabase_admin" })),
  c("role as an array", FORBIDDEN, (f) => trusted(f, { role: ["authenticated"] })),
  c(
    "sub of nobody (a random UUID)",
    { status: 404, code: "NOT_FOUND" },
    (f) => trusted(f, { sub: crypto.randomUUID() }),
  ),
  // Structure.
  c("one segment", INVALID, async (f) => split(await trusted(f))[0]),
  c("three segments, empty payload", INVALID, async (f) => {
    const [h, , s] = split(await trusted(f));
    return `${h}..${s}`;
  }),
  c("five segments (JWE shape)", INVALID, async (f) => `${await trusted(f)}.AAAA.BBBB`),
  c("only dots", INVALID, () => ".."),
  c(
    "header not JSON",
    INVALID,
    (f) => signEs256Raw(f.signing.privateKey, "not json", JSON.stringify(claims(f))),
  ),
  c(
    "header a JSON array",
    INVALID,
    (f) => signEs256Raw(f.signing.privateKey, '["ES256"]', JSON.stringify(claims(f))),
  ),
  c(
    "header null",
    INVALID,
    (f) => signEs256Raw(f.signing.privateKey, "null", JSON.stringify(claims(f))),
  ),
  c(
    "payload not JSON",
    INVALID,
    (f) => signEs256Raw(f.signing.privateKey, JSON.stringify(trustedHeader(f)), "hello"),
  ),
  c(
    "payload a JSON array",
    INVALID,
    (f) => signEs256Raw(f.signing.privateKey, JSON.stringify(trustedHeader(f)), "[1]"),
  ),
  c("crit b64 false (unencoded payload)", INVALID, (f) =>
    signEs256Raw(
      f.signing.privateKey,
      JSON.stringify({ ...trustedHeader(f), b64: false, crit: ["b64"] }),
      JSON.stringify(claims(f)),
    )),
  // Length boundary (MAX_TOKEN_LENGTH = 8192 characters).
  c("validly signed token of 8,189-8,192 characters", OK, (f) => tokenOfLength(f, 8192)),
  c("validly signed token of 8,193-8,196 characters", INVALID, (f) => tokenOfLength(f, 8196)),
];

// --- tests -----------------------------------------------------------------------------------

console.log(`jwt attacks: ${CASES.length} cases`);

for (const k of CASES) {
  e2e(
    `jwt attack: ${k.name} -> ${k.expect.status}${k.expect.code ? ` ${k.expect.code}` : ""}`,
    async () => {
      const f = await fixtures();
      const token = await k.token(f);
      const r = await api("/api/me", {
        headers: { authorization: `Bearer ${token}` },
        ip: uniqueIp(),
      });
      assertAnswer(r, k.expect, token, k.name);
    },
  );
}

e2e("jwt attack: the jku / x5u URLs of the tokens were never fetched", async () => {
  const f = await fixtures();
  assert.equal(f.attackServer.hits, 0, "the server fetched a URL named by a token");
  await f.attackServer.close();
});

// --- flood of unknown kids -------------------------------------------------------------------

/** A JWKS server of our own: serves the trusted public key and counts its hits. */
function startJwksServer(jwk: JWK) {
  const state = { hits: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname !== "/jwks.json") {
      return new Response("not found", { status: 404 });
    }
    state.hits++;
    return Response.json({ keys: [jwk] }, { headers: { "Cache-Control": "public, max-age=600" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/jwks.json`, state, server };
}

e2e(
  "jwt attack: a flood of 200 unknown kids refetches the JWKS at most once (cooldown)",
  async () => {
    const f = await fixtures();
    const jwks = startJwksServer(f.signing.publicJwk);
    const stack = stackEnv();
    let server: DevServer | undefined;
    try {
      let port = 54362;
      try {
        Deno.listen({ hostname: "127.0.0.1", port }).close();
      } catch {
        port = freePort(); // 54362 taken (another run?): any free port does
      }
      server = await startDevServer({
        port,
        dbUrl: stack.dbUrl,
        redisUrl: stack.redisUrl,
        redisToken: stack.redisToken,
        redisPrefix: stack.redisPrefix,
        keyFile: stack.keyFile,
        logName: "jwks-flood",
        extraEnv: { SUPABASE_JWKS_URL: jwks.url, TORVUS_JWKS_COOLDOWN_MS: "30000" },
      });
      const mint = async () =>
        (await mintTokenFor(db(), uniqueEmail("flood"), 3600, {
          issuer: server!.issuer,
          ...(stack.keyFile ? { keyFile: stack.keyFile } : {}),
        })).token;
      const call = async (token: string) => {
        const started = performance.now();
        const res = await fetch(`${server!.url}/api/me`, {
          headers: { authorization: `Bearer ${token}`, "x-forwarded-for": uniqueIp() },
        });
        const body = await res.json();
        return {
          status: res.status,
          code: body?.code as string | undefined,
          ms: performance.now() - started,
        };
      };

      const first = await call(await mint());
      assert.equal(first.status, 200, "a valid token verifies");
      assert.equal(jwks.state.hits, 1, "one JWKS fetch for the first token");

      const floodClaims = (sub: string) => ({
        iss: server!.issuer,
        sub,
        aud: "authenticated",
        exp: now() + 3600,
        role: "authenticated",
      });
      const tokens: string[] = [];
      for (let i = 0; i < 200; i++) {
        const kid = `unknown-${crypto.randomUUID()}`;
        const key = i % 2 === 0 ? f.attacker.privateKey : f.signing.privateKey;
        tokens.push(
          await signEs256Raw(
            key,
            JSON.stringify({ alg: "ES256", kid }),
            JSON.stringify(floodClaims(f.user.userId)),
          ),
        );
      }
      const started = performance.now();
      const results = [];
      for (let i = 0; i < tokens.length; i += 25) {
        results.push(...await Promise.all(tokens.slice(i, i + 25).map(call)));
      }
      const elapsed = performance.now() - started;
      for (const r of results) {
        assert.equal(r.status, 401);
        assert.equal(r.code, "INVALID_AUTH_TOKEN");
      }
      const slowest = Math.max(...results.map((r) => r.ms));
      console.log(
        `jwks flood: 200 unknown kids in ${elapsed.toFixed(0)} ms (slowest ${
          slowest.toFixed(0)
        } ms), ` +
          `JWKS fetched ${jwks.state.hits} time(s) in all`,
      );
      assert.ok(
        jwks.state.hits <= 2,
        `JWKS fetched ${jwks.state.hits} times (bounded by the cooldown)`,
      );
      assert.ok(slowest < 2500, `no request waited on the JWKS: slowest ${slowest} ms`);

      const after = await call(await mint());
      assert.equal(after.status, 200, "valid tokens still verify after the flood");
      assert.ok(jwks.state.hits <= 2);
      assert.equal(server.exited, undefined, "the server is still running");
    } finally {
      await server?.stop();
      await jwks.server.shutdown();
      await closeDb();
    }
  },
);
