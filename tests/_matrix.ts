/**
 * The shared security matrix: every authenticated route, and the hostile credentials each kind
 * of route must refuse, with the exact answer the seed documents (or, where they are silent,
 * the error catalogue of `_shared/http/errors.ts`).
 *
 * - {@link AUTHENTICATED_ROUTES}: method, path, credential kind and (API-key routes) the scope.
 *   Append new routes here; a route with a `feature` is probed once at module load and its
 *   steps are ignored while the server answers its probe with 404 "Route not found".
 * - {@link JWT_CASES} and {@link KEY_CASES}: each builds what the client presents (headers,
 *   query) from shared {@link fixtures} and states the expected status, code, body fields and
 *   `WWW-Authenticate` challenge.
 *
 * `tests/security_matrix_test.ts` runs every case of a kind against every route of that kind.
 *
 * @module
 */
import { addressPolicy } from "../supabase/functions/_shared/http/ip.ts";
import { Buffer } from "node:buffer";
import {
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTHeaderParameters,
  SignJWT,
} from "jose";
import { generateApiKey } from "../supabase/functions/_shared/auth/key_format.ts";
import { defaultIssuer, loadOrCreateSigningKey, type SigningKey } from "../tools/local_auth.ts";
import { setKeyExpiry, setKeyStatus } from "../tools/admin/ops.ts";
import type { Services } from "../supabase/functions/_shared/services.ts";
import { api, db, newKey, newTier, newUser, type TestKey, type TestUser } from "./_harness.ts";

// --- client addresses ----------------------------------------------------------------------------

/**
 * A client address no other test, file or earlier run uses: a random address of the IPv6
 * documentation prefix 2001:db8::/32 (96 random bits).
 *
 * Why not `uniqueIp()` of the harness: its counter restarts in every test file (deno test loads
 * each file in its own worker) and carries one random bit, and the per-IP windows live in Redis
 * for an hour across runs (the stack does not flush them), so two files, or two runs within an
 * hour, get the same addresses. The matrix asserts exact `X-RateLimit-Remaining` values per
 * address, which needs an address nobody else has counted on.
 */
export function freshIp(): string {
  const words = crypto.getRandomValues(new Uint16Array(6));
  return `2001:db8:${[...words].map((w) => w.toString(16)).join(":")}`;
}

// --- routes --------------------------------------------------------------------------------------

/** The credential a route accepts. */
export type Credential = "jwt" | "api_key";
/** An API-key scope. */
export type Scope = "read" | "write" | "delete";
/** HTTP methods of the routes. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One authenticated route. */
export interface MatrixRoute {
  method: Method;
  /** Path as a client calls it, with an existing-looking id where the route has one. */
  path: string;
  credential: Credential;
  /** The scope an API key needs (API-key routes; none for `GET /api/v1/test`). */
  scope?: Scope;
  /** JSON body a valid request would send (so that a refusal is about credentials only). */
  body?: unknown;
  /** Statuses a valid credential gets; empty: anything but an auth refusal or a 5xx. */
  ok: readonly number[];
  /** A feature that may not be deployed yet; see {@link FEATURES}. */
  feature?: Feature;
}

/** Features whose routes come later; each is probed at module load. */
export type Feature = "api-keys";

/** A random UUID: looks like a vault id, names none. */
export const SOME_VAULT_ID = crypto.randomUUID();
/** A random ULID: looks like a key id, names none. */
export const SOME_KEY_ID = "01" + randomCrockford(24);

function randomCrockford(n: number): string {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  return [...crypto.getRandomValues(new Uint8Array(n))].map((b) => alphabet[b & 31]).join("");
}

const VAULT_BODY = { name: "matrix vault", tags: ["matrix"] };
const SCOPE_OF: Record<Method, Scope> = {
  GET: "read",
  POST: "write",
  PUT: "write",
  PATCH: "write",
  DELETE: "delete",
};

