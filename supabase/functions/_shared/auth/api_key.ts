/**
 * API-key authentication from the `X-API-Key` header.
 *
 * The order of checks follows the documentation's error list and spends I/O last: header
 * present (`MISSING_API_KEY`), documented prefix (`INVALID_API_KEY_FORMAT`), body shape and
 * checksum (`INVALID_API_KEY`, no I/O), mode served by this deployment (`INVALID_API_KEY`), then
 * one call of `verify_api_key(sha256)` returning the key with its tier limits: unknown
 * (`INVALID_API_KEY`), status not active (`API_KEY_NOT_ACTIVE`, naming the status), past
 * `expires_at` (`API_KEY_EXPIRED`), and an IP allowlist that excludes the caller
 * (`IP_NOT_ALLOWED`).
 *
 * Lookups are cached per isolate (bounded), negative answers included. A cached *valid* key is
 * never trusted alone: the request also reads the key-state epoch of its key (Redis counters
 * bumped by every revocation, suspension, expiry change and roll; see key_epoch.ts), in the
 * same Redis round trip as its
 * rate-limit check, in one Redis command (see `confirm`). A changed epoch drops the entry and the key is looked up
 * again, so a revocation is seen by the next request on every instance. On a miss the epoch is
 * read before the database, so an entry can never pair old data with a newer epoch. When Redis
 * cannot answer, nothing is cached or confirmed and every request goes to the database.
 *
 * @module
 */
import { hashApiKey, KEY_PREFIX, type KeyMode, parseApiKey } from "./key_format.ts";
import type { AuthResult, KeyPrincipal, Scope } from "./principal.ts";
import { ipInAnyCidr } from "./allowlist.ts";
import { type Confirmation, EpochCache, type EpochSource } from "./epoch.ts";

/** A key as the verification function returns it. */
export interface StoredKey {
  id: string;
  userId: string;
  name: string;
  mode: KeyMode;
  status: "active" | "revoked" | "suspended" | "expired";
  scopes: Scope[];
  expiresAt: Date | null;
  ipAllowlist: string[] | null;
  tierId: string;
  tierName: string;
  perMinute: number;
  perDay: number;
}

/** Looks a key up by the SHA-256 of the full key; null when no key has that hash. */
export interface KeyStore {
  findByHash(hash: Uint8Array): Promise<StoredKey | null>;
}

/** The key-state epoch: counters every change of a key's state increments (key_epoch.ts). */
export type KeyEpoch = EpochSource<Uint8Array>;

/** Options of {@link createKeyAuthenticator}. */
export interface KeyAuthOptions {
  store: KeyStore;
  /** Modes this deployment serves; a key of another mode is unknown here. */
  acceptedModes: readonly KeyMode[];
  /** Without an epoch source, nothing is cached. */
  epoch?: KeyEpoch | undefined;
  cacheSize?: number;
  now?: () => number;
}

/** A successful authentication, possibly from cache and then awaiting confirmation. */
export type KeyAuthResult = AuthResult<KeyPrincipal> & {
  /** Present when the answer came from cache: the key's state must be confirmed unchanged. */
  confirm?: Confirmation;
};

/** Authenticates a presented API key. */
export interface KeyAuthenticator {
  authenticate(raw: string | null, clientIp: string | undefined): Promise<KeyAuthResult>;
}

const hasKeyPrefix = (v: string) => v.startsWith(KEY_PREFIX.live) || v.startsWith(KEY_PREFIX.test);

/** Keys longer than this are refused before any parsing. */
const MAX_KEY_LENGTH = 256;
/** How long a valid key may be served from cache if every epoch bump were lost. */
export const KEY_CACHE_TTL_MS = 30_000;
/** How long a refused key's answer is kept (a reactivation shows within this). */
const REFUSED_TTL_MS = 10_000;
/** How long an unknown hash is remembered; random 256-bit keys never become known later. */
const UNKNOWN_TTL_MS = 60_000;

/** Creates the isolate's key authenticator. */
export function createKeyAuthenticator(options: KeyAuthOptions): KeyAuthenticator {
  const now = options.now ?? Date.now;
  const cache = new EpochCache<Uint8Array, StoredKey | null>(
    options.epoch,
    options.cacheSize ?? 10_000,
  );

  const evaluate = (key: StoredKey | null, clientIp: string | undefined): KeyAuthResult => {
    if (key === null) return { ok: false, code: "INVALID_API_KEY" };
    const known = { keyId: key.id, userId: key.userId, mode: key.mode };
    if (key.status !== "active") {
      return {
        ok: false,
        code: "API_KEY_NOT_ACTIVE",
        message: `API key is ${key.status}`,
        ...known,
      };
    }
    if (key.expiresAt !== null && key.expiresAt.getTime() <= now()) {
      return { ok: false, code: "API_KEY_EXPIRED", ...known };
    }
    if (key.ipAllowlist !== null && key.ipAllowlist.length > 0) {
      if (clientIp === undefined || !ipInAnyCidr(clientIp, key.ipAllowlist)) {
        return { ok: false, code: "IP_NOT_ALLOWED", ...known };
      }
    }
    return {
      ok: true,
      principal: {
        kind: "api_key",
        keyId: key.id,
        keyName: key.name,
        userId: key.userId,
        mode: key.mode,
        scopes: key.scopes,
        tierId: key.tierId,
        tierName: key.tierName,
        limits: { perMinute: key.perMinute, perDay: key.perDay },
      },
    };
  };

  return {
    async authenticate(raw, clientIp) {
      const presented = raw?.trim() ?? "";
      if (presented === "") return { ok: false, code: "MISSING_API_KEY" };
      if (!hasKeyPrefix(presented)) return { ok: false, code: "INVALID_API_KEY_FORMAT" };
      if (presented.length > MAX_KEY_LENGTH) return { ok: false, code: "INVALID_API_KEY" };
      const hash = hashApiKey(presented);
      const cacheKey = String.fromCharCode(...hash);

      // Only keys that parsed, in a mode served here, are ever cached: a hit needs no parsing.
      const hit = cache.hit(cacheKey, now());
      if (hit) {
        const result = evaluate(hit.value, clientIp);
        return result.ok ? { ...result, confirm: hit.confirm } : result;
      }

      // The prefix is known good (above), so a key that does not parse has a bad body or checksum.
      const parsed = parseApiKey(presented);
      if (!parsed.ok) return { ok: false, code: "INVALID_API_KEY" };
      if (!options.acceptedModes.includes(parsed.mode)) {
        return { ok: false, code: "INVALID_API_KEY" };
      }
      const epoch = await cache.before(hash);
      const found = await options.store.findByHash(hash);
      const key = found !== null && found.mode === parsed.mode ? found : null;
      const result = evaluate(key, clientIp);
      const ttl = key === null ? UNKNOWN_TTL_MS : result.ok ? KEY_CACHE_TTL_MS : REFUSED_TTL_MS;
      // Never beyond the key's own expiry, so a cached key lapses on time.
      cache.keep(
        cacheKey,
        key,
        epoch,
        Math.min(now() + ttl, key?.expiresAt?.getTime() ?? Infinity),
      );
      return result;
    },
  };
}
