/**
 * The shared security matrix: every authenticated route, and the hostile credentials each kind
 * of route must refuse, with the exact answer the seed documents (or, where they are silent,
 * the error catalogue of `_shared/errors.ts`).
 *
 * - {@link AUTHENTICATED_ROUTES}: every authenticated operation of the route manifest, at its
 *   gateway path and its functions path, with its credential kind and (API keys) scope; what a
 *   valid request sends comes from {@link SAMPLES}, keyed by operation id.
 * - {@link JWT_CASES} and {@link KEY_CASES}: each builds what the client presents (headers,
 *   query) from shared {@link fixtures} and states the expected status, code, body fields and
 *   `WWW-Authenticate` challenge.
 *
 * `tests/security_matrix_test.ts` runs every case of a kind against every route of that kind.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK } from "jose";
import { defaultIssuer, loadOrCreateSigningKey, type SigningKey } from "../tools/local_auth.ts";
import { setKeyExpiry, setKeyStatus } from "../tools/admin/ops.ts";
import { MANIFEST } from "../supabase/functions/_shared/manifest.ts";
import { GATEWAY_ROUTES, isBelow } from "../supabase/functions/_shared/routes.ts";
import type { Method, OperationSpec, RouteSpec } from "../supabase/functions/_shared/http/spec.ts";
import type { AppScope, Scope } from "../supabase/functions/_shared/auth/principal.ts";
import { db, newKey, newTier, newUser, type TestKey, type TestUser } from "./_fixtures.ts";

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
export type { AppScope, Method, Scope };

/** One authenticated route. */
export interface MatrixRoute {
  method: Method;
  /** Path as a client calls it, with an existing-looking id where the route has one. */
  path: string;
  /** The path as the OpenAPI document names it (gateway path, `{id}`), for both paths. */
  template: string;
  credential: Credential;
  /** The scope an API key needs (API-key routes; none for `GET /api/v1/test`). */
  scope?: Scope;
  /** The scope a third-party app's token needs (JWT routes); none: apps are refused. */
  appScope?: AppScope;
  /** JSON body a valid request would send (so that a refusal is about credentials only). */
  body?: unknown;
  /** Statuses a valid credential gets; empty: anything but an auth refusal or a 5xx. */
  ok: readonly number[];
}

/** A random UUID: looks like a vault id, names none. */
export const SOME_VAULT_ID = crypto.randomUUID();
/** A random ULID: looks like a key id, names none. */
export const SOME_KEY_ID = "01" + randomCrockford(24);

function randomCrockford(n: number): string {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  return [...crypto.getRandomValues(new Uint8Array(n))].map((b) => alphabet[b & 31]).join("");
}

/**
 * What a valid request of each operation sends and gets, by operation id. An operation of the
 * manifest without an entry here fails the matrix at load: every route is covered.
 */
const SAMPLES: Readonly<Record<string, { body?: unknown; ok: readonly number[] }>> = {
  testApiKey: { ok: [200] },
  getMe: { ok: [200] },
  getAccount: { ok: [200] },
  listVaults: { ok: [200] },
  createVault: { body: { name: "matrix vault", tags: ["matrix"] }, ok: [201] },
  getVault: { ok: [404] },
  updateVault: { body: { name: "x" }, ok: [404] },
  deleteVault: { ok: [404] },
  listApiKeys: { ok: [] },
  createApiKey: { body: { name: "matrix key", mode: "test", scopes: ["read"] }, ok: [] },
  getApiKey: { ok: [] },
  revokeApiKey: { body: {}, ok: [] },
  rollApiKey: { body: {}, ok: [] },
  getApiKeyUsage: { ok: [404] },
  getUsage: { ok: [200] },
  listWebhooks: { ok: [200] },
  createWebhook: {
    // A local port nobody serves: the matrix's vaults never send a request off this machine.
    body: { url: "https://127.0.0.1:9/matrix", events: ["vault.created"] },
    // 409 once the user holds the most endpoints allowed.
    ok: [201, 409],
  },
  getWebhook: { ok: [404] },
  updateWebhook: { body: { description: "x" }, ok: [404] },
  deleteWebhook: { ok: [404] },
  rotateWebhookSecret: { body: {}, ok: [404] },
  testWebhook: { ok: [404] },
  listWebhookDeliveries: { ok: [404] },
  retryWebhookDelivery: { ok: [404] },
  listApps: { ok: [200] },
  createApp: {
    body: {
      name: "matrix app",
      redirect_uris: ["https://127.0.0.1:9/cb"],
      scopes: ["vaults:read"],
    },
    // 409 once the user holds the most apps allowed.
    ok: [201, 409],
  },
  getApp: { ok: [404] },
  updateApp: { body: { name: "x" }, ok: [404] },
  deleteApp: { ok: [404] },
  rotateAppSecret: { ok: [404] },
  getAppUsage: { ok: [404] },
  listGrants: { ok: [200] },
  createGrant: {
    body: { client_id: "00000000-0000-4000-8000-000000000000", scopes: ["vaults:read"] },
    ok: [404],
  },
  getConsentApp: { ok: [404] },
  revokeGrant: { ok: [404] },
};
const sampleOf = (id: string) =>
  SAMPLES[id] ?? SAMPLES[id.replace(/^v1(.)/, (_, c: string) => c.toLowerCase())];