function vaultRoutes(base: string, credential: Credential): MatrixRoute[] {
  const scoped = (method: Method): { scope?: Scope } =>
    credential === "api_key" ? { scope: SCOPE_OF[method] } : {};
  const item = `${base}/${SOME_VAULT_ID}`;
  return [
    { method: "GET", path: base, credential, ok: [200], ...scoped("GET") },
    { method: "POST", path: base, credential, body: VAULT_BODY, ok: [201], ...scoped("POST") },
    { method: "GET", path: item, credential, ok: [404], ...scoped("GET") },
    { method: "PATCH", path: item, credential, body: { name: "x" }, ok: [404], ...scoped("PATCH") },
    { method: "DELETE", path: item, credential, ok: [404], ...scoped("DELETE") },
  ];
}

function keyRoutes(base: string): MatrixRoute[] {
  const item = `${base}/${SOME_KEY_ID}`;
  const r = (method: Method, path: string, body?: unknown): MatrixRoute => ({
    method,
    path,
    credential: "jwt",
    ok: [],
    feature: "api-keys",
    ...(body === undefined ? {} : { body }),
  });
  return [
    r("GET", base),
    r("POST", base, { name: "matrix key", mode: "test", scopes: ["read"] }),
    r("GET", item),
    r("POST", `${item}/revoke`, {}),
    r("POST", `${item}/roll`, {}),
  ];
}

/**
 * Every authenticated route, at its public gateway path and at Supabase's function path
 * (`/functions/v1/<name>/…`, what `supabase.functions.invoke` calls).
 */
export const AUTHENTICATED_ROUTES: readonly MatrixRoute[] = [
  // API key (v1)
  { method: "GET", path: "/api/v1/test", credential: "api_key", ok: [200] },
  { method: "GET", path: "/functions/v1/v1-test", credential: "api_key", ok: [200] },
  ...vaultRoutes("/api/v1/vaults", "api_key"),
  ...vaultRoutes("/functions/v1/vaults/v1", "api_key"),
  // JWT (platform)
  { method: "GET", path: "/api/me", credential: "jwt", ok: [200] },
  { method: "GET", path: "/functions/v1/me", credential: "jwt", ok: [200] },
  ...vaultRoutes("/api/vaults", "jwt"),
  ...vaultRoutes("/functions/v1/vaults", "jwt"),
  ...keyRoutes("/api/keys"),
  ...keyRoutes("/functions/v1/api-keys"),
];

/** A route's display name, e.g. `PATCH /api/vaults/{id}`. */
export function routeName(r: MatrixRoute): string {
  return `${r.method} ${r.path.replace(SOME_VAULT_ID, "{id}").replace(SOME_KEY_ID, "{id}")}`;
}

/** True when the server has the route's collection: anything but 404 "Route not found". */
async function probe(path: string): Promise<boolean> {
  const r = await api(path, { ip: freshIp() });
  return !(r.status === 404 && r.body?.message === "Route not found");
}

/** Which optional features the server under test has (probed once, at module load). */
export const FEATURES: Readonly<Record<Feature, boolean>> = {
  "api-keys": await probe("/api/keys"),
};

/** Whether the server under test has this route. */
export function available(r: MatrixRoute): boolean {
  return r.feature === undefined || FEATURES[r.feature];
}

/** Builds a request for a route: method, JSON body, extra headers and query. */
export function requestInit(
  r: MatrixRoute,
  ip: string,
  presented: Presented,
): { path: string; init: RequestInit & { ip: string } } {
  const headers = new Headers(presented.headers);
  if (r.body !== undefined) headers.set("content-type", "application/json");
  const init: RequestInit & { ip: string } = { method: r.method, headers, ip };
  if (r.body !== undefined) init.body = JSON.stringify(r.body);
  return { path: r.path + (presented.query ?? ""), init };
}

// --- fixtures ------------------------------------------------------------------------------------

/** What every case may build on: a user, signing keys, and keys in each state. */
export interface Fixtures {
  user: TestUser;
  /** A second user, whose id tampered tokens claim. */
  other: TestUser;
  /** The local Auth signing key (the one the server trusts). */
  signing: SigningKey;
  /** An attacker's ES256 key pair. */
  attacker: { privateKey: CryptoKey; publicJwk: JWK };
  /** An attacker's RSA key pair. */
  rsa: { privateKey: CryptoKey };
  /** The trusted public key as SPKI PEM. */
  publicPem: string;
  keys: {
    live: TestKey;
    test: TestKey;
    revoked: TestKey;
    suspended: TestKey;
    expiredStatus: TestKey;
    pastExpiry: TestKey;
    ipRestricted: TestKey;
  };
}

