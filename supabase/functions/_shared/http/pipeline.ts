/**
 * The request pipeline every function shares, built from the function's entry in the manifest
 * and the implementations of its operations:
 *
 *   origin (gateway or direct) → route → CORS preflight / 405 → admission (credentials, rate
 *   limits, scope) → input (query, body) → handler → headers, log line, request-log row.
 *
 * Each step answers with a value; the one place errors become responses is `failure.ts`.
 * A function's `index.ts` is `Deno.serve(serveFunction(name, spec, operations))`, with the spec
 * of its own folder (`spec.ts`): a function loads no other function's schemas.
 *
 * @module
 */
import { type Admission, admit, countAnonymous, type RefusedKey } from "../auth/admission.ts";
import type { Principal } from "../auth/principal.ts";
import type { ErrorCode } from "./errors.ts";
import { ApiError } from "./errors.ts";
import { codeOf, errorResponse, exceptionResponse, limitedResponse } from "./failure.ts";
import { parseQuery, readJson } from "./input.ts";
import { ALLOWED_HEADERS, corsHeaders, rateLimitHeaders, Timing } from "./respond.ts";
import { type CompiledRoute, compileRoutes, functionPath, matchRoute } from "./router.ts";
import type {
  AnyHandler,
  FunctionSpec,
  HandlerContext,
  Implementations,
  Method,
  OperationSpec,
} from "./spec.ts";
import type { Decision } from "../ratelimit/limiter.ts";
import { type Boot, bootIsolate, type Services } from "../services.ts";
import { ConfigError } from "../config.ts";

/** A handler as `Deno.serve` calls it. */
export type Handler = (req: Request, info?: Deno.ServeHandlerInfo) => Promise<Response>;

/** What one request came to, for its headers, log line and request-log row. */
interface Outcome {
  response: Response;
  code?: ErrorCode | undefined;
  principal?: Principal | undefined;
  decision?: Decision | undefined;
  /** A refused key's id and owner. */
  refusedKey?: RefusedKey | undefined;
  /** An unexpected error, for the error reporter. */
  error?: unknown;
}

/** Options of {@link createHandler}. */
export interface FunctionOptions {
  name: string;
  spec: FunctionSpec;
  implementations: Readonly<Record<string, AnyHandler>>;
  /** The isolate's services, or the configuration error that left it without. */
  boot: Boot;
}

/** The handler of a function, from its spec and its operations, with the isolate's services. */
export function serveFunction<S extends FunctionSpec>(
  name: string,
  spec: S,
  implementations: Implementations<S>,
): Handler {
  return createHandler({
    name,
    spec,
    implementations: implementations as unknown as Readonly<Record<string, AnyHandler>>,
    boot: bootIsolate(),
  });
}

/** The pipeline for a function spec, its implementations and services (tests build their own). */
export function createHandler(options: FunctionOptions): Handler {
  const { name, spec, implementations } = options;
  const compiled = compileRoutes(spec.routes);
  for (const route of compiled) {
    for (const op of Object.values(route.spec.methods) as OperationSpec[]) {
      if (typeof implementations[op.id] !== "function") {
        throw new Error(`function ${name}: operation "${op.id}" has no implementation`);
      }
    }
  }
  if (options.boot instanceof ConfigError) return misconfigured;
  const s = options.boot.services;
  // A function that counts requests opens its Redis connection now, not at its first request.
  if (compiled.some((r) => r.spec.rateLimited !== false)) options.boot.warm?.();

  return async (req, info) => {
    const started = performance.now();
    const requestId = crypto.randomUUID();
    const url = new URL(req.url);
    const timing = new Timing(started);
    const log = s.log.child({ request_id: requestId });
    const peer = info?.remoteAddr?.transport === "tcp" ? info.remoteAddr.hostname : undefined;
    const origin = s.addresses.origin(req.headers, peer);
    const match = matchRoute(compiled, functionPath(url.pathname, name));
    const jwtRoute = match?.route.spec.auth === "jwt";
    let outcome: Outcome;
    if (origin.via === "refused") {
      // No I/O for a request around the gateway: a flood of them costs nothing but this.
      outcome = { response: errorResponse("GATEWAY_REQUIRED", requestId, 0, { jwtRoute }) };
      outcome.code = "GATEWAY_REQUIRED";
    } else {
      const request = { req, url, requestId, ip: origin.ip, log, timing };
      outcome = await route(s, request, match, implementations).catch((error) => ({
        response: exceptionResponse(error, requestId, s.now(), log, { jwtRoute }),
        code: codeOf(error),
        error,
      }));
    }
    return finish(s, name, req, url, requestId, started, timing, origin, outcome, log);
  };
}

