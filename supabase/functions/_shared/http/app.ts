/**
 * The request pipeline every function shares: context, routing, CORS and method checks,
 * authentication, rate limiting, the handler, and the headers and audit record of every answer.
 *
 * A function declares its routes (paths relative to the function, the credential each accepts,
 * and one operation per method) and exports the handler {@link defineFunction} returns; its
 * `index.ts` only passes that handler to `Deno.serve`.
 *
 * @module
 */
import type { KeyPrincipal, Principal, Scope, UserPrincipal } from "../auth/principal.ts";
import { ApiError, errorBody, type ErrorCode, type ErrorOptions, statusOf } from "./errors.ts";
import type { Origin } from "./ip.ts";
import {
  ALLOWED_HEADERS,
  corsHeaders,
  json,
  rateLimitHeaders,
  retryAfter,
  Timing,
} from "./respond.ts";
import { authenticate, wwwAuthenticate } from "./authenticate.ts";
import { codeOf, failure } from "./failure.ts";
import { getServices, type Services } from "../services.ts";
import { IP_WINDOWS, windowsOf } from "../ratelimit/policy.ts";
import type { Decision } from "../ratelimit/limiter.ts";
import { log as rootLog, type Logger } from "../log.ts";
import { type CompiledRoute, compileRoutes, functionPath, matchRoute } from "./router.ts";

/** The credentials a route accepts. */
export type AuthKind = "none" | "jwt" | "api_key";
/** Methods a route may implement. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** What a handler receives. */
export interface RequestContext<P extends Principal | undefined = Principal | undefined> {
  req: Request;
  url: URL;
  requestId: string;
  ip: string | undefined;
  params: Readonly<Record<string, string>>;
  principal: P;
  services: Services;
  log: Logger;
  timing: Timing;
}

/** One method of a route. */
export interface Operation {
  handler: (ctx: RequestContext) => Promise<Response>;
  /** The API-key scope this operation needs. */
  scope?: Scope;
}

/** A route of a function, relative to the function's root (`/`, `/:id`, `/v1/:id/roll`). */
export interface RouteSpec {
  path: string;
  auth: AuthKind;
  methods: Partial<Record<Method, Operation>>;
  /**
   * `false` for routes that monitors and tools poll (health, the reference): never counted
   * against the unauthenticated budget, never refused with 429, no rate-limit headers. Only
   * for routes without credentials whose answer is cheap.
   */
  rateLimited?: false;
}

/** Options of {@link defineFunction}. */
export interface FunctionOptions {
  /** Services to use instead of the isolate's (tests). */
  services?: () => Services;
}

/** A handler as `Deno.serve` calls it. */
export type Handler = (req: Request, info?: Deno.ServeHandlerInfo) => Promise<Response>;

/** The user principal of a JWT route (the pipeline guarantees it). */
export function userOf(ctx: RequestContext): UserPrincipal {
  if (ctx.principal?.kind !== "user") throw new Error("route is not a JWT route");
  return ctx.principal;
}

/** The key principal of an API-key route (the pipeline guarantees it). */
export function keyOf(ctx: RequestContext): KeyPrincipal {
  if (ctx.principal?.kind !== "api_key") throw new Error("route is not an API-key route");
  return ctx.principal;
}

interface Outcome {
  response: Response;
  principal?: Principal | undefined;
  /** A refused key's id and owner, for the request log. */
  refused?: { keyId?: string | undefined; userId?: string | undefined } | undefined;
  code?: ErrorCode | undefined;
  decision?: Decision | undefined;
}