let fixturesPromise: Promise<Fixtures> | undefined;

/** The shared fixtures, made once per test file. */
export function fixtures(): Promise<Fixtures> {
  fixturesPromise ??= makeFixtures();
  return fixturesPromise;
}

async function makeFixtures(): Promise<Fixtures> {
  const signing = await loadOrCreateSigningKey();
  const [user, other] = await Promise.all([newUser(), newUser()]);
  const attackerPair = await generateKeyPair("ES256", { extractable: true });
  const rsaPair = await generateKeyPair("RS256");
  const publicKey = await importJWK(signing.publicJwk, "ES256");
  if (publicKey instanceof Uint8Array) throw new Error("unexpected symmetric key");
  const publicPem = await exportSPKI(publicKey);
  // Keys hit by many requests get a roomy tier of their own.
  const tier = await newTier(1000, 100_000);
  const all: Scope[] = ["read", "write", "delete"];
  const mk = (mode: "live" | "test", extra: Parameters<typeof newKey>[0] = {}) =>
    newKey({ mode, tier, scopes: all, ...extra });
  const [live, test, revoked, suspended, expiredStatus, pastExpiry, ipRestricted] = await Promise
    .all([
      mk("live"),
      mk("test"),
      mk("live"),
      mk("live"),
      mk("test"),
      mk("live"),
      mk("live", { ipAllowlist: ["203.0.113.0/24"] }),
    ]);
  await setKeyStatus(db(), revoked.id, "revoked");
  await setKeyStatus(db(), suspended.id, "suspended");
  await setKeyStatus(db(), expiredStatus.id, "expired");
  await setKeyExpiry(db(), pastExpiry.id, new Date(Date.now() - 60_000));
  return {
    user,
    other,
    signing,
    attacker: {
      privateKey: attackerPair.privateKey,
      publicJwk: await exportJWK(attackerPair.publicKey),
    },
    rsa: { privateKey: rsaPair.privateKey },
    publicPem,
    keys: { live, test, revoked, suspended, expiredStatus, pastExpiry, ipRestricted },
  };
}

// --- token forging -------------------------------------------------------------------------------

const encoder = new TextEncoder();
const b64 = (value: unknown) => base64url.encode(JSON.stringify(value));

/** Claims like Supabase Auth's for `user`, valid for an hour; `undefined` values are removed. */
export function claimsOf(
  user: TestUser,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const all: Record<string, unknown> = {
    iss: defaultIssuer(),
    sub: user.userId,
    aud: "authenticated",
    exp: now + 3600,
    iat: now,
    email: user.email,
    phone: "",
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    role: "authenticated",
    aal: "aal1",
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
}

/** Signs claims with a key and header of our choosing. */
export async function sign(
  key: CryptoKey | Uint8Array,
  header: JWTHeaderParameters,
  claims: Record<string, unknown>,
): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader(header).sign(key);
}

/** A token the server must accept: the trusted key, Supabase's header, these claim overrides. */
export async function trusted(f: Fixtures, overrides: Record<string, unknown> = {}) {
  return await sign(
    f.signing.privateKey,
    { alg: "ES256", kid: f.signing.kid, typ: "JWT" },
    claimsOf(f.user, overrides),
  );
}

/** Signs with ES256 by hand, for headers jose refuses to produce (unknown `crit`). */
async function signRaw(key: CryptoKey, header: unknown, payload: unknown): Promise<string> {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    encoder.encode(input),
  );
  return `${input}.${base64url.encode(new Uint8Array(signature))}`;
}

