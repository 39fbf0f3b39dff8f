/**
 * API-key authentication from the `X-API-Key` header.
 *
 * The order of checks follows the documentation's error list and spends I/O last: header
 * present (`MISSING_API_KEY`), documented prefix (`INVALID_API_KEY_FORMAT`), body shape and
 * checksum (`INVALID_API_KEY`, no I/O), then one call of `verify_api_key(sha256)` returning the
 * key with its tier limits: unknown or of a mode this deployment does not serve
 * (`INVALID_API_KEY`), status not active (`API_KEY_NOT_ACTIVE`, naming the status), past
 * `expires_at` (`API_KEY_EXPIRED`), and an IP allowlist that excludes the caller
 * (`IP_NOT_ALLOWED`).
 *
 * @module
 */
import { hashApiKey, type KeyMode, parseApiKey } from "./key_format.ts";
import type { AuthResult, KeyPrincipal, Scope } from "./principal.ts";
import { ipInAnyCidr } from "../http/ip.ts";

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

/** Options of {@link createKeyAuthenticator}. */
export interface KeyAuthOptions {
  store: KeyStore;
  /** Modes this deployment serves; a key of another mode is unknown here. */
  acceptedModes: readonly KeyMode[];
  now?: () => number;
}

/** Authenticates a presented API key. */
export interface KeyAuthenticator {
  authenticate(raw: string | null, clientIp: string | undefined): Promise<AuthResult<KeyPrincipal>>;
}

/** Keys longer than this are refused before any parsing. */
const MAX_KEY_LENGTH = 256;

/** Creates the isolate's key authenticator. */
export function createKeyAuthenticator(options: KeyAuthOptions): KeyAuthenticator {
  const now = options.now ?? Date.now;
  return {
    async authenticate(raw, clientIp) {
      const presented = raw?.trim() ?? "";
      if (presented === "") return { ok: false, code: "MISSING_API_KEY" };
      if (presented.length > MAX_KEY_LENGTH) return { ok: false, code: "INVALID_API_KEY" };
      const parsed = await parseApiKey(presented);
      if (!parsed.ok) {
        return {
          ok: false,
          code: parsed.reason === "format" ? "INVALID_API_KEY_FORMAT" : "INVALID_API_KEY",
        };
      }
      if (!options.acceptedModes.includes(parsed.mode)) {
        return { ok: false, code: "INVALID_API_KEY" };
      }
      const key = await options.store.findByHash(await hashApiKey(presented));
      if (key === null || key.mode !== parsed.mode) return { ok: false, code: "INVALID_API_KEY" };
      if (key.status !== "active") {
        return { ok: false, code: "API_KEY_NOT_ACTIVE", message: `API key is ${key.status}` };
      }
      if (key.expiresAt !== null && key.expiresAt.getTime() <= now()) {
        return { ok: false, code: "API_KEY_EXPIRED" };
      }
      if (key.ipAllowlist !== null && key.ipAllowlist.length > 0) {
        if (clientIp === undefined || !ipInAnyCidr(clientIp, key.ipAllowlist)) {
          return { ok: false, code: "IP_NOT_ALLOWED" };
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
    },
  };
}