/** Builds the handler of a function from its routes. */
export function defineFunction(
  name: string,
  routes: readonly RouteSpec[],
  options: FunctionOptions = {},
): Handler {
  const compiled = compileRoutes(routes);
  const services = options.services ?? getServices;

  return async (req, info) => {
    const started = performance.now();
    const requestId = crypto.randomUUID();
    const url = new URL(req.url);
    const timing = new Timing();
    const reqLog = rootLog.child({ request_id: requestId });
    let outcome: Outcome;
    let s: Services | undefined;
    let ip: string | undefined;
    let via: Origin["via"] | undefined;
    let jwtRoute = false;
    let internalError: unknown;
    // Who the request acts for, once known: kept for the log line, the audit record and the
    // error report even when the handler throws.
    let principal: Principal | undefined;
    let decision: Decision | undefined;
    try {
      s = services();
      const peer = info?.remoteAddr?.transport === "tcp" ? info.remoteAddr.hostname : undefined;
      const origin = s.addresses.origin(req.headers, peer);
      ({ ip, via } = origin);
      const match = matchRoute(compiled, functionPath(url.pathname, name));
      jwtRoute = match?.route.spec.auth === "jwt";
      outcome = origin.via === "refused"
        ? refusedDirect(requestId, jwtRoute)
        : await pipeline(req, url, s, match, {
          requestId,
          ip,
          timing,
          log: reqLog,
          authenticated: (p) => {
            principal = p;
          },
          decided: (d) => {
            decision = d;
          },
        });
    } catch (error) {
      outcome = {
        response: failure(error, requestId, reqLog, jwtRoute),
        code: codeOf(error),
        principal,
      };
      // A handler that failed after the rate limit still reports where its caller stands.
      if (decision) rateLimitHeaders(outcome.response.headers, decision, Date.now());
      if (outcome.code === "INTERNAL_ERROR") internalError = error;
    }
    const { response } = outcome;
    const elapsed = performance.now() - started;
    const headers = response.headers;
    headers.set("X-Request-ID", requestId);
    headers.set("X-Response-Time", elapsed.toFixed(2));
    if (!headers.has("Cache-Control")) headers.set("Cache-Control", "no-store");
    corsHeaders(headers);
    const serverTiming = timing.header();
    if (serverTiming) headers.set("Server-Timing", serverTiming);

    const p = outcome.principal;
    const identity = {
      key_id: p?.kind === "api_key" ? p.keyId : outcome.refused?.keyId,
      user_id: p?.userId ?? outcome.refused?.userId,
      mode: p?.mode,
    };
    // One structured line per request, sampled under load (5xx never); never a credential (and
    // log.ts redacts as a backstop).
    const written = s?.requestLines.admit(response.status) ?? true;
    if (written) {
      reqLog[response.status >= 500 ? "error" : "info"]("request", {
        function: name,
        method: req.method,
        path: url.pathname,
        status: response.status,
        code: outcome.code,
        latency_ms: Math.round(elapsed * 100) / 100,
        ip,
        via,
        ...identity,
      });
    }
    if (internalError !== undefined) {
      s?.reporter.capture(internalError, {
        requestId,
        function: name,
        route: url.pathname,
        method: req.method,
        keyId: identity.key_id,
        userId: identity.user_id,
        code: "INTERNAL_ERROR",
        responseTimeMs: elapsed,
        level: "error",
      });
    }
    if (s && req.method !== "OPTIONS" && (p || response.status >= 400)) {
      s.audit.record({
        requestId,
        keyId: identity.key_id,
        userId: identity.user_id,
        mode: identity.mode,
        method: req.method,
        path: url.pathname,
        status: response.status,
        code: outcome.code,
        latencyMs: elapsed,
        ip,
        userAgent: req.headers.get("user-agent") ?? undefined,
        at: new Date(),
      });
    }
    return response;
  };
}

/**
 * A direct request where only the gateway may call: answered before anything else, with no
 * I/O, so a flood of them costs nothing but this.
 */
function refusedDirect(requestId: string, jwtRoute: boolean): Outcome {
  const code = "GATEWAY_REQUIRED";
  return { response: json(errorBody(code, requestId, { jwtRoute }), statusOf(code)), code };
}

interface PipelineContext {
  requestId: string;
  ip: string | undefined;
  timing: Timing;
  log: Logger;
  /** Told the principal as soon as authentication succeeds. */
  authenticated: (principal: Principal) => void;
  /** Told the rate-limit decision once it is made. */
  decided: (decision: Decision) => void;
}