/** A compact token assembled by hand (no signing): `alg: none` and friends. */
function assemble(header: unknown, payload: unknown, signature = ""): string {
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

function splitToken(token: string): [string, string, string] {
  const [h, p, s] = token.split(".");
  if (h === undefined || p === undefined || s === undefined) throw new Error("not a JWS");
  return [h, p, s];
}

function flipBit(segment: string, byteIndex: number): string {
  const bytes = base64url.decode(segment);
  bytes[byteIndex] = bytes[byteIndex]! ^ 0x01;
  return base64url.encode(bytes);
}

function tamperPayload(token: string, change: Record<string, unknown>): string {
  const [h, p, s] = splitToken(token);
  const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
  return `${h}.${b64({ ...payload, ...change })}.${s}`;
}

// --- cases ---------------------------------------------------------------------------------------

/** What a client presents: headers, an optional query string, and the secrets in them. */
export interface Presented {
  headers: Record<string, string>;
  /** Appended to the path, starting with `?`. */
  query?: string;
  /** Credentials that must never come back in a response body or header. */
  secrets: string[];
}

/** The answer a case must get. */
export interface Expectation {
  status: number;
  code: string;
  /** The body's `error`. */
  error: string;
  /** The body's `message`, exactly. */
  message: string;
  /** JWT routes: the exact `WWW-Authenticate`, or the `error="…"` attribute it must carry. */
  challenge?: { exact: string } | { bearerError: string };
}

/** One hostile presentation of credentials. */
export interface HostileCase {
  name: string;
  /** The kind of route it runs against. */
  credential: Credential;
  build(f: Fixtures): Promise<Presented>;
  /**
   * A known bug of the implementation: the case states the documented behaviour and is
   * ignored until the bug is fixed (see the test report). Remove it with the fix.
   */
  bug?: string;
  /** Undefined for {@link transportRejected} cases. */
  expect?: Expectation;
  /**
   * The request is too large for the HTTP server itself (Deno's limit on header size is about
   * 64 KiB): it never reaches the API, so the answer is a bare 4xx without the API's headers.
   * The rule is only "4xx, never 5xx, never 2xx".
   */
  transportRejected?: boolean;
}

const JWT_401 = {
  status: 401,
  error: "Unauthorized",
  message: "Invalid or missing authentication token",
};
const MISSING_TOKEN: Expectation = {
  ...JWT_401,
  code: "MISSING_AUTH_TOKEN",
  challenge: { exact: 'Bearer realm="torvus"' },
};
const MALFORMED_HEADER: Expectation = {
  ...JWT_401,
  code: "INVALID_AUTH_TOKEN",
  challenge: { bearerError: "invalid_request" },
};
const INVALID_TOKEN: Expectation = {
  ...JWT_401,
  code: "INVALID_AUTH_TOKEN",
  challenge: { bearerError: "invalid_token" },
};
const EXPIRED: Expectation = {
  status: 419,
  error: "Token Expired",
  message: "JWT token has expired, refresh required",
  code: "TOKEN_EXPIRED",
  challenge: { bearerError: "invalid_token" },
};
const FORBIDDEN: Expectation = {
  status: 403,
  error: "Forbidden",
  message: "Valid token but insufficient permissions",
  code: "FORBIDDEN",
  challenge: { bearerError: "insufficient_scope" },
};

const bearer = (token: string): Presented => ({
  headers: { authorization: `Bearer ${token}` },
  secrets: [token],
});

function jwtCase(
  name: string,
  expect: Expectation,
  build: (f: Fixtures) => Promise<Presented> | Presented,
): HostileCase {
  return { name, credential: "jwt", expect, build: async (f) => await build(f) };
}

const ago = (s: number) => Math.floor(Date.now() / 1000) - s;
const ahead = (s: number) => Math.floor(Date.now() / 1000) + s;

/** Hostile bearer tokens, for every JWT route. */
export const JWT_CASES: readonly HostileCase[] = [
  jwtCase("no Authorization header", MISSING_TOKEN, () => ({ headers: {}, secrets: [] })),
  jwtCase("Basic credentials instead of Bearer", MISSING_TOKEN, () => ({
    headers: { authorization: `Basic ${btoa("user@example.com:hunter2-password")}` },
    secrets: [],
  })),
  jwtCase("valid token under the Basic scheme", MISSING_TOKEN, async (f) => {
    const token = await trusted(f);
    return { headers: { authorization: `Basic ${token}` }, secrets: [token] };
  }),
  jwtCase("valid token without a scheme", MISSING_TOKEN, async (f) => {
    const token = await trusted(f);
    return { headers: { authorization: token }, secrets: [token] };
  }),
  jwtCase("valid token only in the query (?access_token=)", MISSING_TOKEN, async (f) => {
    const token = await trusted(f);
    return { headers: {}, query: `?access_token=${token}`, secrets: [token] };
  }),
  jwtCase("valid token only in a cookie", MISSING_TOKEN, async (f) => {
    const token = await trusted(f);
    return { headers: { cookie: `sb-access-token=${token}` }, secrets: [token] };
  }),
  jwtCase("valid token only in X-API-Key", MISSING_TOKEN, async (f) => {
    const token = await trusted(f);
    return { headers: { "x-api-key": token }, secrets: [token] };
  }),
  // fetch trims header values, so "Bearer " and "Bearer    " both arrive as "Bearer".
  jwtCase("Bearer with an empty token", MALFORMED_HEADER, () => ({
    headers: { authorization: "Bearer " },
    secrets: [],
  })),
  jwtCase("Bearer with two space-separated tokens", MALFORMED_HEADER, async (f) => {
    const token = await trusted(f);
    return { headers: { authorization: `Bearer ${token} ${token}` }, secrets: [token] };
  }),
  jwtCase("two Authorization headers (joined by a comma)", MALFORMED_HEADER, async (f) => {
    const token = await trusted(f);
    const headers = new Headers();
    headers.append("authorization", `Bearer ${token}`);
    headers.append("authorization", `Bearer ${token}`);
    return { headers: { authorization: headers.get("authorization")! }, secrets: [token] };
  }),
  ...["none", "None", "NONE", "nOnE"].map((alg) =>
    jwtCase(`alg "${alg}" with an empty signature`, INVALID_TOKEN, (f) => {
      const token = assemble({ alg, typ: "JWT" }, claimsOf(f.user));
      return bearer(token);
    })
  ),
  jwtCase('alg "none" carrying a genuine signature', INVALID_TOKEN, async (f) => {
    const [, , s] = splitToken(await trusted(f));
    return bearer(assemble({ alg: "none", kid: f.signing.kid, typ: "JWT" }, claimsOf(f.user), s));
  }),
  jwtCase("ES256 token with its signature removed", INVALID_TOKEN, async (f) => {
    const [h, p] = splitToken(await trusted(f));
    return bearer(`${h}.${p}.`);
  }),
  jwtCase("HS256 signed with the public JWK (JSON) as secret", INVALID_TOKEN, async (f) => {
    const secret = encoder.encode(JSON.stringify(f.signing.publicJwk));
    return bearer(await sign(secret, { alg: "HS256", kid: f.signing.kid }, claimsOf(f.user)));
  }),
  jwtCase("HS256 signed with the public key PEM (SPKI) as secret", INVALID_TOKEN, async (f) => {
    const secret = encoder.encode(f.publicPem);
    return bearer(await sign(secret, { alg: "HS256", kid: f.signing.kid }, claimsOf(f.user)));
  }),
  jwtCase("HS256 signed with the raw public point as secret", INVALID_TOKEN, async (f) => {
    const x = base64url.decode(f.signing.publicJwk.x!);
    const y = base64url.decode(f.signing.publicJwk.y!);
    const secret = new Uint8Array([0x04, ...x, ...y]);
    return bearer(await sign(secret, { alg: "HS256", kid: f.signing.kid }, claimsOf(f.user)));
  }),
  jwtCase("ES256 signed by another key with the trusted kid", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", kid: f.signing.kid, typ: "JWT" };
    return bearer(await sign(f.attacker.privateKey, header, claimsOf(f.user)));
  }),
  jwtCase("ES256 signed by another key with an unknown kid", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", kid: "attacker-key", typ: "JWT" };
    return bearer(await sign(f.attacker.privateKey, header, claimsOf(f.user)));
  }),
  jwtCase("ES256 signed by another key embedded as a jwk header", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", jwk: f.attacker.publicJwk, typ: "JWT" };
    return bearer(await sign(f.attacker.privateKey, header, claimsOf(f.user)));
  }),
  jwtCase(
    "RS256 signed by an attacker's RSA key with the trusted kid",
    INVALID_TOKEN,
    async (f) => {
      const header = { alg: "RS256", kid: f.signing.kid, typ: "JWT" };
      return bearer(await sign(f.rsa.privateKey, header, claimsOf(f.user)));
    },
  ),
  jwtCase("validly signed with an unknown critical header", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", kid: f.signing.kid, crit: ["x-torvus"], "x-torvus": 1 };
    return bearer(await signRaw(f.signing.privateKey, header, claimsOf(f.user)));
  }),
  jwtCase("another issuer", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { iss: "https://evil.example.com/auth/v1" }));
  }),
  jwtCase("issuer with a trailing slash", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { iss: `${defaultIssuer()}/` }));
  }),
  jwtCase("another audience", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { aud: "anon" }));
  }),
  jwtCase("no audience", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { aud: undefined }));
  }),
  jwtCase("expired (exp a minute ago)", EXPIRED, async (f) => {
    return bearer(await trusted(f, { iat: ago(3660), exp: ago(60) }));
  }),
  jwtCase(
    "expired and signed by another key (signature first: 401, not 419)",
    INVALID_TOKEN,
    async (f) => {
      const header = { alg: "ES256", kid: f.signing.kid, typ: "JWT" };
      const claims = claimsOf(f.user, { iat: ago(3660), exp: ago(60) });
      return bearer(await sign(f.attacker.privateKey, header, claims));
    },
  ),
  jwtCase("expired and of another issuer (401, not 419)", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { iss: "https://evil.example.com/auth/v1", exp: ago(60) }));
  }),
  jwtCase("nbf ten minutes ahead", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { nbf: ahead(600) }));
  }),
  jwtCase("exp missing", INVALID_TOKEN, async (f) => bearer(await trusted(f, { exp: undefined }))),
  jwtCase("exp not a number", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { exp: String(ahead(3600)) }));
  }),
  jwtCase("sub missing", INVALID_TOKEN, async (f) => bearer(await trusted(f, { sub: undefined }))),
  jwtCase("sub not a UUID", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { sub: "admin" }));
  }),
  jwtCase("payload tampered: sub of another user, signature kept", INVALID_TOKEN, async (f) => {
    return bearer(tamperPayload(await trusted(f), { sub: f.other.userId }));
  }),
  jwtCase("payload tampered: role service_role, signature kept", INVALID_TOKEN, async (f) => {
    return bearer(tamperPayload(await trusted(f), { role: "service_role" }));
  }),
  jwtCase("payload tampered: exp extended, signature kept", INVALID_TOKEN, async (f) => {
    return bearer(tamperPayload(await trusted(f), { exp: ahead(86_400 * 365) }));
  }),
  jwtCase("one bit of the signature flipped", INVALID_TOKEN, async (f) => {
    const [h, p, s] = splitToken(await trusted(f));
    return bearer(`${h}.${p}.${flipBit(s, 20)}`);
  }),
  jwtCase("truncated by ten characters", INVALID_TOKEN, async (f) => {
    const token = await trusted(f);
    return { ...bearer(token.slice(0, -10)), secrets: [token.slice(0, -10)] };
  }),
  jwtCase("two segments", INVALID_TOKEN, async (f) => {
    const [h, p] = splitToken(await trusted(f));
    return bearer(`${h}.${p}`);
  }),
  jwtCase("four segments", INVALID_TOKEN, async (f) => bearer(`${await trusted(f)}.AAAA`)),
  jwtCase("~53 KB validly signed token (over the API's 8 KiB limit)", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { pad: "x".repeat(40_000) }));
  }),
  {
    name: "100 KB token (over the HTTP server's header limit)",
    credential: "jwt",
    transportRejected: true,
    build: async (f) => bearer(await trusted(f, { pad: "x".repeat(75_000) })),
  },
  jwtCase("validly signed with role anon", FORBIDDEN, async (f) => {
    return bearer(await trusted(f, { role: "anon" }));
  }),
  jwtCase("validly signed with role service_role", FORBIDDEN, async (f) => {
    return bearer(await trusted(f, { role: "service_role" }));
  }),
  jwtCase("an API key as the bearer token", INVALID_TOKEN, (f) => bearer(f.keys.live.key)),
];

