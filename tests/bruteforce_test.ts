/**
 * Brute force (OWASP API2 / API4): failed authentications count against the client address's
 * limit of 100 per hour, whatever credential kind they tried, exactly (also under a concurrent
 * burst); and a key whose checksum fails costs no database call.
 *
 * The last point is proved by outcome: a dev server of this test runs against a PostgreSQL that
 * is not there (a loopback port nobody listens on: to a client that is exactly a stopped
 * server). Any database call would end in 503 SERVICE_UNAVAILABLE; checksum-failing keys get
 * 401 INVALID_API_KEY at once, while a well-formed unknown key (which needs the lookup) gets
 * the 503.
 */
import assert from "node:assert/strict";
import { base64url } from "jose";
import { generateApiKey } from "../supabase/functions/_shared/auth/key_format.ts";
import { type DevServer, freePort, stackEnv, startDevServer, tail } from "./_support/dev_server.ts";
import {
  api,
  type ApiResponse,
  assertError,
  awayFromWindowEnd,
  e2e,
  uniqueIp,
} from "./_harness.ts";
import { closeDb, newKey, newTier } from "./_fixtures.ts";

const LIMIT = 100;

/** A key of the right shape whose checksum is wrong: one body character changed. */
function checksumFailingKey(mode: "live" | "test" = "test"): string {
  const { key } = generateApiKey(mode);
  const i = 8 + Math.floor(Math.random() * 40);
  return key.slice(0, i) + (key[i] === "A" ? "B" : "A") + key.slice(i + 1);
}

/** Bad credentials of every kind for API-key routes, with the code each gets. */
function badKey(i: number): { headers: Record<string, string>; code: string } {
  switch (i % 5) {
    case 0:
      return { headers: { "x-api-key": checksumFailingKey() }, code: "INVALID_API_KEY" };
    case 1:
      return {
        headers: { "x-api-key": generateApiKey("live").key },
        code: "INVALID_API_KEY",
      };
    case 2:
      return {
        headers: {
          "x-api-key": `sk_prod_${base64url.encode(crypto.getRandomValues(new Uint8Array(36)))}`,
        },
        code: "INVALID_API_KEY_FORMAT",
      };
    case 3:
      return { headers: {}, code: "MISSING_API_KEY" };
    default:
      return { headers: { "x-api-key": "sk_test_short" }, code: "INVALID_API_KEY" };
  }
}

const remaining = (r: ApiResponse) => Number(r.headers.get("x-ratelimit-remaining"));

function assertLimited(r: ApiResponse, jwtRoute: boolean): void {
  assertError(r, 429, "RATE_LIMIT_EXCEEDED");
  const retry = Number(r.headers.get("retry-after"));
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 3600, `Retry-After ${retry}`);
  assert.equal(r.body?.retry_after, retry);
  assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
  assert.equal(r.headers.get("x-ratelimit-limit"), String(LIMIT));
  if (jwtRoute) assert.equal(r.body?.statusCode, 429);
}

e2e(
  "brute force: 100 failed key authentications from one address, then 429 even for a bad key",
  async () => {
    await awayFromWindowEnd(3600, 20);
    const ip = uniqueIp();
    const seen: number[] = [];
    // Ten at a time: each answer still carries its own exact count.
    for (let batch = 0; batch < LIMIT / 10; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 10 }, async (_, j) => {
          const bad = await badKey(batch * 10 + j);
          const r = await api("/api/v1/test", { headers: bad.headers, ip });
          assertError(r, 401, bad.code);
          return r;
        }),
      );
      seen.push(...answers.map(remaining));
    }
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      Array.from({ length: LIMIT }, (_, i) => i),
      "X-RateLimit-Remaining counted 99 down to 0, each value once",
    );

    const started = performance.now();
    const blocked = [
      await api("/api/v1/test", { headers: { "x-api-key": checksumFailingKey() }, ip }),
      await api("/api/v1/test", {
        headers: { "x-api-key": generateApiKey("test").key },
        ip,
      }),
      await api("/api/v1/vaults", { headers: {}, ip }),
      await api("/api/v1/test", { headers: { "x-api-key": "garbage" }, ip }),
    ];
    for (const r of blocked) assertLimited(r, false);
    const jwt = await api("/api/me", { headers: { authorization: "Bearer not.a.token" }, ip });
    assertLimited(jwt, true);
    assert.ok(performance.now() - started < 2000, "refusals are quick");

    // A valid key is limited by its own tier, not by the address's failures.
    const tier = await newTier(100, 1000);
    const key = await newKey({ tier });
    const ok = await api("/api/v1/test", { headers: { "x-api-key": key.key }, ip });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers.get("x-ratelimit-limit"), "100");
  },
);

