/**
 * Path matching for the routes of one function.
 *
 * A function is reached at `/functions/v1/<name>/…` (Supabase), at `/<name>/…` (the edge
 * runtime's view) or through the gateway, which rewrites public paths to one of those; in every
 * case the part after the function's name is what its routes match.
 *
 * @module
 */
import type { Method, OperationSpec, RouteSpec } from "./spec.ts";

/** A route with its pattern split into segments. */
export interface CompiledRoute {
  spec: RouteSpec;
  segments: readonly string[];
  methods: readonly Method[];
  /** Its `Allow` header: its methods and OPTIONS. */
  allow: string;
}

/** Splits each route's pattern once, at start-up. */
export function compileRoutes(routes: readonly RouteSpec[]): CompiledRoute[] {
  return routes.map((spec) => {
    const methods = Object.keys(spec.methods) as Method[];
    return {
      spec,
      segments: spec.path.split("/").filter((s) => s !== ""),
      methods,
      allow: [...methods, "OPTIONS"].join(", "),
    };
  });
}

/** What a request's path and method come to. */
export type Target =
  /** An operation of a route, with the route's decoded parameters. */
  | {
    kind: "operation";
    route: CompiledRoute;
    op: OperationSpec;
    params: Readonly<Record<string, string>>;
  }
  /** A CORS preflight of a route. */
  | { kind: "preflight"; route: CompiledRoute }
  /** A route that lacks the method. */
  | { kind: "no-method"; route: CompiledRoute }
  /** No route. */
  | { kind: "no-route"; route?: undefined };

/** A target that is an operation. */
export type OperationTarget = Extract<Target, { kind: "operation" }>;

const NO_ROUTE: Target = { kind: "no-route" };

/** The target of `method` on `path` (the path below the function's name). */
export function resolve(routes: readonly CompiledRoute[], path: string, method: string): Target {
  const match = matchRoute(routes, path);
  if (!match) return NO_ROUTE;
  const { route, params } = match;
  if (method === "OPTIONS") return { kind: "preflight", route };
  // Own properties only: a method named "constructor" or "valueOf" is not an operation.
  const op = Object.hasOwn(route.spec.methods, method)
    ? route.spec.methods[method as Method]
    : undefined;
  return op ? { kind: "operation", route, op, params } : { kind: "no-method", route };
}

/** The path below the function's name, `/` at the function's root. */
export function functionPath(pathname: string, name: string): string {
  const segments = pathname.split("/").filter((s) => s !== "");
  const at = segments.indexOf(name);
  const rest = at === -1 ? segments : segments.slice(at + 1);
  return "/" + rest.join("/");
}

/** The first route matching `path`, with its decoded parameters. */
export function matchRoute(
  routes: readonly CompiledRoute[],
  path: string,
): { route: CompiledRoute; params: Record<string, string> } | undefined {
  const parts = path.split("/").filter((s) => s !== "");
  outer: for (const route of routes) {
    if (route.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    for (let i = 0; i < parts.length; i++) {
      const pattern = route.segments[i]!;
      const part = parts[i]!;
      if (pattern.startsWith(":")) {
        try {
          params[pattern.slice(1)] = decodeURIComponent(part);
        } catch {
          continue outer;
        }
      } else if (pattern !== part) {
        continue outer;
      }
    }
    return { route, params };
  }
  return undefined;
}
