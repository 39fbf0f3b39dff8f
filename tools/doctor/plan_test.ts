import assert from "node:assert/strict";
import { plan } from "../doctor.ts";
import { baseOf } from "./http.ts";
import { endpointOf } from "./database.ts";

Deno.test("the base URL: http(s), no credentials, no trailing slash", () => {
  assert.equal(baseOf("https://api.example.com/"), "https://api.example.com");
  assert.equal(baseOf("http://127.0.0.1:29331"), "http://127.0.0.1:29331");
  assert.equal(baseOf("https://example.com/torvus/?x=1"), "https://example.com/torvus");
  assert.throws(() => baseOf("ftp://example.com"), /http/);
  assert.throws(() => baseOf("https://u:p@example.com"), /credentials/);
  assert.throws(() => baseOf("not a url"));
});

Deno.test("every check is planned; those without their settings skip", async () => {
  const { checks } = plan("http://127.0.0.1:1", {});
  assert.deepEqual(checks.map((c) => c.name), [
    "health",
    "functions region",
    "routing",
    "client addresses",
    "test key",
    "database TLS",
    "database pool mode",
    "redis",
    "jwks",
  ]);
  for (const name of ["test key", "database TLS", "database pool mode", "redis", "jwks"]) {
    const finding = await checks.find((c) => c.name === name)!.run();
    assert.equal(finding.status, "skip", name);
  }
});

Deno.test("an invalid database setting fails its checks, naming the setting only", async () => {
  const { checks } = plan("http://127.0.0.1:1", {
    TORVUS_DB_URL: "postgresql://u:hunter22@db.example:6543/postgres?sslmode=disable",
  });
  const finding = await checks.find((c) => c.name === "database TLS")!.run();
  assert.equal(finding.status, "fail");
  if (finding.status === "fail") {
    assert.match(finding.cause, /connections beyond loopback must use TLS/);
    assert.ok(!finding.cause.includes("hunter22"));
  }
});

Deno.test("the secrets never to print include the database password and every token", () => {
  const { secrets } = plan("http://x", {
    TORVUS_DB_URL: "postgresql://postgres.ref:p%40ss%3Aword@db.example:6543/postgres",
    UPSTASH_REDIS_REST_TOKEN: "redis-token-value",
    TORVUS_DOCTOR_API_KEY: "sk_test_abc",
    TORVUS_GATEWAY_SECRET: "g".repeat(32),
  });
  for (const s of ["p@ss:word", "redis-token-value", "sk_test_abc", "g".repeat(32)]) {
    assert.ok(secrets.includes(s), s);
  }
});

Deno.test("a database URL's host and port, IPv6 and the default port included", () => {
  assert.deepEqual(endpointOf("postgresql://u:p@db.example:6543/postgres"), {
    host: "db.example",
    port: 6543,
  });
  assert.deepEqual(endpointOf("postgres://u@[::1]/d"), { host: "::1", port: 5432 });
});
