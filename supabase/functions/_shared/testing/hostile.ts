/**
 * The catalogue of hostile credentials: bearer tokens and API keys an attacker or a careless
 * client presents, each with the exact answer the published pages document (or, where they are
 * silent, the error catalogue's). The JWT and API-key unit tests run every case in-process
 * against fakes (`auth/jwt_test.ts`, `auth/api_key_test.ts`); the security matrix
 * (tests/security_matrix_test.ts) runs every case against every route of its kind end to end.
 *
 * Cases build what they present from {@link CatalogueFixtures}: a signing key the verifier
 * trusts, a user, an attacker's keys, and API keys in each state.
 *
 * @module
 */
import { base64url, type JWK, type JWTHeaderParameters, SignJWT } from "jose";
import { generateApiKey } from "../auth/key_format.ts";

/** What the cases build on. */
export interface CatalogueFixtures {
  /** The issuer the verifier expects. */
  issuer: string;
  /** The clock tokens are dated by (epoch ms): the verifier's. */
  now: () => number;
  user: { userId: string; email: string };
  /** A second user, whose id tampered tokens claim. */
  other: { userId: string };
  /** The signing key the verifier trusts. */
  signing: { privateKey: CryptoKey; kid: string; publicJwk: JWK };
  /** An attacker's ES256 key pair. */
  attacker: { privateKey: CryptoKey; publicJwk: JWK };
  /** An attacker's RSA key pair. */
  rsa: { privateKey: CryptoKey };
  /** The trusted public key as SPKI PEM. */
  publicPem: string;
  /** API keys in each state (`key` is the full key). */
  keys: Record<
    "live" | "test" | "revoked" | "suspended" | "expiredStatus" | "pastExpiry" | "ipRestricted",
    { key: string }
  >;
}

// --- token forging -------------------------------------------------------------------------------

const encoder = new TextEncoder();
const b64 = (value: unknown) => base64url.encode(JSON.stringify(value));

/**
 * Claims like Supabase Auth's for `user` (the fixtures' by default), valid for an hour from the
 * fixtures' clock; `undefined` values are removed.
 */
