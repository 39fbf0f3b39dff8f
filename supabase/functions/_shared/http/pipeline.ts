/**
 * The request pipeline every function shares, built from the function's entry in the manifest
 * and the implementations of its operations:
 *
 *   origin (gateway or direct) → route (router.ts) → admission (admission.ts: path, method,
 *   credentials, rate limits, scope) → input and handler → response (respond.ts) → the
 *   `answered` event, whose handlers write the log line, the request-log row and webhooks.
 *
 * One state object (context.ts) carries the request through these steps and is what handlers
 * receive. Each step answers with a value; the one place answers are built is `respond.ts`.
 * A function's `index.ts` is `Deno.serve(serveFunction(name, spec, operations))`, with the spec
 * of its own folder (`spec.ts`): a function loads no other function's schemas.
 *
 * @module
 */
import { admit } from "./admission.ts";
import { ConfigError } from "../config.ts";
import { type Boot, bootIsolate } from "../services.ts";
import { RequestState } from "./context.ts";
import { ApiError } from "../errors.ts";
import { parseQuery, readJson } from "./input.ts";
import {
  codeOf,
  errorResponse,
  exceptionResponse,
  finish,
  misconfiguredResponse,
  preflightResponse,
  rateLimitHeaders,
  refusalResponse,
} from "./respond.ts";
import { compileRoutes, functionPath, type OperationTarget, resolve } from "./router.ts";
import type { AnyHandler, FunctionSpec, Implementations, OperationSpec } from "./spec.ts";

/** A handler as `Deno.serve` calls it. */
export type Handler = (req: Request, info?: Deno.ServeHandlerInfo) => Promise<Response>;

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
  const routes = compileRoutes(spec.routes);
  for (const route of routes) {
    for (const op of Object.values(route.spec.methods) as OperationSpec[]) {
      if (typeof implementations[op.id] !== "function") {
        throw new Error(`function ${name}: operation "${op.id}" has no implementation`);
      }
    }
  }
  if (options.boot instanceof ConfigError) return () => Promise.resolve(misconfiguredResponse());
  const s = options.boot.services;
  // A function that counts requests opens its Redis connection now, not at its first request.
  if (routes.some((r) => r.spec.rateLimited !== false)) options.boot.warm?.();

  return async (req, info) => {
    // Origin: the request's state, with where it came from.
    const c = new RequestState(s, name, req, info);
    // Route: what its path and method come to.
    const target = resolve(routes, functionPath(c.path, name), c.method);
    const jwtRoute = target.route?.spec.auth === "jwt";
    let response: Response;
    try {
      if (c.via === "refused") {
        // No I/O for a request around the gateway: a flood of them costs nothing but this.
        c.code = "GATEWAY_REQUIRED";
        response = errorResponse(c.code, c.requestId, 0, { jwtRoute });
      } else if (target.kind === "preflight") {
        response = preflightResponse(target.route.allow);
      } else {
        // Admission: credentials, rate limits, scope.
        const a = await admit(s, { target, headers: req.headers, ip: c.ip }, c.timing);
        c.principal = a.principal;
        if (a.kind !== "admitted") {
          if (a.kind !== "unavailable") c.decision = a.decision;
          if (a.kind === "refused") c.refusedKey = a.refusedKey;
          c.code = a.kind === "refused"
            ? a.code
            : a.kind === "limited"
            ? "RATE_LIMIT_EXCEEDED"
            : "SERVICE_UNAVAILABLE";
          response = refusalResponse(a, c.requestId, s.now(), jwtRoute);
        } else {
          // Handler: its input checked, then called with the request's state.
          c.decision = a.decision;
          const { op, params } = target as OperationTarget;
          c.params = params;
          if (op.query) c.query = parseQuery(c.url, op.query);
          if (op.body) {
            const { schema, maxBytes, required } = op.body;
            c.body = await readJson(req, schema, { maxBytes, optional: !required });
          }
          response = await implementations[op.id]!(c);
          if (c.decision) rateLimitHeaders(response.headers, c.decision, s.now());
        }
      }
    } catch (error) {
      // A failure after the rate limit still reports where its caller stands.
      c.code = codeOf(error);
      if (!(error instanceof ApiError)) c.error = error;
      response = exceptionResponse(error, c.requestId, s.now(), c.log, {
        jwtRoute,
        decision: c.decision,
      });
    }
    // Response: the headers every answer carries; then the services' work after it.
    finish(c, response);
    s.events.answered(c);
    return response;
  };
}
