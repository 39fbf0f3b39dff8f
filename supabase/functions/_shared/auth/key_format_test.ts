import assert from "node:assert/strict";
import { generateApiKey, hashApiKey, KEY_DISPLAY_LENGTH, parseApiKey } from "./key_format.ts";

Deno.test("generateApiKey() makes sk_<mode>_ + 48 base64url characters that parse back", async () => {
  for (const mode of ["live", "test"] as const) {
    const g = await generateApiKey(mode);
    assert.match(g.key, new RegExp(`^sk_${mode}_[A-Za-z0-9_-]{48}$`));
    assert.equal(g.start, g.key.slice(0, KEY_DISPLAY_LENGTH));
    assert.deepEqual(g.hash, await hashApiKey(g.key));
    assert.deepEqual(await parseApiKey(g.key), { ok: true, mode });
  }
});

Deno.test("parseApiKey() tells a wrong prefix from a corrupted body", async () => {
  const { key } = await generateApiKey("live");
  assert.deepEqual(await parseApiKey(`pk${key.slice(2)}`), { ok: false, reason: "format" });
  assert.deepEqual(await parseApiKey(key.toUpperCase()), { ok: false, reason: "format" });
  for (
    const bad of [key.slice(0, -1), `${key}A`, key.replace(/.$/, (c) => (c === "A" ? "B" : "A"))]
  ) {
    assert.deepEqual(
      await parseApiKey(bad),
      { ok: false, reason: "invalid" },
      bad.length.toString(),
    );
  }
});

Deno.test("parseApiKey() binds the checksum to the mode: a test body under the live prefix fails", async () => {
  const { key } = await generateApiKey("test");
  assert.deepEqual(await parseApiKey(`sk_live_${key.slice(8)}`), { ok: false, reason: "invalid" });
});

Deno.test("generateApiKey() never repeats itself", async () => {
  const keys = await Promise.all(Array.from({ length: 200 }, () => generateApiKey("live")));
  assert.equal(new Set(keys.map((k) => k.key)).size, 200);
});
