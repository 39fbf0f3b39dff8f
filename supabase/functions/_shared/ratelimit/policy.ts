/**
 * Who gets which limits (documented in the README):
 * API keys per tier, per minute and per day (test keys use their tier's higher test limits);
 * signed-in users 1,000 per hour; unauthenticated requests, failed authentications included,
 * 100 per hour per client IP. A third-party app acting for a user (its token admitted on the
 * user's grant): its tier's limits per minute and per day for each of its users, and a ceiling
 * across all its users of {@link APP_CEILING_FACTOR} times those limits; an app's requests do not
 * count against its user's own hour.
 *
 * @module
 */
import type { Principal } from "../auth/principal.ts";
import type { Window } from "./limiter.ts";

/** Requests per hour of a signed-in user (JWT). */
export const USER_PER_HOUR = 1000;
/** Requests per hour of one client IP without valid credentials. */
export const ANONYMOUS_PER_HOUR = 100;

/** Windows of unauthenticated traffic, per client IP. */
export const IP_WINDOWS: readonly Window[] = [
  { name: "hour", limit: ANONYMOUS_PER_HOUR, duration: "1 h" },
];

/** An app's ceiling across all its users, as a multiple of its tier's per-user limits. */
export const APP_CEILING_FACTOR = 10;

const USER_WINDOWS: readonly Window[] = [{ name: "hour", limit: USER_PER_HOUR, duration: "1 h" }];

/** Where a request is counted: a limiter scope, an identifier in it, and its windows. */
export interface Limits {
  scope: string;
  identifier: string;
  windows: readonly Window[];
}

/** The limits an authenticated principal is counted in. */
export function windowsOf(principal: Principal): Limits {
  if (principal.kind === "user" && principal.app) {
    const { clientId, limits } = principal.app;
    return {
      scope: "app",
      // Client ids have no ":" (the database's check), so this names one (app, user).
      identifier: `${clientId}:${principal.userId}`,
      windows: [
        { name: "minute", limit: limits.perMinute, duration: "1 m" },
        { name: "day", limit: limits.perDay, duration: "1 d" },
        {
          name: "appminute",
          limit: limits.perMinute * APP_CEILING_FACTOR,
          duration: "1 m",
          identifier: clientId,
        },
        {
          name: "appday",
          limit: limits.perDay * APP_CEILING_FACTOR,
          duration: "1 d",
          identifier: clientId,
        },
      ],
    };
  }
  if (principal.kind === "user") {
    return { scope: "user", identifier: principal.userId, windows: USER_WINDOWS };
  }
  return {
    scope: "key",
    identifier: principal.keyId,
    windows: [
      { name: "minute", limit: principal.limits.perMinute, duration: "1 m" },
      { name: "day", limit: principal.limits.perDay, duration: "1 d" },
    ],
  };
}