async function pipeline(
  req: Request,
  url: URL,
  s: Services,
  match: ReturnType<typeof matchRoute>,
  pc: PipelineContext,
): Promise<Outcome> {
  const now = Date.now;
  const anonymousLimit = () =>
    pc.timing.measure("rl", () => s.limiter.check("ip", pc.ip ?? "unknown", IP_WINDOWS));
  const errorOutcome = (
    code: ErrorCode,
    decision: Decision | undefined,
    opts: ErrorOptions = {},
    headers: HeadersInit = {},
  ): Outcome => {
    const response = json(errorBody(code, pc.requestId, opts), statusOf(code), headers);
    if (decision) rateLimitHeaders(response.headers, decision, now());
    return { response, code, decision };
  };
  const limited = (decision: Decision, jwtRoute: boolean): Outcome => {
    const seconds = retryAfter(decision, now());
    const o = errorOutcome("RATE_LIMIT_EXCEEDED", decision, {
      message: `Rate limit exceeded. Try again in ${seconds} seconds.`,
      extra: { retry_after: seconds },
      jwtRoute,
    });
    // One clock reading for header and body, so they never differ across a second boundary.
    o.response.headers.set("Retry-After", String(seconds));
    return o;
  };
  const failClosed = (d: Decision) => d.degraded && s.config.rateLimit.failMode === "closed";

  if (!match) {
    const d = await anonymousLimit();
    if (!d.allowed) return limited(d, false);
    return errorOutcome("NOT_FOUND", d, { message: "Route not found" });
  }
  const route: CompiledRoute = match.route;
  const jwtRoute = route.spec.auth === "jwt";
  const allow = [...route.methods, "OPTIONS"].join(", ");
  const unlimited = route.spec.rateLimited === false && route.spec.auth === "none";

  if (req.method === "OPTIONS") {
    const headers = new Headers({
      Allow: allow,
      "Access-Control-Allow-Methods": allow,
      "Access-Control-Allow-Headers": ALLOWED_HEADERS,
      "Access-Control-Max-Age": "86400",
    });
    return { response: new Response(null, { status: 204, headers }) };
  }
  // Own properties only: a method named "constructor" or "valueOf" is not an operation.
  const operation = Object.hasOwn(route.spec.methods, req.method)
    ? route.spec.methods[req.method as Method]
    : undefined;
  if (!operation) {
    if (unlimited) return errorOutcome("METHOD_NOT_ALLOWED", undefined, {}, { Allow: allow });
    // Answered before authentication, so it counts as an unauthenticated request.
    const d = await anonymousLimit();
    if (!d.allowed) return limited(d, jwtRoute);
    return errorOutcome("METHOD_NOT_ALLOWED", d, {}, { Allow: allow });
  }

  // Authenticate.
  // Authenticate, then rate-limit. A key served from cache is confirmed in the same Redis
  // round trip as its rate-limit check; if its state changed meanwhile it is looked up again.
  let principal: Principal | undefined;
  let decision: Decision | undefined;
  if (route.spec.auth !== "none") {
    const auth = () =>
      pc.timing.measure("auth", () => authenticate(req, route.spec.auth, s, pc.ip));
    let result = await auth();
    if (result.ok) {
      const { scope, identifier, windows } = windowsOf(result.principal);
      const confirm = result.confirm;
      const [d, confirmed] = await pc.timing.measure(
        "rl",
        () =>
          Promise.all([s.limiter.check(scope, identifier, windows), confirm ? confirm() : true]),
      );
      decision = d;
      if (!confirmed) {
        // The key changed since it was cached: look it up again. If it is still valid but its
        // limits changed, the decision made under the old limits is given back and redone.
        result = await auth();
        const fresh = result.ok ? windowsOf(result.principal) : undefined;
        const sameLimits = fresh !== undefined && fresh.identifier === identifier &&
          JSON.stringify(fresh.windows) === JSON.stringify(windows);
        if (!sameLimits && d.allowed && !d.degraded) s.limiter.refund(scope, identifier, windows);
        if (fresh && !sameLimits) {
          decision = await pc.timing.measure(
            "rl",
            () => s.limiter.check(fresh.scope, fresh.identifier, fresh.windows),
          );
        }
      }
    }
    if (!result.ok) {
      if (result.unavailable) {
        return errorOutcome("SERVICE_UNAVAILABLE", undefined, { jwtRoute }, { "Retry-After": "1" });
      }
      // Failed authentications count against the client IP, so guessing is slow and quiet.
      const d = await anonymousLimit();
      if (!d.allowed) return limited(d, jwtRoute);
      const challenge = wwwAuthenticate(route.spec.auth, result);
      const opts: ErrorOptions = result.message === undefined ? { jwtRoute } : {
        jwtRoute,
        message: result.message,
      };
      const o = errorOutcome(
        result.code,
        d,
        opts,
        challenge ? { "WWW-Authenticate": challenge } : {},
      );
      return { ...o, refused: { keyId: result.keyId, userId: result.userId } };
    }
    principal = result.principal;
    pc.authenticated(principal);
  }

  if (!unlimited) {
    decision ??= await anonymousLimit();
    pc.decided(decision);
    if (failClosed(decision)) {
      const o = errorOutcome("SERVICE_UNAVAILABLE", undefined, { jwtRoute }, {
        "Retry-After": "1",
      });
      return { ...o, principal };
    }
    if (!decision.allowed) return { ...limited(decision, jwtRoute), principal };
  }

  // Authorise the key's scope for this method.
  if (
    principal?.kind === "api_key" && operation.scope && !principal.scopes.includes(operation.scope)
  ) {
    const o = errorOutcome("INSUFFICIENT_SCOPE", decision, {
      message: `API key lacks the '${operation.scope}' scope`,
      extra: { required_scope: operation.scope },
    });
    return { ...o, principal };
  }

  const ctx: RequestContext = {
    req,
    url,
    requestId: pc.requestId,
    ip: pc.ip,
    params: match.params,
    principal,
    services: s,
    log: pc.log,
    timing: pc.timing,
  };
  let response: Response;
  try {
    response = await operation.handler(ctx);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const o = errorOutcome(error.code, decision, { ...error.options, jwtRoute });
    return { ...o, principal };
  }
  if (decision) rateLimitHeaders(response.headers, decision, now());
  return { response, principal, decision };
}
