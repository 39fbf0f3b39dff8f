import assert from "node:assert/strict";
import { logRows, routeOf, ulidToUuid } from "./log_rows.ts";

Deno.test("routeOf() replaces id segments with {id} and keeps the rest", () => {
  assert.equal(routeOf("/api/keys/01JBG7XKQM9F3Y8W2Z5N4P1R6A/usage"), "/api/keys/{id}/usage");
  assert.equal(
    routeOf("/api/vaults/0192e07e-cef4-4bc7-e470-5f2d4960e0ca"),
    "/api/vaults/{id}",
  );
  assert.equal(routeOf("/api/v1/test"), "/api/v1/test");
  assert.equal(routeOf("/api/items/42/7"), "/api/items/{id}/{id}");
  assert.equal(routeOf("/wp-admin.php"), "/wp-admin.php");
  assert.equal(routeOf(`/${"x".repeat(1000)}`).length, 256);
});

Deno.test("ulidToUuid() gives the 128 bits public.key_uuid() gives, or nothing", () => {
  // Values computed by the migration's SQL functions.
  assert.equal(ulidToUuid("01JBG7XKQM9F3Y8W2Z5N4P1R6A"), "0192e07e-cef4-4bc7-e470-5f2d4960e0ca");
  assert.equal(ulidToUuid("01jbg7xkqm9f3y8w2z5n4p1r6a"), "0192e07e-cef4-4bc7-e470-5f2d4960e0ca");
  assert.equal(ulidToUuid("00000000000000000000000001"), "00000000-0000-0000-0000-000000000001");
  assert.equal(ulidToUuid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"), "ffffffff-ffff-ffff-ffff-ffffffffffff");
  for (const bad of ["", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01JBG7XKQM9F3Y8W2Z5N4P1R6U", "abc"]) {
    assert.equal(ulidToUuid(bad), undefined, bad);
  }
});

Deno.test("logRows() sends each distinct shape once and rows that name it", () => {
  const at = new Date(Date.UTC(2026, 11, 6, 3, 0, 0));
  const base = { method: "GET", status: 200, latencyMs: 1.23456, at, mode: "live" as const };
  const { rows, shapes } = logRows([
    { ...base, requestId: "a", path: "/api/v1/test", keyId: "01JBG7XKQM9F3Y8W2Z5N4P1R6A" },
    { ...base, requestId: "b", path: "/api/v1/test", keyId: "01JBG7XKQM9F3Y8W2Z5N4P1R6B" },
    { ...base, requestId: "c", path: "/api/keys/01JBG7XKQM9F3Y8W2Z5N4P1R6A", userId: "u" },
    { ...base, requestId: "d", path: "/api/v1/test", userAgent: "curl/8" },
  ]);
  assert.deepEqual(rows.map((r) => r.shape), [0, 0, 1, 2]);
  assert.deepEqual(shapes.map((s) => [s.route, s.user_agent]), [
    ["/api/v1/test", null],
    ["/api/keys/{id}", null],
    ["/api/v1/test", "curl/8"],
  ]);
  assert.equal(rows[0]!.key, "0192e07e-cef4-4bc7-e470-5f2d4960e0ca");
  assert.equal(rows[0]!.key_id, "01JBG7XKQM9F3Y8W2Z5N4P1R6A");
  assert.equal(rows[2]!.key, null);
  assert.equal(rows[0]!.latency_ms, 1.235);
  assert.equal(rows[0]!.created_at, "2026-12-06T03:00:00.000Z");
});