// --- API-key cases -------------------------------------------------------------------------------

const keyError = (code: string, message: string, status = 401): Expectation => ({
  status,
  code,
  error: status === 401 ? "unauthorized" : "forbidden",
  message,
});
const MISSING_KEY = keyError("MISSING_API_KEY", "Missing X-API-Key header");
const BAD_FORMAT = keyError("INVALID_API_KEY_FORMAT", "Invalid API key format");
const BAD_KEY = keyError("INVALID_API_KEY", "Invalid API key");

const apiKey = (value: string, secrets: string[] = [value]): Presented => ({
  headers: { "x-api-key": value },
  secrets: secrets.filter((s) => s.length >= 16),
});

function keyCase(
  name: string,
  expect: Expectation,
  build: (f: Fixtures) => Promise<Presented> | Presented,
): HostileCase {
  return { name, credential: "api_key", expect, build: async (f) => await build(f) };
}

/** The body of a key (after `sk_live_` / `sk_test_`). */
const bodyOf = (key: string) => key.slice(8);

/** The seed's example keys: documentation, never issued. */
export const SEED_EXAMPLE_KEYS = {
  live: "sk_live_zGgF9rvG-NO7POa46KdHH2r_BcIvet4c8YmrYgLpXnc",
  test: "sk_test_abc123def456ghi789jkl012mno345pqr678stu901",
} as const;

