import assert from "node:assert/strict";
import { compileRoutes, functionPath, matchRoute } from "./router.ts";
import type { RouteSpec } from "./spec.ts";

const op = { id: "x", tag: "T", summary: "x", success: { status: 200, description: "" } };
const routes: RouteSpec[] = [
  { path: "/v1", auth: "api_key", methods: { GET: op } },
  { path: "/v1/:id", auth: "api_key", methods: { GET: op, PATCH: op } },
  { path: "/", auth: "jwt", methods: { GET: op, POST: op } },
  { path: "/:id", auth: "jwt", methods: { GET: op } },
];
const compiled = compileRoutes(routes);

Deno.test("functionPath() is the path below the function's name, wherever it is reached", () => {
  assert.equal(functionPath("/functions/v1/vaults", "vaults"), "/");
  assert.equal(functionPath("/functions/v1/vaults/v1/abc", "vaults"), "/v1/abc");
  assert.equal(functionPath("/vaults/abc", "vaults"), "/abc");
  assert.equal(functionPath("/functions/v1/vaults//v1//abc/", "vaults"), "/v1/abc");
});

Deno.test("matchRoute() takes the first route whose segments match, literal before parameter", () => {
  assert.equal(matchRoute(compiled, "/v1")?.route.spec.path, "/v1");
  assert.equal(matchRoute(compiled, "/v1/abc")?.route.spec.path, "/v1/:id");
  assert.equal(matchRoute(compiled, "/abc")?.route.spec.path, "/:id");
  assert.equal(matchRoute(compiled, "/")?.route.spec.path, "/");
  assert.equal(matchRoute(compiled, "/a/b/c"), undefined);
});

Deno.test("matchRoute() decodes parameters, and refuses what does not decode", () => {
  assert.deepEqual(matchRoute(compiled, "/v1/a%20b")?.params, { id: "a b" });
  assert.equal(matchRoute(compiled, "/v1/%E0%A4%A"), undefined);
});

Deno.test("compileRoutes() lists each route's methods for Allow", () => {
  assert.deepEqual(compiled[1]!.methods, ["GET", "PATCH"]);
});