interface Request0 {
  req: Request;
  url: URL;
  requestId: string;
  ip: string | undefined;
  log: HandlerContext["log"];
  timing: Timing;
}

/** From the route to the handler's answer. */
async function route(
  s: Services,
  r: Request0,
  match: ReturnType<typeof matchRoute>,
  implementations: Readonly<Record<string, AnyHandler>>,
): Promise<Outcome> {
  const { req, requestId } = r;
  if (!match) {
    const decision = await countAnonymous(s, r.ip, r.timing);
    if (!decision.allowed) return limited(s, decision, requestId, false, undefined);
    const response = errorResponse("NOT_FOUND", requestId, s.now(), {
      message: "Route not found",
      decision,
    });
    return { response, code: "NOT_FOUND", decision };
  }
  const compiled: CompiledRoute = match.route;
  const routeSpec = compiled.spec;
  const jwtRoute = routeSpec.auth === "jwt";
  const allow = [...compiled.methods, "OPTIONS"].join(", ");
  const unlimited = routeSpec.rateLimited === false && routeSpec.auth === "none";

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
  const op = Object.hasOwn(routeSpec.methods, req.method)
    ? routeSpec.methods[req.method as Method]
    : undefined;
  if (!op) {
    // Answered before authentication, so it counts as an unauthenticated request.
    const decision = unlimited ? undefined : await countAnonymous(s, r.ip, r.timing);
    if (decision && !decision.allowed) return limited(s, decision, requestId, jwtRoute, undefined);
    const response = errorResponse("METHOD_NOT_ALLOWED", requestId, s.now(), {
      decision,
      headers: { Allow: allow },
    });
    return { response, code: "METHOD_NOT_ALLOWED", decision };
  }

  const admission = await admit(s, {
    auth: routeSpec.auth,
    scope: op.scope,
    headers: req.headers,
    ip: r.ip,
    unlimited,
  }, r.timing);
  if (admission.kind !== "admitted") return refusal(s, admission, requestId, jwtRoute);
  const { principal, decision } = admission;

  try {
    const ctx: HandlerContext = {
      req,
      url: r.url,
      requestId,
      ip: r.ip,
      params: match.params,
      principal,
      query: op.query ? parseQuery(r.url, op.query) : undefined,
      body: op.body ? await readBody(req, op.body) : undefined,
      services: s,
      log: r.log,
      timing: r.timing,
    };
    const response = await implementations[op.id]!(ctx);
    if (decision) rateLimitHeaders(response.headers, decision, s.now());
    return { response, principal, decision };
  } catch (error) {
    // A handler that failed after the rate limit still reports where its caller stands.
    const response = exceptionResponse(error, requestId, s.now(), r.log, { jwtRoute, decision });
    return {
      response,
      code: codeOf(error),
      principal,
      decision,
      ...(error instanceof ApiError ? {} : { error }),
    };
  }
}

function readBody(req: Request, body: NonNullable<OperationSpec["body"]>): Promise<unknown> {
  return readJson(req, body.schema, { maxBytes: body.maxBytes, optional: !body.required });
}

