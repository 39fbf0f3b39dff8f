import assert from "node:assert/strict";
import { FUNCTIONS, GATEWAY_ROUTES, resolveGatewayPath } from "./routes.ts";
import { MANIFEST, operations } from "./manifest.ts";

Deno.test("GATEWAY_ROUTES states each mount's credentials from the manifest's routes", () => {
  const table = Object.fromEntries(
    GATEWAY_ROUTES.map((r) => [r.path, [r.function, r.target, r.credentials]]),
  );
  assert.deepEqual(table, {
    "/api/v1/health": ["health", "", "none"],
    "/api/v1/test": ["v1-test", "", "api_key"],
    "/api/me": ["me", "", "jwt"],
    "/api/account": ["account", "", "jwt"],
    "/api/v1/vaults": ["vaults", "/v1", "api_key"],
    "/api/vaults": ["vaults", "", "jwt"],
    "/api/keys": ["api-keys", "", "jwt"],
    "/api/usage": ["usage", "", "jwt"],
    "/api/webhooks": ["webhooks", "", "jwt"],
    "/api/apps": ["apps", "", "jwt"],
    "/api/grants": ["grants", "", "jwt"],
    "/api/openapi.json": ["openapi", "", "none"],
  });
});

Deno.test("resolveGatewayPath() maps public paths below their prefix, and nothing else", () => {
  const to = (p: string) => resolveGatewayPath(p)?.functionPath;
  assert.equal(to("/api/v1/vaults/abc"), "/functions/v1/vaults/v1/abc");
  assert.equal(to("/api/vaults/abc"), "/functions/v1/vaults/abc");
  assert.equal(to("/api/keys/01ABC/roll"), "/functions/v1/api-keys/01ABC/roll");
  assert.equal(to("/api/v1/test"), "/functions/v1/v1-test");
  assert.equal(
    to("/api/webhooks/01ABC/deliveries/01DEF/retry"),
    "/functions/v1/webhooks/01ABC/deliveries/01DEF/retry",
  );
  for (
    const p of [
      "/api/vaults/v1",
      "/api/vaults/v1/x",
      "/api/vaults//v1/x",
      "/api/mexyz",
      "/health",
      "/",
    ]
  ) {
    assert.equal(to(p), undefined, p);
  }
});

Deno.test("every function folder is in the manifest and implements its operations, no other", async () => {
  const folders = [...Deno.readDirSync(new URL("../", import.meta.url))]
    .filter((e) => e.isDirectory && !e.name.startsWith("_")).map((e) => e.name);
  assert.deepEqual(folders.sort(), [...FUNCTIONS].sort());
  for (const name of FUNCTIONS) {
    const { operations: implemented } = await import(`../${name}/handler.ts`);
    const ids = operations().filter((o) => o.function === name).map((o) => o.operation.id).sort();
    assert.deepEqual(Object.keys(implemented).sort(), ids, name);
  }
});

Deno.test("operation ids are unique across the manifest", () => {
  const ids = operations().map((o) => o.operation.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(Object.keys(MANIFEST).length === FUNCTIONS.length);
});
