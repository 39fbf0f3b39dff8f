import assert from "node:assert/strict";
import { KEY_CASES } from "../testing/hostile.ts";
import { fakeEpoch, fakeKeyStore, storedKey } from "../testing/fakes.ts";
import { catalogueTest } from "../testing/run_case.ts";
import { createKeyAuthenticator } from "./api_key.ts";
import { generateApiKey, hashApiKey } from "./key_format.ts";
import { EPOCH_SHARDS, shardOf } from "./epoch.ts";

Deno.test(
  "createKeyAuthenticator() refuses every hostile key of the catalogue as documented",
  catalogueTest("api_key", KEY_CASES),
);

function setup(modes: Array<"live" | "test"> = ["live", "test"]) {
  const store = fakeKeyStore();
  const epoch = fakeEpoch();
  let t = Date.UTC(2026, 0, 1);
  const keys = createKeyAuthenticator({ store, acceptedModes: modes, epoch, now: () => t });
  const { key } = generateApiKey("test");
  store.add(key, storedKey());
  return { store, epoch, keys, key, advance: (ms: number) => void (t += ms) };
}

Deno.test("authenticate() refuses a corrupted key without any lookup", async () => {
  const { store, keys, key } = await setup();
  const corrupted = key.slice(0, 20) + (key[20] === "A" ? "B" : "A") + key.slice(21);
  assert.deepEqual(await keys.authenticate(corrupted, undefined), {
    ok: false,
    code: "INVALID_API_KEY",
  });
  assert.deepEqual(await keys.authenticate("pk_test_x", undefined), {
    ok: false,
    code: "INVALID_API_KEY_FORMAT",
  });
  assert.equal(store.lookups, 0);
});

Deno.test("authenticate() serves a key of a mode the deployment does not accept as unknown", async () => {
  const { store, keys, key } = await setup(["live"]);
  assert.deepEqual(await keys.authenticate(key, undefined), { ok: false, code: "INVALID_API_KEY" });
  assert.equal(store.lookups, 0);
});

/**
 * Authenticates a key that must be served from the cache, then does what admission does with
 * its confirmation (the epoch keys read, then judged): whether the cached entry still holds.
 */
async function cachedAndConfirmed(
  { keys, key, epoch }: Awaited<ReturnType<typeof setup>>,
): Promise<boolean> {
  const cached = await keys.authenticate(key, undefined);
  assert.ok(cached.ok && cached.confirm, "served from cache, to confirm");
  return cached.confirm.matches(await epoch.read(cached.confirm.keys).catch(() => undefined));
}

Deno.test("authenticate() caches a key, confirmed by an unchanged epoch", async () => {
  const s = await setup();
  const { store, epoch, keys, key } = s;
  const first = await keys.authenticate(key, undefined);
  assert.ok(first.ok && first.confirm === undefined, "a lookup, not a cached answer");
  assert.equal(await cachedAndConfirmed(s), true);
  assert.equal(store.lookups, 1);
  await epoch.bump();
  assert.equal(await cachedAndConfirmed(s), false, "the epoch moved: the entry is dropped");
  const fourth = await keys.authenticate(key, undefined);
  assert.ok(fourth.ok && fourth.confirm === undefined, "looked up again");
  assert.equal(store.lookups, 2);
});

Deno.test("authenticate() keeps a cached key while other shards change, not its own", async () => {
  const s = await setup();
  const { store, epoch, keys, key } = s;
  const own = shardOf(hashApiKey(key));
  await keys.authenticate(key, undefined);
  // Every other shard changes: the key stays cached and confirmed.
  await epoch.bump(Array.from({ length: EPOCH_SHARDS }, (_, i) => i).filter((i) => i !== own));
  assert.equal(await cachedAndConfirmed(s), true);
  assert.equal(store.lookups, 1);
  await epoch.bump([own]);
  assert.equal(await cachedAndConfirmed(s), false, "its shard moved: the entry is dropped");
});

Deno.test("authenticate() caches nothing while the epoch cannot be read", async () => {
  const { store, epoch, keys, key } = await setup();
  epoch.failing = true;
  for (let i = 0; i < 3; i++) assert.equal((await keys.authenticate(key, undefined)).ok, true);
  assert.equal(store.lookups, 3);
});

Deno.test("authenticate() lets a cached key lapse at its expires_at", async () => {
  const store = fakeKeyStore();
  let t = Date.UTC(2026, 0, 1);
  const keys = createKeyAuthenticator({
    store,
    acceptedModes: ["test"],
    epoch: fakeEpoch(),
    now: () => t,
  });
  const { key } = generateApiKey("test");
  store.add(key, storedKey({ expiresAt: new Date(t + 5_000) }));
  assert.equal((await keys.authenticate(key, undefined)).ok, true);
  t += 5_000;
  const lapsed = await keys.authenticate(key, undefined);
  assert.equal(lapsed.ok, false);
  assert.equal(!lapsed.ok && lapsed.code, "API_KEY_EXPIRED");
});

Deno.test("authenticate() checks an allowlist against the proven client address", async () => {
  const store = fakeKeyStore();
  const keys = createKeyAuthenticator({ store, acceptedModes: ["test"], epoch: fakeEpoch() });
  const { key } = generateApiKey("test");
  store.add(key, storedKey({ ipAllowlist: ["198.51.100.0/24", "2001:db8::/32"] }));
  assert.equal((await keys.authenticate(key, "198.51.100.7")).ok, true);
  assert.equal((await keys.authenticate(key, "2001:db8::5")).ok, true);
  assert.equal((await keys.authenticate(key, "::ffff:198.51.100.7")).ok, true);
  for (const ip of ["203.0.113.1", undefined]) {
    const refused = await keys.authenticate(key, ip);
    assert.equal(!refused.ok && refused.code, "IP_NOT_ALLOWED", String(ip));
  }
});