function limited(
  s: Services,
  decision: Decision,
  requestId: string,
  jwtRoute: boolean,
  principal: Principal | undefined,
): Outcome {
  if (principal?.kind === "api_key") s.webhooks.rateLimited(principal, decision);
  const response = limitedResponse(decision, requestId, s.now(), jwtRoute);
  return { response, code: "RATE_LIMIT_EXCEEDED", decision, principal };
}

/** The answer to a request admission did not let through. */
function refusal(
  s: Services,
  a: Exclude<Admission, { kind: "admitted" }>,
  requestId: string,
  jwtRoute: boolean,
): Outcome {
  switch (a.kind) {
    case "limited":
      return limited(s, a.decision, requestId, jwtRoute, a.principal);
    case "unavailable": {
      const response = errorResponse("SERVICE_UNAVAILABLE", requestId, s.now(), {
        jwtRoute,
        headers: { "Retry-After": "1" },
      });
      return { response, code: "SERVICE_UNAVAILABLE", principal: a.principal };
    }
    case "refused": {
      const response = errorResponse(a.code, requestId, s.now(), {
        jwtRoute,
        decision: a.decision,
        ...(a.message === undefined ? {} : { message: a.message }),
        ...(a.extra === undefined ? {} : { extra: a.extra }),
        ...(a.challenge === undefined ? {} : { headers: { "WWW-Authenticate": a.challenge } }),
      });
      return {
        response,
        code: a.code,
        principal: a.principal,
        decision: a.decision,
        refusedKey: a.refusedKey,
      };
    }
  }
}

/** The headers every answer carries, its log line, its request-log row and error report. */
function finish(
  s: Services,
  name: string,
  req: Request,
  url: URL,
  requestId: string,
  started: number,
  timing: Timing,
  origin: { via: string; ip: string | undefined },
  outcome: Outcome,
  log: HandlerContext["log"],
): Response {
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
  const keyId = p?.kind === "api_key" ? p.keyId : outcome.refusedKey?.keyId;
  const userId = p?.userId ?? outcome.refusedKey?.userId;
  const mode = p?.mode ?? outcome.refusedKey?.mode;
  const status = response.status;
  // One structured line per request, sampled under load (never a 5xx), never a credential.
  if (s.requestLines.admit(status)) {
    log[status >= 500 ? "error" : "info"]("request", {
      function: name,
      method: req.method,
      path: url.pathname,
      status,
      code: outcome.code,
      latency_ms: Math.round(elapsed * 100) / 100,
      ip: origin.ip,
      via: origin.via,
      key_id: keyId,
      user_id: userId,
      mode,
    });
  }
  if (outcome.error !== undefined && outcome.code === "INTERNAL_ERROR") {
    s.reporter.capture(outcome.error, {
      requestId,
      function: name,
      route: url.pathname,
      method: req.method,
      keyId,
      userId,
      code: "INTERNAL_ERROR",
      responseTimeMs: elapsed,
      level: "error",
    });
  }
  // Requests refused around the gateway cost no write: nobody can fill the table that way.
  if (req.method !== "OPTIONS" && outcome.code !== "GATEWAY_REQUIRED" && (p || status >= 400)) {
    s.audit.record({
      requestId,
      keyId,
      userId,
      mode,
      method: req.method,
      path: url.pathname,
      status,
      code: outcome.code,
      latencyMs: elapsed,
      ip: origin.ip,
      userAgent: req.headers.get("user-agent") ?? undefined,
      at: new Date(s.now()),
    });
  }
  return response;
}

/** Every request of an isolate whose configuration is invalid: 503, logged once at start. */
function misconfigured(): Promise<Response> {
  const requestId = crypto.randomUUID();
  const response = errorResponse("CONFIGURATION_INVALID", requestId, 0, {
    headers: { "Retry-After": "30" },
  });
  response.headers.set("X-Request-ID", requestId);
  response.headers.set("X-Response-Time", "0.00");
  response.headers.set("Cache-Control", "no-store");
  corsHeaders(response.headers);
  return Promise.resolve(response);
}
