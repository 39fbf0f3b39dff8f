/**
 * The public route table, derived from the manifest: which gateway path reaches which function,
 * where inside it, and with which credentials. The dev server, the gateway export, the OpenAPI
 * document and the tests read it; nothing here is written twice.
 *
 * A gateway path `P` with target `T` maps `P/rest` to `/functions/v1/<fn>T/rest`. Entries are
 * matched longest prefix first.
 *
 * @module
 */
import { type FunctionName, FUNCTIONS, MANIFEST } from "./manifest.ts";
import type { AuthKind, RouteSpec } from "./http/spec.ts";

export { type FunctionName, FUNCTIONS };

/** One public route. */
export interface GatewayRoute {
  /** Public path prefix. */
  path: string;
  function: FunctionName;
  /** Path inside the function that the prefix maps to. */
  target: string;
  credentials: AuthKind;
}

const segments = (path: string) => path.split("/").filter((s) => s !== "");

/** Whether `path`'s segments start with `prefix`'s. */
export function isBelow(path: string, prefix: string): boolean {
  const p = segments(path);
  return segments(prefix).every((s, i) => p[i] === s);
}

/**
 * The credentials of the routes a mount serves: those below its target that no deeper mount of
 * the same function owns. One kind per mount, or the manifest is refused at start-up.
 */
function credentialsOf(name: FunctionName, target: string): AuthKind {
  const deeper = MANIFEST[name].gateway.filter((m) =>
    m.target !== target && segments(m.target).length > segments(target).length &&
    isBelow(m.target, target)
  );
  const kinds = new Set(
    (MANIFEST[name].routes as readonly RouteSpec[])
      .filter((r) => isBelow(r.path, target) && !deeper.some((m) => isBelow(r.path, m.target)))
      .map((r) => r.auth),
  );
  if (kinds.size !== 1) {
    throw new Error(`mount "${target}" of ${name} serves ${kinds.size} kinds of credentials`);
  }
  return [...kinds][0]!;
}

/** Every public route, longest prefix first. */
export const GATEWAY_ROUTES: readonly GatewayRoute[] = FUNCTIONS
  .flatMap((name) =>
    MANIFEST[name].gateway.map((m) => ({
      path: m.prefix,
      function: name,
      target: m.target,
      credentials: credentialsOf(name, m.target),
    }))
  )
  .sort((a, b) => b.path.length - a.path.length);

/** The function path a public path maps to, or undefined when no route has it. */
export function resolveGatewayPath(
  pathname: string,
): { route: GatewayRoute; functionPath: string } | undefined {
  for (const route of GATEWAY_ROUTES) {
    if (pathname === route.path || pathname.startsWith(route.path + "/")) {
      // Empty segments are collapsed first: `/api/vaults//v1` is `/api/vaults/v1` to a router.
      const inner = (route.target + pathname.slice(route.path.length)).replace(/\/{2,}/g, "/");
      // `/api/vaults/v1` must not reach the API-key routes that `/api/v1/vaults` maps to.
      const shadowed = GATEWAY_ROUTES.some((other) =>
        other !== route && other.function === route.function &&
        other.target.length > route.target.length &&
        (inner === other.target || inner.startsWith(other.target + "/"))
      );
      if (shadowed) return undefined;
      return { route, functionPath: `/functions/v1/${route.function}${inner}` };
    }
  }
  return undefined;
}