/** Replaces the character at `i` with another base64url character. */
function changeChar(text: string, i: number): string {
  const c = text[i];
  return text.slice(0, i) + (c === "A" ? "B" : "A") + text.slice(i + 1);
}

/** Hostile API keys, for every API-key route. */
export const KEY_CASES: readonly HostileCase[] = [
  keyCase("no X-API-Key header", MISSING_KEY, () => ({ headers: {}, secrets: [] })),
  keyCase("empty X-API-Key header", MISSING_KEY, () => apiKey("")),
  keyCase("valid key as Authorization: Bearer only", MISSING_KEY, (f) => ({
    headers: { authorization: `Bearer ${f.keys.live.key}` },
    secrets: [f.keys.live.key],
  })),
  keyCase("valid key only in the query (?api_key=)", MISSING_KEY, (f) => ({
    headers: {},
    query: `?api_key=${f.keys.live.key}`,
    secrets: [f.keys.live.key],
  })),
  keyCase("valid user JWT as Authorization: Bearer only", MISSING_KEY, async (f) => {
    const token = await trusted(f);
    return { headers: { authorization: `Bearer ${token}` }, secrets: [token] };
  }),
  keyCase("prefix pk_live_", BAD_FORMAT, (f) => apiKey(`pk_live_${bodyOf(f.keys.live.key)}`)),
  keyCase("prefix sk_prod_", BAD_FORMAT, (f) => apiKey(`sk_prod_${bodyOf(f.keys.live.key)}`)),
  keyCase("upper-case prefix SK_LIVE_", BAD_FORMAT, (f) => {
    return apiKey(`SK_LIVE_${bodyOf(f.keys.live.key)}`);
  }),
  keyCase('"Bearer " before a valid key', BAD_FORMAT, (f) => {
    return apiKey(`Bearer ${f.keys.live.key}`, [f.keys.live.key]);
  }),
  // The seed answers INVALID_API_KEY_FORMAT for anything not starting with sk_live_/sk_test_,
  // however long: a JWT (always over the 256-character key bound) included.
  keyCase("a user JWT in X-API-Key", BAD_FORMAT, async (f) => apiKey(await trusted(f))),
  keyCase("bare sk_live_", BAD_KEY, () => apiKey("sk_live_")),
  keyCase("bare sk_test_", BAD_KEY, () => apiKey("sk_test_")),
  keyCase("valid key missing its last character", BAD_KEY, (f) => {
    return apiKey(f.keys.live.key.slice(0, -1), [f.keys.live.key]);
  }),
  keyCase("valid key with one character appended", BAD_KEY, (f) => {
    return apiKey(f.keys.live.key + "A", [f.keys.live.key]);
  }),
  keyCase("valid key padded to 300 characters", BAD_KEY, (f) => {
    return apiKey(f.keys.live.key.padEnd(300, "A"), [f.keys.live.key]);
  }),
  keyCase("key body with a character outside base64url", BAD_KEY, (f) => {
    const k = f.keys.live.key;
    return apiKey(k.slice(0, 20) + "+" + k.slice(21), [k]);
  }),
  keyCase("bad checksum: valid key with one character changed", BAD_KEY, (f) => {
    return apiKey(changeChar(f.keys.live.key, 20), [f.keys.live.key]);
  }),
  keyCase("test key presented with the live prefix", BAD_KEY, (f) => {
    return apiKey(`sk_live_${bodyOf(f.keys.test.key)}`, [f.keys.test.key]);
  }),
  keyCase("two keys in one header (repeated X-API-Key)", BAD_KEY, (f) => {
    return apiKey(`${f.keys.live.key}, ${f.keys.test.key}`, [f.keys.live.key, f.keys.test.key]);
  }),
  keyCase("unknown well-formed live key", BAD_KEY, async () => {
    return apiKey((await generateApiKey("live")).key);
  }),
  keyCase("unknown well-formed test key", BAD_KEY, async () => {
    return apiKey((await generateApiKey("test")).key);
  }),
  keyCase("the seed's example live key", BAD_KEY, () => apiKey(SEED_EXAMPLE_KEYS.live)),
  keyCase("the seed's example test key", BAD_KEY, () => apiKey(SEED_EXAMPLE_KEYS.test)),
  keyCase(
    "revoked key",
    keyError("API_KEY_NOT_ACTIVE", "API key is revoked"),
    (f) => apiKey(f.keys.revoked.key),
  ),
  keyCase(
    "suspended key",
    keyError("API_KEY_NOT_ACTIVE", "API key is suspended"),
    (f) => apiKey(f.keys.suspended.key),
  ),
  keyCase(
    "key with status expired",
    keyError("API_KEY_NOT_ACTIVE", "API key is expired"),
    (f) => apiKey(f.keys.expiredStatus.key),
  ),
  keyCase(
    "active key past its expires_at",
    keyError("API_KEY_EXPIRED", "API key has expired"),
    (f) => apiKey(f.keys.pastExpiry.key),
  ),
  keyCase(
    "key whose IP allowlist excludes the caller",
    keyError(
      "IP_NOT_ALLOWED",
      "Requests from this IP address are not allowed for this API key",
      403,
    ),
    (f) => apiKey(f.keys.ipRestricted.key),
  ),
];

