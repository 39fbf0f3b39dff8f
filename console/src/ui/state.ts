/**
 * App-wide state: the route (the path, with history.pushState: a static host serves index.html
 * for every path) and the live/test mode switch, which every page lists and creates in.
 */
import { signal } from "@preact/signals";

/** The pages, by path. */
export const ROUTES = {
  "/keys": "API keys",
  "/usage": "Usage",
  "/webhooks": "Webhooks",
  "/apps": "Authorized apps",
  "/account": "Account",
} as const;

export type RoutePath = keyof typeof ROUTES;

function current(): RoutePath {
  const path = location.pathname as RoutePath;
  return path in ROUTES ? path : "/keys";
}

/** The page shown. */
export const route = signal<RoutePath>(current());

/** Shows another page (and records it in the history). */
export function navigate(path: RoutePath): void {
  if (path !== route.value) history.pushState(null, "", path);
  route.value = path;
}

addEventListener("popstate", () => {
  route.value = current();
});

/** Live or test: which keys, usage and endpoints the pages show and create. */
export const mode = signal<"live" | "test">("test");
