import assert from "node:assert/strict";
import { generateApiKey, hashApiKey, KEY_DISPLAY_LENGTH, parseApiKey } from "./key_format.ts";

Deno.test("generateApiKey() makes sk_<mode>_ + 48 base64url characters that parse back", () => {
  for (const mode of ["live", "test"] as const) {
    const g = generateApiKey(mode);
    assert.match(g.key, new RegExp(`^sk_${mode}_[A-Za-z0-9_-]{48}$`));
    assert.equal(g.start, g.key.slice(0, KEY_DISPLAY_LENGTH));
    assert.deepEqual(g.hash, hashApiKey(g.key));
    assert.deepEqual(parseApiKey(g.key), { ok: true, mode });
  }
});

Deno.test("parseApiKey() tells a wrong prefix from a corrupted body", () => {
  const { key } = generateApiKey("live");
  assert.deepEqual(parseApiKey(`pk${key.slice(2)}`), { ok: false, reason: "format" });
  assert.deepEqual(parseApiKey(key.toUpperCase()), { ok: false, reason: "format" });
  for (
    const bad of [key.slice(0, -1), `${key}A`, key.replace(/.$/, (c) => (c === "A" ? "B" : "A"))]
  ) {
    assert.deepEqual(
      parseApiKey(bad),
      { ok: false, reason: "invalid" },
      bad.length.toString(),
    );
  }
});

Deno.test("parseApiKey() binds the checksum to the mode: a test body under the live prefix fails", () => {
  const { key } = generateApiKey("test");
  assert.deepEqual(parseApiKey(`sk_live_${key.slice(8)}`), { ok: false, reason: "invalid" });
});

Deno.test("generateApiKey() never repeats itself", () => {
  const keys = Array.from({ length: 200 }, () => generateApiKey("live"));
  assert.equal(new Set(keys.map((k) => k.key)).size, 200);
});
