/**
 * The local stand-in for Supabase Auth's token signing.
 *
 * Hosted Supabase signs access tokens with an asymmetric key and publishes its public half at
 * `/auth/v1/.well-known/jwks.json`. Locally, this module keeps one ES256 key pair in
 * `.local/auth/signing-key.json` (or `TORVUS_AUTH_KEY_FILE`), created on first use with mode
 * 0600, and mints tokens with the same header and claims as Supabase Auth, so the functions
 * verify local tokens exactly as they verify production ones.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  SignJWT,
} from "jose";
import { LOCAL_DIR } from "./local_env.ts";

/** The signing algorithm, as Supabase Auth's asymmetric keys use it. */
export const SIGNING_ALG = "ES256";

/** The loaded signing key: the private key for signing and its public JWK for the JWKS. */
export interface SigningKey {
  /** Key id: the RFC 7638 thumbprint of the public key. */
  kid: string;
  /** The public JWK (kty, crv, x, y, kid, alg, use), never the private member. */
  publicJwk: JWK;
  /** The private key, for signing only. */
  privateKey: CryptoKey;
  /** Absolute path of the key file. */
  path: string;
}

/** Options of {@link mintAccessToken}. */
export interface MintOptions {
  /** `sub`. */
  userId: string;
  email: string;
  /** Lifetime in seconds from now; negative for an already expired token. Default 3600. */
  ttlSeconds?: number;
  /** `iss`; default `${SUPABASE_URL}/auth/v1`. */
  issuer?: string;
  /** Default `authenticated`. */
  role?: string;
  /** `session_id`; default a random UUID. */
  sessionId?: string;
  /** Claims merged last: they may override any claim above (tests forge tokens this way). */
  extraClaims?: Record<string, unknown>;
  /** Key file; default as in {@link loadOrCreateSigningKey}. */
  keyFile?: string;
}

const cache = new Map<string, Promise<SigningKey>>();

/** The key file in use: the argument, else `TORVUS_AUTH_KEY_FILE`, else `.local/auth/signing-key.json`. */
export function signingKeyPath(path?: string): string {
  const chosen = path ?? Deno.env.get("TORVUS_AUTH_KEY_FILE");
  if (chosen !== undefined && chosen !== "") return resolve(chosen);
  return fileURLToPath(new URL("auth/signing-key.json", LOCAL_DIR));
}

/** Forgets loaded keys, so that the next load reads the file again (for tests). */
export function clearSigningKeyCache(): void {
  cache.clear();
}

/**
 * Loads the signing key pair from its file, generating it there on first use (directory
 * created if missing, file mode 0600). The result is cached per path for the module's life.
 */
export function loadOrCreateSigningKey(path?: string): Promise<SigningKey> {
  const file = signingKeyPath(path);
  let loaded = cache.get(file);
  if (loaded === undefined) {
    loaded = Deno.readTextFile(file).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return create(file);
      throw error;
    }).then((text) => fromPrivateJwk(file, text));
    loaded.catch(() => cache.delete(file));
    cache.set(file, loaded);
  }
  return loaded;
}

/** Writes a new key next to `file` and links it into place, so that concurrent creators agree. */
async function create(file: string): Promise<string> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, "sha256");
  const text = JSON.stringify({ ...jwk, kid, alg: SIGNING_ALG, use: "sig" }, null, 2) + "\n";
  await Deno.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(temp, text, { mode: 0o600, createNew: true });
    await Deno.chmod(temp, 0o600);
    await Deno.link(temp, file);
    return text;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return await Deno.readTextFile(file);
    throw error;
  } finally {
    await Deno.remove(temp).catch(() => {});
  }
}