/** Every SHA-256 form of a key that must never appear anywhere: hex, base64, base64url. */
export async function hashForms(key: string): Promise<string[]> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(key)));
  const buf = Buffer.from(digest);
  return [buf.toString("hex"), buf.toString("base64"), buf.toString("base64url")];
}

// --- in-process ----------------------------------------------------------------------------------

/**
 * Services for calling a {@link defineFunction} handler in-process on an `auth: "none"` route:
 * such a route touches only the configuration, the per-IP limiter (always allows here), the
 * error reporter and the audit sink. Used only to make a handler throw on purpose (no route of
 * the real API fails on demand); everything else runs against the real stack over HTTP.
 */
export function stubServices(audit: unknown[] = []): Services {
  const decision = {
    allowed: true,
    limit: 100,
    remaining: 99,
    reset: Date.now() + 3_600_000,
    window: "hour",
    policies: [{ name: "hour", limit: 100, seconds: 3600 }],
    degraded: false,
  };
  return {
    config: { rateLimit: { failMode: "open", timeoutMs: 100 } },
    addresses: addressPolicy({
      gatewaySecret: undefined,
      directAccess: "allow",
      directIpSource: { kind: "peer" },
    }),
    limiter: { check: () => Promise.resolve(decision), refund() {} },
    requestLines: { admit: () => true, flush() {} },
    reporter: { capture() {}, flush: () => Promise.resolve(true) },
    audit: {
      record: (entry: unknown) => void audit.push(entry),
      flush: () => Promise.resolve(),
      close: () => Promise.resolve(),
      pending: 0,
    },
    background: () => {},
  } as unknown as Services;
}