e2e("brute force: key and token failures share the address's 100", async () => {
  await awayFromWindowEnd(3600, 20);
  const ip = uniqueIp();
  const answers: ApiResponse[] = [];
  for (let i = 0; i < LIMIT; i++) {
    if (i % 2 === 0) {
      answers.push(
        await api("/api/v1/test", { headers: { "x-api-key": checksumFailingKey() }, ip }),
      );
    } else {
      answers.push(
        await api("/api/me", { headers: { authorization: `Bearer x${i}.y${i}.z${i}` }, ip }),
      );
    }
  }
  answers.forEach((r, i) => {
    assert.equal(r.status, 401, `request ${i + 1}: ${r.text}`);
    assert.equal(remaining(r), LIMIT - 1 - i, `request ${i + 1}: remaining`);
  });
  assertLimited(await api("/api/me", { headers: { authorization: "Bearer a.b.c" }, ip }), true);
  assertLimited(
    await api("/api/v1/test", { headers: { "x-api-key": checksumFailingKey() }, ip }),
    false,
  );
});

e2e(
  "brute force: a concurrent burst of 150 bad keys from one address gets exactly 100 401s",
  async () => {
    await awayFromWindowEnd(3600, 10);
    const ip = uniqueIp();
    const keys = Array.from({ length: 150 }, () => checksumFailingKey());
    const answers = await Promise.all(
      keys.map((k) => api("/api/v1/test", { headers: { "x-api-key": k }, ip })),
    );
    const count = (s: number) => answers.filter((r) => r.status === s).length;
    assert.equal(count(401), LIMIT, "exactly the limit got through to authentication's answer");
    assert.equal(count(429), 150 - LIMIT);
    for (const r of answers) {
      if (r.status === 401) assertError(r, 401, "INVALID_API_KEY");
      else assertLimited(r, false);
    }
    // Other addresses are untouched.
    const other = await api("/api/v1/test", {
      headers: { "x-api-key": checksumFailingKey() },
      ip: uniqueIp(),
    });
    assert.equal(other.status, 401);
    assert.equal(remaining(other), LIMIT - 1);
  },
);

e2e(
  "brute force: checksum-failing keys cost no database call (401 with PostgreSQL gone, well-formed unknown keys 503)",
  async () => {
    const stack = stackEnv();
    // A port nobody listens on: every connection attempt is refused, as by a stopped server.
    const deadDb = `postgresql://postgres@127.0.0.1:${freePort()}/torvus?sslmode=disable`;
    let server: DevServer | undefined;
    try {
      server = await startDevServer({
        port: freePort(),
        dbUrl: deadDb,
        redisUrl: stack.redisUrl,
        redisToken: stack.redisToken,
        redisPrefix: stack.redisPrefix,
        keyFile: stack.keyFile,
        logName: "bruteforce-nodb",
      });
      const call = async (headers: Record<string, string>, ip: string) => {
        const started = performance.now();
        const res = await fetch(`${server!.url}/api/v1/test`, {
          headers: { ...headers, "x-forwarded-for": ip },
        });
        const text = await res.text();
        return {
          status: res.status,
          body: JSON.parse(text),
          retryAfter: res.headers.get("retry-after"),
          ms: performance.now() - started,
        };
      };

      // 200 checksum-failing keys (both modes), 50 per address to stay under the IP limit.
      const times: number[] = [];
      for (let a = 0; a < 4; a++) {
        const ip = uniqueIp();
        const keys = Array.from(
          { length: 50 },
          (_, i) => checksumFailingKey(i % 2 ? "live" : "test"),
        );
        for (let i = 0; i < keys.length; i += 10) {
          const answers = await Promise.all(
            keys.slice(i, i + 10).map((k) => call({ "x-api-key": k }, ip)),
          );
          for (const r of answers) {
            assert.equal(r.status, 401, JSON.stringify(r.body));
            assert.equal(r.body.code, "INVALID_API_KEY");
            times.push(r.ms);
          }
        }
      }
      times.sort((a, b) => a - b);
      const p99 = times[Math.floor(times.length * 0.99)]!;
      console.log(
        `checksum-failing keys with PostgreSQL gone: 200 x 401 INVALID_API_KEY, ` +
          `median ${times[100]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
      );
      assert.ok(p99 < 500, `answered without waiting on the database: p99 ${p99} ms`);

      // The same server does call the database for a well-formed key: it is unreachable.
      for (const mode of ["live", "test"] as const) {
        const r = await call({ "x-api-key": (generateApiKey(mode)).key }, uniqueIp());
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.equal(r.body.code, "SERVICE_UNAVAILABLE");
        assert.equal(r.retryAfter, "1");
        assert.ok(r.ms < 6000, `bounded by the connect timeout: ${r.ms} ms`);
      }
      assert.equal(server.exited, undefined, "the server is still running");
      const log = await Deno.readTextFile(server.log);
      assert.ok(!/unhandled rejection|Uncaught/i.test(log), await tail(server.log));
    } finally {
      await server?.stop();
      await closeDb();
    }
  },
);
