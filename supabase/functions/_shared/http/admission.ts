/**
 * Admission: whether a request may reach its handler, decided before any handler code runs.
 *
 * From the route's credentials and the client's address it authenticates the caller (a bearer
 * token or an API key), counts the request against the right rate-limit windows (the key's
 * minute and day, the user's hour, or the address's hour for anonymous and failed requests),
 * confirms a key served from the isolate's cache against the key-state epoch in the same Redis
 * command, and checks the operation's scope. A third-party app's token (a JWT with `client_id`)
 * is refused on routes that take none, and elsewhere admitted on its user's grant to the app
 * (app_grant.ts; a cached grant is confirmed against the grant epoch as keys are), limited per
 * (app, user) and across the app's users, and held to the grant's scopes. The answer is a value the pipeline maps to a
 * response; nothing here builds one.
 *
 * @module
 */
import type {
  AppScope,
  AuthFailure,
  Principal,
  RefusedKey,
  Scope,
  UserPrincipal,
} from "../auth/principal.ts";
import type { Confirmation } from "../auth/epoch.ts";
import type { ErrorCode } from "../errors.ts";
import type { AuthKind } from "./spec.ts";
import type { OperationTarget, Target } from "./router.ts";
import type { Timing } from "./timing.ts";
import type { Decision } from "../ratelimit/limiter.ts";
import { IP_WINDOWS, type Limits, windowsOf } from "../ratelimit/policy.ts";
import type { Services } from "../services.ts";

/** What admission decided. */
export type Admission =
  /** On to the handler; `decision` is absent where nothing is counted. */
  | { kind: "admitted"; principal: Principal | undefined; decision: Decision | undefined }
  /** Refused with a catalogued code (route, method, credentials, scope). */
  | {
    kind: "refused";
    code: ErrorCode;
    message?: string | undefined;
    extra?: Record<string, unknown> | undefined;
    /** RFC 6750 / API-key challenge for `WWW-Authenticate`. */
    challenge?: string | undefined;
    /** The route's methods, for the `Allow` header of a 405. */
    allow?: string | undefined;
    decision: Decision | undefined;
    principal: Principal | undefined;
    /** A refused key's id and owner, for the request log. */
    refusedKey?: RefusedKey | undefined;
  }
  /** Over a rate limit. */
  | { kind: "limited"; decision: Decision; principal: Principal | undefined }
  /** A dependency could not answer (key store down, or the limiter with fail mode closed). */
  | { kind: "unavailable"; principal: Principal | undefined };

/** What admission needs to know of a request. */
export interface AdmissionRequest {
  /** What its path and method came to (a preflight is answered before admission). */
  target: Exclude<Target, { kind: "preflight" }>;
  headers: Headers;
  ip: string | undefined;
}

const REALM = 'realm="torvus"';

/** The `WWW-Authenticate` value of a refused credential, if its scheme has one. */
export function challengeOf(auth: AuthKind, failure: AuthFailure): string | undefined {
  if (auth === "api_key") return `ApiKey ${REALM}, header="X-API-Key"`;
  if (auth !== "jwt") return undefined;
  if (failure.bearerError === undefined) return `Bearer ${REALM}`;
  const description = failure.code === "TOKEN_EXPIRED"
    ? "The access token expired"
    : failure.code === "APP_TOKEN_NOT_ACCEPTED"
    ? "This route does not accept tokens issued to third-party apps"
    : failure.code === "APP_GRANT_NOT_ACTIVE"
    ? "The user's grant to this app is not active"
    : failure.bearerError === "insufficient_scope"
    ? "The access token does not grant access to this resource"
    : failure.bearerError === "invalid_request"
    ? "The Authorization header is malformed"
    : "The access token is invalid";
  return `Bearer ${REALM}, error="${failure.bearerError}", error_description="${description}"`;
}

/**
 * The token of an `Authorization: Bearer` header (RFC 6750 §2.1): `missing` when there is no
 * bearer credential at all, `malformed` when the header is not a single b64token.
 */
export function bearerToken(
  header: string | null,
): { kind: "token"; token: string } | { kind: "missing" } | { kind: "malformed" } {
  if (header === null || header.trim() === "") return { kind: "missing" };
  const match = /^\s*([A-Za-z]+)(?:\s+(.*))?$/.exec(header);
  if (!match || match[1]!.toLowerCase() !== "bearer") return { kind: "missing" };
  const token = (match[2] ?? "").trim();
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) return { kind: "malformed" };
  return { kind: "token", token };
}

type Authenticated = ({ ok: true; principal: Principal } | AuthFailure) & {
  confirm?: Confirmation | undefined;
};

/**
 * The 403 `INSUFFICIENT_SCOPE` of an app's token that lacks the scope an operation needs: its
 * message, `required_scope` and challenge (RFC 6750 §3.1), for admission and for a handler that
 * finds the lack itself (a change the database refused).
 */
export function appScopeRefusal(
  scope: AppScope,
): { message: string; extra: { required_scope: AppScope }; challenge: string } {
  const message = `The app's grant lacks the '${scope}' scope`;
  return {
    message,
    extra: { required_scope: scope },
    challenge: `Bearer ${REALM}, error="insufficient_scope", scope="${scope}", ` +
      `error_description="${message}"`,
  };
}

/**
 * The 403 `INSUFFICIENT_SCOPE` of an API key that lacks the scope an operation needs, for
 * admission and for a handler that finds the need in the body (a vault set `inactive`).
 */
export function keyScopeRefusal(
  scope: Scope,
): { message: string; extra: { required_scope: Scope } } {
  return { message: `API key lacks the '${scope}' scope`, extra: { required_scope: scope } };
}