/**
 * Every authenticated route of the manifest, at its public gateway path and at Supabase's
 * function path (`/functions/v1/<name>/…`, what `supabase.functions.invoke` calls).
 */
export const AUTHENTICATED_ROUTES: readonly MatrixRoute[] = GATEWAY_ROUTES
  .filter((g) => g.credentials !== "none")
  .flatMap((g) =>
    (MANIFEST[g.function].routes as readonly RouteSpec[])
      .filter((route) => route.auth === g.credentials && isBelow(route.path, g.target))
      .flatMap((route) => {
        const below = route.path.split("/").filter((p) => p !== "")
          .slice(g.target.split("/").filter((p) => p !== "").length);
        const rest = below.map((p) =>
          p === ":id" && g.function === "vaults"
            ? SOME_VAULT_ID
            : p.startsWith(":")
            ? SOME_KEY_ID
            : p
        );
        const tail = rest.length > 0 ? `/${rest.join("/")}` : "";
        const template = g.path + below.map((p) => `/${p.replace(/^:(.+)$/, "{$1}")}`).join("");
        return (Object.entries(route.methods) as Array<[Method, OperationSpec]>).flatMap(
          ([method, op]) => {
            const sample = sampleOf(op.id);
            if (!sample) throw new Error(`tests/_matrix.ts: no sample for operation ${op.id}`);
            const base = {
              method,
              template,
              credential: route.auth as Credential,
              ok: sample.ok,
              ...(op.scope ? { scope: op.scope } : {}),
              ...(op.appScope ? { appScope: op.appScope } : {}),
              ...(sample.body === undefined ? {} : { body: sample.body }),
            };
            return [
              { ...base, path: g.path + tail },
              { ...base, path: `/functions/v1/${g.function}${g.target}${tail}` },
            ];
          },
        );
      })
  );

/** A route's display name, e.g. `PATCH /api/vaults/{id}`. */
export function routeName(r: MatrixRoute): string {
  return `${r.method} ${r.path.replace(SOME_VAULT_ID, "{id}").replaceAll(SOME_KEY_ID, "{id}")}`;
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
  /** The issuer the dev server expects (the local Auth stand-in's). */
  issuer: string;
  now: () => number;
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
    issuer: defaultIssuer(),
    now: Date.now,
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

// --- the catalogue -------------------------------------------------------------------------------

import type { Presented } from "../supabase/functions/_shared/testing/hostile.ts";
export {
  claimsOf,
  type Expectation,
  type HostileCase,
  JWT_CASES,
  KEY_CASES,
  type Presented,
  SEED_EXAMPLE_KEYS,
  sign,
  trusted,
} from "../supabase/functions/_shared/testing/hostile.ts";

/** Every SHA-256 form of a key that must never appear anywhere: hex, base64, base64url. */
export async function hashForms(key: string): Promise<string[]> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)),
  );
  const buf = Buffer.from(digest);
  return [buf.toString("hex"), buf.toString("base64"), buf.toString("base64url")];
}
