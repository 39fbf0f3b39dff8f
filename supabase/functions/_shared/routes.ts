/**
 * The public route table: which gateway path reaches which function, and where inside it.
 *
 * One table serves the dev server, the tests and the gateway configuration shipped with the
 * project. A gateway path `P` with target `T` maps `P/rest` to `/functions/v1/<fn>T/rest`.
 * Entries are matched in order, so longer paths come before their prefixes.
 *
 * @module
 */

/** The deployable functions. */
export const FUNCTIONS = ["health", "v1-test", "me", "vaults", "api-keys", "openapi"] as const;
/** A function's name. */
export type FunctionName = (typeof FUNCTIONS)[number];

/** One public route. */
export interface GatewayRoute {
  /** Public path prefix. */
  path: string;
  function: FunctionName;
  /** Path inside the function that the prefix maps to. */
  target: string;
  credentials: "none" | "jwt" | "api_key";
}

/** Every public route. */
export const GATEWAY_ROUTES: readonly GatewayRoute[] = [
  { path: "/api/v1/health", function: "health", target: "", credentials: "none" },
  { path: "/api/v1/test", function: "v1-test", target: "", credentials: "api_key" },
  { path: "/api/v1/vaults", function: "vaults", target: "/v1", credentials: "api_key" },
  { path: "/api/vaults", function: "vaults", target: "", credentials: "jwt" },
  { path: "/api/keys", function: "api-keys", target: "", credentials: "jwt" },
  { path: "/api/me", function: "me", target: "", credentials: "jwt" },
  { path: "/api/openapi.json", function: "openapi", target: "", credentials: "none" },
];

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
        other !== route && other.function === route.function && other.target.length >
          route.target.length &&
        (inner === other.target || inner.startsWith(other.target + "/"))
      );
      if (shadowed) return undefined;
      return { route, functionPath: `/functions/v1/${route.function}${inner}` };
    }
  }
  return undefined;
}
