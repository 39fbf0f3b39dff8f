import assert from "node:assert/strict";
import { buildServices } from "./services.ts";
import { parseConfig } from "./config.ts";

const config = parseConfig({
  SUPABASE_URL: "https://abc.supabase.co",
  SUPABASE_DB_URL: "postgresql://postgres:pw@db.abc.supabase.co:5432/postgres",
  UPSTASH_REDIS_REST_URL: "https://eu1.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "t".repeat(32),
  TORVUS_LOG_LEVEL: "error",
});

/** Whether a service was built (its getter replaced by the value). */
const built = (services: object, key: string) =>
  Object.getOwnPropertyDescriptor(services, key)?.get === undefined;

Deno.test("buildServices() builds the pool, Redis and what stands on them only when first used", async () => {
  const isolate = buildServices(config);
  const s = isolate.services;
  for (const key of ["sql", "redis", "redisStats", "keyEpoch", "audit", "jwt", "keys", "limiter"]) {
    assert.equal(built(s, key), false, `${key} is not built before use`);
  }
  // The reference reads only the configuration and the logger; a JWT route builds the verifier.
  assert.equal(s.config, config);
  assert.ok(s.jwt);
  assert.equal(built(s, "jwt"), true);
  assert.equal(s.jwt, s.jwt, "built once");
  assert.equal(built(s, "sql"), false);
  assert.equal(built(s, "redis"), false);
  // Shutting down closes only what was built: no database to reach here.
  await isolate.shutdown();
});
