/**
 * The shape of the route manifest (`_shared/manifest.ts`) and the types it gives the functions:
 * a route's credentials decide the principal its handlers receive, and an operation's schemas
 * the query and body they receive, so a JWT handler cannot be written against an API key.
 *
 * @module
 */
import type { z } from "zod";
import type { AppScope, KeyPrincipal, Scope, UserPrincipal } from "../auth/principal.ts";
import type { ErrorCode } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Services } from "../services.ts";
import type { Timing } from "./timing.ts";

/** The credentials a route accepts. */
export type AuthKind = "none" | "jwt" | "api_key";
/** Methods a route may implement. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** An answer an operation documents. */
export interface AnswerSpec {
  status: number;
  description: string;
  schema?: z.ZodType;
}

/** One method of a route: what it is called, what it takes and what it answers. */
export interface OperationSpec {
  /** The OpenAPI operationId, and the name its implementation is given under. */
  id: string;
  summary: string;
  description?: string;
  /** The reference's section. */
  tag: string;
  /** The API-key scope it needs (API-key routes). */
  scope?: Scope;
  /**
   * The scope a third-party app's token needs here (JWT routes). Without it the operation never
   * accepts an app's token (account routes: keys, webhooks, usage, apps, grants).
   */
  appScope?: AppScope;
  /** Query parameters, validated before the handler runs (one property per parameter). */
  query?: z.ZodObject;
  /** JSON body, validated before the handler runs; an optional one may be absent (`{}`). */
  body?: { schema: z.ZodType; required: boolean; maxBytes?: number };
  success: AnswerSpec & { schema?: z.ZodType };
  /** Other answers of the handler itself (not errors of the catalogue). */
  otherResponses?: ReadonlyArray<AnswerSpec & { schema: z.ZodType }>;
  /** Errors the handler raises itself, beyond credentials, rate limits and input checks. */
  errors?: readonly ErrorCode[];
}

/** A route of a function, relative to the function's root (`/`, `/:id`, `/v1/:id/roll`). */
export interface RouteSpec {
  path: string;
  auth: AuthKind;
  /**
   * `false` for routes that monitors and tools poll (health, the reference): never counted
   * against the unauthenticated budget, never refused with 429, no rate-limit headers. Only
   * for routes without credentials whose answer is cheap.
   */
  rateLimited?: false;
  methods: Readonly<Partial<Record<Method, OperationSpec>>>;
}

/** Where the gateway sends a public path prefix: a path inside the function. */
export interface GatewayMount {
  /** Public path prefix, e.g. `/api/v1/vaults`. */
  prefix: string;
  /** Path inside the function the prefix maps to, e.g. `/v1` (or `` for its root). */
  target: string;
}

/** One deployable function. */
export interface FunctionSpec {
  gateway: readonly GatewayMount[];
  routes: readonly RouteSpec[];
  /** Schema of the `{id}` path parameter, for the reference. */
  pathId?: { description: string; schema: Record<string, unknown> };
  /** Schemas of other path parameters (`:delivery_id`), for the reference. */
  pathParams?: Readonly<Record<string, { description: string; schema: Record<string, unknown> }>>;
}

/**
 * The spec of a function that answers one GET at its root, under one public prefix (health, me,
 * account, usage, v1-test, openapi): the mount and the route they would otherwise each write out.
 */
export function rootGet<
  const R extends { auth: AuthKind; rateLimited?: false },
  const O extends OperationSpec,
>(prefix: string, route: R, get: O) {
  return {
    gateway: [{ prefix, target: "" }],
    routes: [{ path: "/", ...route, methods: { GET: get } }],
  } as const satisfies FunctionSpec;
}

/** A small JSON body: key and endpoint management take a few hundred bytes at most. */
export const SMALL_BODY_BYTES = 16 * 1024;

/** A ULID path parameter, as the reference shows it. */
export const ULID_PATH_PARAM = {
  type: "string",
  pattern: "^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$",
  minLength: 26,
  maxLength: 26,
};

/** A ULID path parameter of `thing` ("The grant"), as the reference shows it. */
export function ulidPath(thing: string): { description: string; schema: typeof ULID_PATH_PARAM } {
  return { description: `${thing}'s id (a ULID, case-insensitive)`, schema: ULID_PATH_PARAM };
}

/** The principal a route's handlers receive. */
export type PrincipalFor<A extends AuthKind> = A extends "jwt" ? UserPrincipal
  : A extends "api_key" ? KeyPrincipal
  : undefined;

/** What a handler receives. */
export interface HandlerContext<P = unknown, Q = unknown, B = unknown> {
  req: Request;
  url: URL;
  requestId: string;
  /** The client's address, as far as it can be proven (see ip.ts). */
  ip: string | undefined;
  params: Readonly<Record<string, string>>;
  principal: P;
  query: Q;
  body: B;
  services: Services;
  log: Logger;
  timing: Timing;
}

type QueryOf<O> = O extends { query: infer S extends z.ZodType } ? z.output<S> : undefined;
type BodyOf<O> = O extends { body: { schema: infer S extends z.ZodType } } ? z.output<S>
  : undefined;

/** Every operation of a function's routes, each with its route's credentials. */
type OperationsOf<R> = R extends { auth: infer A; methods: infer M }
  ? { [K in keyof M]: M[K] & { auth: A } }[keyof M]
  : never;

/** A handler of an operation, typed by its route's credentials and its schemas. */
export type OperationHandler<O> = O extends { auth: infer A extends AuthKind }
  ? (ctx: HandlerContext<PrincipalFor<A>, QueryOf<O>, BodyOf<O>>) => Response | Promise<Response>
  : never;

/** The handlers a function must provide: one per operation id of its routes. */
export type Implementations<F extends FunctionSpec> = {
  [O in OperationsOf<F["routes"][number]> as O extends { id: infer I extends string } ? I : never]:
    OperationHandler<O>;
};

/** Any operation's handler, as the pipeline calls it. */
export type AnyHandler = (ctx: HandlerContext) => Response | Promise<Response>;