export function claimsOf(
  f: Pick<CatalogueFixtures, "issuer" | "now" | "user">,
  overrides: Record<string, unknown> = {},
  user: { userId: string; email: string } = f.user,
): Record<string, unknown> {
  const now = Math.floor(f.now() / 1000);
  const all: Record<string, unknown> = {
    iss: f.issuer,
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
export async function trusted(f: CatalogueFixtures, overrides: Record<string, unknown> = {}) {
  return await sign(
    f.signing.privateKey,
    { alg: "ES256", kid: f.signing.kid, typ: "JWT" },
    claimsOf(f, overrides),
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
  credential: "jwt" | "api_key";
  build(f: CatalogueFixtures): Promise<Presented>;
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

/** The case builder of one kind of route: a name, the answer it must get, and what to present. */
function caseOf(credential: HostileCase["credential"]) {
  return (
    name: string,
    expect: Expectation,
    build: (f: CatalogueFixtures) => Promise<Presented> | Presented,
  ): HostileCase => ({ name, credential, expect, build: async (f) => await build(f) });
}

/** The body's `error` of a JWT route's refusal, by status. */
const JWT_ERRORS = { 401: "Unauthorized", 403: "Forbidden", 419: "Token Expired" } as const;

/** A JWT route's refusal; its `error` follows from the status, as {@link keyError}'s does. */
const jwtError = (
  status: keyof typeof JWT_ERRORS,
  code: string,
  message: string,
  challenge: NonNullable<Expectation["challenge"]>,
): Expectation => ({ status, error: JWT_ERRORS[status], message, code, challenge });
const UNAUTHORIZED = "Invalid or missing authentication token";
const MISSING_TOKEN = jwtError(401, "MISSING_AUTH_TOKEN", UNAUTHORIZED, {
  exact: 'Bearer realm="torvus"',
});
const MALFORMED_HEADER = jwtError(401, "INVALID_AUTH_TOKEN", UNAUTHORIZED, {
  bearerError: "invalid_request",
});
const INVALID_TOKEN = jwtError(401, "INVALID_AUTH_TOKEN", UNAUTHORIZED, {
  bearerError: "invalid_token",
});
const EXPIRED = jwtError(419, "TOKEN_EXPIRED", "JWT token has expired, refresh required", {
  bearerError: "invalid_token",
});
const FORBIDDEN = jwtError(403, "FORBIDDEN", "Valid token but insufficient permissions", {
  bearerError: "insufficient_scope",
});

/** The `amr` of a token Supabase Auth's OAuth server issued. */
const APP_AMR = (f: CatalogueFixtures) => [
  { method: "oauth_provider/authorization_code", timestamp: ago(f, 10) },
];

const bearer = (token: string): Presented => ({
  headers: { authorization: `Bearer ${token}` },
  secrets: [token],
});

const jwtCase = caseOf("jwt");

/** A valid token presented anywhere but `Authorization: Bearer`: as if none were sent. */
function misplaced(name: string, place: (token: string) => Omit<Presented, "secrets">) {
  return jwtCase(name, MISSING_TOKEN, async (f) => {
    const token = await trusted(f);
    return { ...place(token), secrets: [token] };
  });
}

const ago = (f: CatalogueFixtures, s: number) => Math.floor(f.now() / 1000) - s;
const ahead = (f: CatalogueFixtures, s: number) => Math.floor(f.now() / 1000) + s;

/** Hostile bearer tokens, for every JWT route. */
export const JWT_CASES: readonly HostileCase[] = [
  jwtCase("no Authorization header", MISSING_TOKEN, () => ({ headers: {}, secrets: [] })),
  jwtCase("Basic credentials instead of Bearer", MISSING_TOKEN, () => ({
    headers: { authorization: `Basic ${btoa("user@example.com:hunter2-password")}` },
    secrets: [],
  })),
  misplaced("valid token under the Basic scheme", (token) => ({
    headers: { authorization: `Basic ${token}` },
  })),
  misplaced("valid token without a scheme", (token) => ({ headers: { authorization: token } })),
  misplaced("valid token only in the query (?access_token=)", (token) => ({
    headers: {},
    query: `?access_token=${token}`,
  })),
  misplaced("valid token only in a cookie", (token) => ({
    headers: { cookie: `sb-access-token=${token}` },
  })),
  misplaced("valid token only in X-API-Key", (token) => ({ headers: { "x-api-key": token } })),
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
      const token = assemble({ alg, typ: "JWT" }, claimsOf(f));
      return bearer(token);
    })
  ),
  jwtCase('alg "none" carrying a genuine signature', INVALID_TOKEN, async (f) => {
    const [, , s] = splitToken(await trusted(f));
    return bearer(assemble({ alg: "none", kid: f.signing.kid, typ: "JWT" }, claimsOf(f), s));
  }),
  jwtCase("ES256 token with its signature removed", INVALID_TOKEN, async (f) => {
    const [h, p] = splitToken(await trusted(f));
    return bearer(`${h}.${p}.`);
  }),
  jwtCase("HS256 signed with the public JWK (JSON) as secret", INVALID_TOKEN, async (f) => {
    const secret = encoder.encode(JSON.stringify(f.signing.publicJwk));
    return bearer(await sign(secret, { alg: "HS256", kid: f.signing.kid }, claimsOf(f)));
  }),
  jwtCase("HS256 signed with the public key PEM (SPKI) as secret", INVALID_TOKEN, async (f) => {
    const secret = encoder.encode(f.publicPem);
    return bearer(await sign(secret, { alg: "HS256", kid: f.signing.kid }, claimsOf(f)));
  }),
  jwtCase("HS256 signed with the raw public point as secret", INVALID_TOKEN, async (f) => {
    const x = base64url.decode(f.signing.publicJwk.x!);
    const y = base64url.decode(f.signing.publicJwk.y!);
    const secret = new Uint8Array([0x04, ...x, ...y]);
    return bearer(await sign(secret, { alg: "HS256", kid: f.signing.kid }, claimsOf(f)));
  }),
  jwtCase("ES256 signed by another key with the trusted kid", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", kid: f.signing.kid, typ: "JWT" };
    return bearer(await sign(f.attacker.privateKey, header, claimsOf(f)));
  }),
  jwtCase("ES256 signed by another key with an unknown kid", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", kid: "attacker-key", typ: "JWT" };
    return bearer(await sign(f.attacker.privateKey, header, claimsOf(f)));
  }),
  jwtCase("ES256 signed by another key embedded as a jwk header", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", jwk: f.attacker.publicJwk, typ: "JWT" };
    return bearer(await sign(f.attacker.privateKey, header, claimsOf(f)));
  }),
  jwtCase(
    "RS256 signed by an attacker's RSA key with the trusted kid",
    INVALID_TOKEN,
    async (f) => {
      const header = { alg: "RS256", kid: f.signing.kid, typ: "JWT" };
      return bearer(await sign(f.rsa.privateKey, header, claimsOf(f)));
    },
  ),
  jwtCase("validly signed with an unknown critical header", INVALID_TOKEN, async (f) => {
    const header = { alg: "ES256", kid: f.signing.kid, crit: ["x-torvus"], "x-torvus": 1 };
    return bearer(await signRaw(f.signing.privateKey, header, claimsOf(f)));
  }),
  jwtCase("another issuer", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { iss: "https://evil.example.com/auth/v1" }));
  }),
  jwtCase("issuer with a trailing slash", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { iss: `${f.issuer}/` }));
  }),
  jwtCase("another audience", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { aud: "anon" }));
  }),
  jwtCase("no audience", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { aud: undefined }));
  }),
  jwtCase("expired (exp a minute ago)", EXPIRED, async (f) => {
    return bearer(await trusted(f, { iat: ago(f, 3660), exp: ago(f, 60) }));
  }),
  jwtCase(
    "expired and signed by another key (signature first: 401, not 419)",
    INVALID_TOKEN,
    async (f) => {
      const header = { alg: "ES256", kid: f.signing.kid, typ: "JWT" };
      const claims = claimsOf(f, { iat: ago(f, 3660), exp: ago(f, 60) });
      return bearer(await sign(f.attacker.privateKey, header, claims));
    },
  ),
  jwtCase("expired and of another issuer (401, not 419)", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { iss: "https://evil.example.com/auth/v1", exp: ago(f, 60) }));
  }),
  jwtCase("nbf ten minutes ahead", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { nbf: ahead(f, 600) }));
  }),
  jwtCase("exp missing", INVALID_TOKEN, async (f) => bearer(await trusted(f, { exp: undefined }))),
  jwtCase("exp not a number", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { exp: String(ahead(f, 3600)) }));
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
    return bearer(tamperPayload(await trusted(f), { exp: ahead(f, 86_400 * 365) }));
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
  // A third-party app's token is judged by its grant (tests/security_matrix_test.ts, the app
  // matrix); one whose client_id no client id can be is refused by the verifier itself.
  jwtCase("validly signed with a client_id that is not a string", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { client_id: 42, amr: APP_AMR(f) }));
  }),
  jwtCase("validly signed with a client_id no client has", INVALID_TOKEN, async (f) => {
    return bearer(await trusted(f, { client_id: "a b/../c", amr: APP_AMR(f) }));
  }),
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

const keyCase = caseOf("api_key");

/** A key whose status is not active: refused, the status named. */
function notActive(
  name: string,
  status: "revoked" | "suspended" | "expired",
  key: (f: CatalogueFixtures) => string,
): HostileCase {
  return keyCase(
    name,
    keyError("API_KEY_NOT_ACTIVE", `API key is ${status}`),
    (f) => apiKey(key(f)),
  );
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
  keyCase("unknown well-formed live key", BAD_KEY, () => {
    return apiKey(generateApiKey("live").key);
  }),
  keyCase("unknown well-formed test key", BAD_KEY, () => {
    return apiKey(generateApiKey("test").key);
  }),
  keyCase("the seed's example live key", BAD_KEY, () => apiKey(SEED_EXAMPLE_KEYS.live)),
  keyCase("the seed's example test key", BAD_KEY, () => apiKey(SEED_EXAMPLE_KEYS.test)),
  notActive("revoked key", "revoked", (f) => f.keys.revoked.key),
  notActive("suspended key", "suspended", (f) => f.keys.suspended.key),
  notActive("key with status expired", "expired", (f) => f.keys.expiredStatus.key),
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
