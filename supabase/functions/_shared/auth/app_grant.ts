/**
 * Admission of third-party apps' tokens: a verified JWT with a `client_id` claim acts for its
 * user only while that user's grant to that app is active, with the grant's scopes (those the
 * app still asks for) and the app's tier (`verify_oauth_grant`, db/grants.ts).
 *
 * Lookups are cached per isolate by (user, client id), absent grants included, exactly as API
 * keys' are (api_key.ts): an entry remembers the grant epoch it was read at (grant_epoch.ts) and
 * is trusted only while the epoch reads back unchanged, read in the same Redis command as the
 * request's rate limits (`confirm`); a changed epoch drops the entry and the grant is looked up
 * again. So a grant revoked through the API (which bumps the epoch) is refused on the very next
 * request on every instance, and a grant given after a refusal is seen at once. On a miss the
 * epoch is read before the database, so an entry never pairs old data with a newer epoch; when
 * Redis cannot answer nothing is cached and every request goes to the database.
 *
 * @module
 */
import type { AppAccess, AuthFailure, UserPrincipal } from "./principal.ts";
import { type Confirmation, EpochCache, type EpochSource } from "./epoch.ts";

/** Finds a user's active grant to an app; null when there is none. */
export interface GrantStore {
  find(userId: string, clientId: string): Promise<AppAccess | null>;
}

/** The outcome: the principal with its app's grant, or a refusal; `confirm` when from cache. */
export type GrantResult =
  & ({ ok: true; principal: UserPrincipal } | AuthFailure)
  & { confirm?: Confirmation | undefined };

/** Admits app tokens on their grants. */
export interface GrantAuthenticator {
  /** Looks up the grant of a principal whose token has a `client_id`. */
  admit(principal: UserPrincipal & { clientId: string }): Promise<GrantResult>;
}

/** Options of {@link createGrantAuthenticator}. */
export interface GrantAuthOptions {
  store: GrantStore;
  /** Without an epoch source, nothing is cached. */
  epoch?: EpochSource<string> | undefined;
  cacheSize?: number;
  now?: () => number;
}

/** How long a grant may be served from cache if every epoch bump were lost. */
export const GRANT_CACHE_TTL_MS = 30_000;

/** The refusal of a token whose user has no active grant to its app. */
function notActive(principal: UserPrincipal): AuthFailure {
  return {
    ok: false,
    code: "APP_GRANT_NOT_ACTIVE",
    bearerError: "invalid_token",
    userId: principal.userId,
    ...(principal.clientId ? { clientId: principal.clientId } : {}),
  };
}

/** Creates the isolate's grant authenticator. */
export function createGrantAuthenticator(options: GrantAuthOptions): GrantAuthenticator {
  const now = options.now ?? Date.now;
  const cache = new EpochCache<string, AppAccess | null>(
    options.epoch,
    options.cacheSize ?? 10_000,
  );
  const evaluate = (principal: UserPrincipal, access: AppAccess | null): GrantResult =>
    access === null ? notActive(principal) : { ok: true, principal: { ...principal, app: access } };

  return {
    async admit(principal) {
      const id = `${principal.userId}\n${principal.clientId}`;
      const hit = cache.hit(id, now());
      if (hit) return { ...evaluate(principal, hit.value), confirm: hit.confirm };
      const epoch = await cache.before(principal.userId);
      const access = await options.store.find(principal.userId, principal.clientId);
      // Never beyond the token's own expiry: nothing is kept for a token that cannot come back.
      cache.keep(id, access, epoch, Math.min(now() + GRANT_CACHE_TTL_MS, principal.exp * 1000));
      return evaluate(principal, access);
    },
  };
}