async function fromPrivateJwk(file: string, text: string): Promise<SigningKey> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw new Error(`signing key file ${file} is not JSON`);
  }
  if (
    jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.d !== "string" ||
    typeof jwk.x !== "string" || typeof jwk.y !== "string"
  ) {
    throw new Error(`signing key file ${file} does not hold a private P-256 JWK`);
  }
  const { kty, crv, x, y } = jwk;
  const kid = typeof jwk.kid === "string" && jwk.kid !== ""
    ? jwk.kid
    : await calculateJwkThumbprint({ kty, crv, x, y }, "sha256");
  const privateKey = await importJWK({ kty, crv, x, y, d: jwk.d }, SIGNING_ALG);
  if (privateKey instanceof Uint8Array) throw new Error("unexpected symmetric key");
  const publicJwk: JWK = { kty, crv, x, y, kid, alg: SIGNING_ALG, use: "sig" };
  return { kid, publicJwk, privateKey, path: file };
}

/** The public JWKS of the signing key (loading or creating it): never any private member. */
export async function publicJwks(path?: string): Promise<{ keys: JWK[] }> {
  const { publicJwk } = await loadOrCreateSigningKey(path);
  return { keys: [{ ...publicJwk }] };
}

/** `${SUPABASE_URL}/auth/v1`, the issuer Supabase Auth puts in its tokens. */
export function defaultIssuer(): string {
  const url = Deno.env.get("SUPABASE_URL");
  if (url === undefined || url === "") {
    throw new Error("SUPABASE_URL is not set: it is needed for the token issuer");
  }
  return `${url.replace(/\/+$/, "")}/auth/v1`;
}

/** The `amr` method of a session started by the OAuth 2.1 server's code exchange. */
export const OAUTH_CODE_METHOD = "oauth_provider/authorization_code";

/** Options of {@link mintAppAccessToken}: those of a user's token, and the app's client id. */
export interface AppMintOptions extends Omit<MintOptions, "extraClaims"> {
  clientId: string;
}

/**
 * A user's access token as a third-party app holds it after the code exchange: the user's claims
 * plus `client_id`, `scope` and the {@link OAUTH_CODE_METHOD} `amr`, as Supabase Auth's OAuth
 * server mints it.
 */
export async function mintAppAccessToken(
  { clientId, ...options }: AppMintOptions,
): Promise<string> {
  return await mintAccessToken({
    ...options,
    extraClaims: {
      client_id: clientId,
      scope: "openid email profile",
      amr: [{ method: OAUTH_CODE_METHOD, timestamp: Math.floor(Date.now() / 1000) }],
    },
  });
}

/** Mints an access token shaped like Supabase Auth's (ES256, `kid` header, same claims). */
export async function mintAccessToken(options: MintOptions): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  const ttl = options.ttlSeconds ?? 3600;
  const claims: Record<string, unknown> = {
    iss: options.issuer ?? defaultIssuer(),
    sub: options.userId,
    aud: "authenticated",
    exp: iat + ttl,
    iat,
    email: options.email,
    phone: "",
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    role: options.role ?? "authenticated",
    aal: "aal1",
    amr: [{ method: "password", timestamp: iat }],
    session_id: options.sessionId ?? crypto.randomUUID(),
    is_anonymous: false,
    ...options.extraClaims,
  };
  return await signJwt(claims, options.keyFile);
}

/** Signs claims with the local key, with Supabase Auth's header (ES256, `kid`, `typ` JWT). */
export async function signJwt(claims: Record<string, unknown>, keyFile?: string): Promise<string> {
  const key = await loadOrCreateSigningKey(keyFile);
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: "JWT" })
    .sign(key.privateKey);
}

/**
 * The local `SUPABASE_SERVICE_ROLE_KEY`: a JWT with role `service_role` (no user, no session),
 * shaped as the hosted project's key, signed with the local key so that the Auth stand-in's
 * admin endpoints accept it. Valid ten years, as the hosted keys are.
 */
export function mintServiceRoleKey(keyFile?: string): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return signJwt(
    { iss: "supabase", role: "service_role", iat, exp: iat + 10 * 365 * 86400 },
    keyFile,
  );
}