async function authenticate(
  s: Services,
  target: OperationTarget,
  r: AdmissionRequest,
): Promise<Authenticated> {
  const auth = target.route.spec.auth;
  if (auth === "api_key") return await s.keys.authenticate(r.headers.get("x-api-key"), r.ip);
  const bearer = bearerToken(r.headers.get("authorization"));
  if (bearer.kind === "missing") return { ok: false, code: "MISSING_AUTH_TOKEN" };
  if (bearer.kind === "malformed") {
    return { ok: false, code: "INVALID_AUTH_TOKEN", bearerError: "invalid_request" };
  }
  const verified = await s.jwt.verify(bearer.token);
  if (!verified.ok || verified.principal.clientId === undefined) return verified;
  const principal = verified.principal as UserPrincipal & { clientId: string };
  // An account route takes no app's token, whatever its grant: refused before any lookup.
  if (target.op.appScope === undefined) {
    return {
      ok: false,
      code: "APP_TOKEN_NOT_ACCEPTED",
      bearerError: "insufficient_scope",
      userId: principal.userId,
      clientId: principal.clientId,
    };
  }
  return await s.grants.admit(principal);
}

/**
 * Decides whether a request may reach its handler. A path no route serves and a method its route
 * lacks are refused here too, counted against the client's address as unauthenticated requests.
 */
export async function admit(
  s: Services,
  r: AdmissionRequest,
  timing: Timing,
): Promise<Admission> {
  // Phases are laps (timing.ts): "auth" ends when the credential is checked, "rl" when the
  // limiter has answered, whether it answered or failed.
  const ip: Limits = { scope: "ip", identifier: r.ip ?? "unknown", windows: IP_WINDOWS };
  const count = (limits: Limits, reads?: readonly string[]) =>
    phase(timing, "rl", s.limiter.check(limits.scope, limits.identifier, limits.windows, reads));
  const anonymous = () => count(ip);
  const { target } = r;
  if (target.kind === "no-route") {
    const decision = await anonymous();
    if (!decision.allowed) return { kind: "limited", decision, principal: undefined };
    return refused("NOT_FOUND", decision, { message: "Route not found" });
  }
  const route = target.route.spec;
  const unlimited = route.rateLimited === false && route.auth === "none";
  if (target.kind === "no-method") {
    const decision = unlimited ? undefined : await anonymous();
    if (decision && !decision.allowed) return { kind: "limited", decision, principal: undefined };
    return refused("METHOD_NOT_ALLOWED", decision, { allow: target.route.allow });
  }

  let principal: Principal | undefined;
  let decision: Decision | undefined;
  if (route.auth !== "none") {
    const auth = () => phase(timing, "auth", authenticate(s, target, r));
    // A principal counts in its own windows; a failed authentication against the client's
    // address, so guessing is slow.
    const limitsOf = (res: Authenticated): Limits => res.ok ? windowsOf(res.principal) : ip;
    let result = await auth();
    if (!result.ok && result.unavailable) return { kind: "unavailable", principal: undefined };
    const limits = limitsOf(result);
    // An answer served from cache (a key, a grant or its absence) is confirmed in the same Redis
    // command as the limits it is counted in.
    const confirm = result.confirm;
    let d = await count(limits, confirm?.keys);
    if (confirm !== undefined && !confirm.matches(d.reads)) {
      // It changed since it was cached: looked up again. If what it comes to now counts in other
      // windows, the count made in the old ones is given back and made in the new; if the lookup
      // fails (503), it is given back too.
      result = await auth();
      const unavailable = !result.ok && result.unavailable === true;
      const fresh = limitsOf(result);
      const sameLimits = !unavailable && fresh.scope === limits.scope &&
        fresh.identifier === limits.identifier &&
        JSON.stringify(fresh.windows) === JSON.stringify(limits.windows);
      if (!sameLimits && d.allowed && !d.degraded) {
        s.limiter.refund(limits.scope, limits.identifier, limits.windows);
      }
      if (unavailable) return { kind: "unavailable", principal: undefined };
      if (!sameLimits) d = await count(fresh);
    }
    decision = d;
    if (!result.ok) {
      if (!d.allowed) return { kind: "limited", decision: d, principal: undefined };
      return refused(result.code, d, {
        message: result.message,
        challenge: challengeOf(route.auth, result),
        refusedKey: {
          keyId: result.keyId,
          userId: result.userId,
          mode: result.mode,
          clientId: result.clientId,
        },
      });
    }
    principal = result.principal;
  }

  if (!unlimited) {
    decision ??= await anonymous();
    if (decision.degraded && s.config.rateLimit.failMode === "closed") {
      return { kind: "unavailable", principal };
    }
    if (!decision.allowed) return { kind: "limited", decision, principal };
  }

  const app = principal?.kind === "user" ? principal.app : undefined;
  const appScope = target.op.appScope;
  if (app && appScope && !app.scopes.includes(appScope)) {
    return refused("INSUFFICIENT_SCOPE", decision, { ...appScopeRefusal(appScope), principal });
  }
  const scope = target.op.scope;
  if (principal?.kind === "api_key" && scope && !principal.scopes.includes(scope)) {
    return refused("INSUFFICIENT_SCOPE", decision, { ...keyScopeRefusal(scope), principal });
  }
  return { kind: "admitted", principal, decision };
}

/** Awaits `work`, then ends the phase `name` (a lap), whether it settled or failed. */
async function phase<T>(timing: Timing, name: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } finally {
    timing.lap(name);
  }
}

type Refusal = Extract<Admission, { kind: "refused" }>;

function refused(
  code: ErrorCode,
  decision: Decision | undefined,
  more: Partial<Omit<Refusal, "kind" | "code" | "decision">> = {},
): Refusal {
  return { kind: "refused", code, decision, principal: undefined, ...more };
}
