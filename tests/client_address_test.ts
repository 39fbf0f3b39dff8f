/**
 * Nobody picks their own address: a function reached around the gateway, with the production
 * defaults (`TORVUS_DIRECT_IP_SOURCE=none`), never takes a client's `X-Forwarded-For`,
 * `X-Real-IP`, `cf-connecting-ip` or `X-Torvus-Client-IP` for its address, so a forged header
 * neither passes an IP allowlist nor moves the request to another rate-limit bucket; the
 * gateway, proven by its shared secret, still states addresses; and with
 * `TORVUS_DIRECT_ACCESS=deny` a direct request is 403 `GATEWAY_REQUIRED`.
 *
 * The function runs alone on Deno 2.1 as the Edge Runtime serves it (tests/_support/alone.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { awayFromWindowEnd, e2e } from "./_harness.ts";
import { closeDbLast, newKey, newUser } from "./_fixtures.ts";
import { alone } from "./_support/alone.ts";

const ALLOWED = "198.51.100.7";
const SECRET = Deno.env.get("TORVUS_GATEWAY_SECRET") ?? "";
/** The production defaults for direct requests, and a Redis prefix of this run's own. */
const production = () => ({
  TORVUS_DIRECT_IP_SOURCE: "none",
  TORVUS_DIRECT_ACCESS: "allow",
  TORVUS_REDIS_PREFIX: `torvus-test-addr-${crypto.randomUUID().slice(0, 8)}`,
});

const forgeries: Array<[string, Record<string, string>]> = [
  ["X-Forwarded-For", { "X-Forwarded-For": ALLOWED }],
  ["X-Forwarded-For (last hop)", { "X-Forwarded-For": `203.0.113.9, ${ALLOWED}` }],
  ["X-Real-IP", { "X-Real-IP": ALLOWED }],
  ["cf-connecting-ip", { "cf-connecting-ip": ALLOWED }],
  ["X-Torvus-Client-IP without the secret", { "X-Torvus-Client-IP": ALLOWED }],
  [
    "X-Torvus-Client-IP with a wrong secret",
    { "X-Torvus-Client-IP": ALLOWED, "X-Torvus-Gateway-Secret": `${SECRET.slice(1)}x` },
  ],
];

e2e("a forged address header never passes an IP allowlist; the gateway's does", async () => {
  assert.ok(SECRET.length >= 32, "the test profile has a gateway secret");
  const key = await newKey({ tier: "enterprise", mode: "test", ipAllowlist: [`${ALLOWED}/32`] });
  await alone("v1-test", async (base) => {
    for (const [what, headers] of forgeries) {
      const r = await fetch(`${base}/v1-test`, { headers: { ...headers, "X-API-Key": key.key } });
      const body = await r.json();
      assert.equal(r.status, 403, `${what}: ${JSON.stringify(body)}`);
      assert.equal(body.code, "IP_NOT_ALLOWED", what);
    }
    const viaGateway = await fetch(`${base}/v1-test`, {
      headers: {
        "X-API-Key": key.key,
        "X-Torvus-Gateway-Secret": SECRET,
        "X-Torvus-Client-IP": ALLOWED,
      },
    });
    const body = await viaGateway.json();
    assert.equal(viaGateway.status, 200, JSON.stringify(body));
    assert.equal(body.key_info.key_id, key.id);
  }, production());
});

e2e("a forged address header never moves a request to another rate-limit bucket", async () => {
  await awayFromWindowEnd(3600, 10);
  await alone("v1-test", async (base) => {
    const remaining: number[] = [];
    for (const [, headers] of forgeries) {
      // Failed authentications count against the client's address.
      const r = await fetch(`${base}/v1-test`, { headers });
      await r.body?.cancel();
      assert.equal(r.status, 401);
      remaining.push(Number(r.headers.get("x-ratelimit-remaining")));
    }
    const first = remaining[0]!;
    assert.deepEqual(
      remaining,
      remaining.map((_, i) => first - i),
      "every forged request counted against the same bucket",
    );
    // The gateway's word does move it: another address, another bucket.
    const vouched = await fetch(`${base}/v1-test`, {
      headers: { "X-Torvus-Gateway-Secret": SECRET, "X-Torvus-Client-IP": "203.0.113.77" },
    });
    await vouched.body?.cancel();
    assert.equal(Number(vouched.headers.get("x-ratelimit-remaining")), 99);
  }, production());
});

e2e(
  "TORVUS_DIRECT_ACCESS=deny: a direct request is 403 GATEWAY_REQUIRED, the gateway's is served",
  async () => {
    const user = await newUser();
    await alone("me", async (base) => {
      for (const headers of [{}, { "X-Torvus-Gateway-Secret": "not-the-secret" }]) {
        const r = await fetch(`${base}/me`, {
          headers: { ...headers, Authorization: `Bearer ${user.token}` },
        });
        const body = await r.json();
        assert.equal(r.status, 403, JSON.stringify(body));
        assert.deepEqual(
          { error: body.error, code: body.code, statusCode: body.statusCode },
          { error: "forbidden", code: "GATEWAY_REQUIRED", statusCode: 403 },
        );
        assert.equal(body.request_id, r.headers.get("x-request-id"));
        assert.equal(r.headers.get("x-ratelimit-limit"), null, "refused before any limit");
      }
      const served = await fetch(`${base}/me`, {
        headers: {
          Authorization: `Bearer ${user.token}`,
          "X-Torvus-Gateway-Secret": SECRET,
          "X-Torvus-Client-IP": "203.0.113.5",
        },
      });
      const body = await served.json();
      assert.equal(served.status, 200, JSON.stringify(body));
      assert.equal(body.id, user.userId);
    }, { ...production(), TORVUS_DIRECT_ACCESS: "deny" });
  },
);

closeDbLast("client address");
