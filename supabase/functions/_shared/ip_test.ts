import assert from "node:assert/strict";
import {
  addressPolicy,
  CLIENT_IP_HEADER,
  GATEWAY_SECRET_HEADER,
  normalizeIp,
  secretMatcher,
} from "./ip.ts";
import type { ClientAddressConfig } from "./config.ts";

const SECRET = "a-gateway-secret-of-at-least-32-characters";
const policy = (over: Partial<ClientAddressConfig> = {}) =>
  addressPolicy({
    gatewaySecret: SECRET,
    directAccess: "allow",
    directIpSource: { kind: "none" },
    ...over,
  });
const headers = (h: Record<string, string>) => new Headers(h);

Deno.test("origin() believes X-Torvus-Client-IP only with the gateway's secret", () => {
  const p = policy();
  assert.deepEqual(
    p.origin(
      headers({ [GATEWAY_SECRET_HEADER]: SECRET, [CLIENT_IP_HEADER]: "203.0.113.5" }),
      "10.0.0.1",
    ),
    { via: "gateway", ip: "203.0.113.5" },
  );
  const wrong = {
    absent: undefined,
    empty: "",
    truncated: SECRET.slice(1),
    "first characters": SECRET.slice(0, -1),
    extended: `${SECRET}x`,
    "one character changed": `${SECRET.slice(0, 10)}#${SECRET.slice(11)}`,
    "other case": SECRET.toUpperCase(),
  };
  for (const [what, secret] of Object.entries(wrong)) {
    const h = headers({ [CLIENT_IP_HEADER]: "203.0.113.5" });
    if (secret !== undefined) h.set(GATEWAY_SECRET_HEADER, secret);
    assert.deepEqual(p.origin(h, "10.0.0.1"), { via: "direct", ip: undefined }, what);
  }
});

Deno.test("origin() never reads X-Forwarded-For or X-Real-IP", () => {
  const h = headers({ "x-forwarded-for": "198.51.100.7", "x-real-ip": "198.51.100.7" });
  for (const source of [{ kind: "none" }, { kind: "peer" }] as const) {
    assert.deepEqual(policy({ directIpSource: source }).origin(h, undefined), {
      via: "direct",
      ip: undefined,
    });
  }
});

Deno.test("origin() takes a direct request's address from the configured source", () => {
  const h = headers({ "cf-connecting-ip": "198.51.100.9" });
  assert.equal(policy({ directIpSource: { kind: "none" } }).origin(h, "10.0.0.1").ip, undefined);
  assert.equal(policy({ directIpSource: { kind: "peer" } }).origin(h, "10.0.0.1").ip, "10.0.0.1");
  assert.equal(
    policy({ directIpSource: { kind: "header", name: "cf-connecting-ip" } }).origin(h, "10.0.0.1")
      .ip,
    "198.51.100.9",
  );
});

Deno.test("origin() refuses direct requests where only the gateway may call", () => {
  const p = policy({ directAccess: "deny" });
  assert.deepEqual(p.origin(headers({}), "10.0.0.1"), { via: "refused", ip: undefined });
  assert.equal(p.origin(headers({ [GATEWAY_SECRET_HEADER]: SECRET }), undefined).via, "gateway");
});

Deno.test("origin() without a configured secret treats every request as direct", () => {
  const p = policy({ gatewaySecret: undefined });
  const h = headers({ [GATEWAY_SECRET_HEADER]: "", [CLIENT_IP_HEADER]: "203.0.113.5" });
  assert.deepEqual(p.origin(h, undefined), { via: "direct", ip: undefined });
});

Deno.test("normalizeIp() canonicalises addresses and refuses the unspecified ones", () => {
  assert.equal(normalizeIp(" 203.0.113.5 "), "203.0.113.5");
  assert.equal(normalizeIp("::ffff:203.0.113.5"), "203.0.113.5");
  assert.equal(normalizeIp("[2001:DB8::1]"), "2001:db8::1");
  for (const bad of ["0.0.0.0", "::", "not-an-ip", "203.0.113.5, 10.0.0.1", ""]) {
    assert.equal(normalizeIp(bad), undefined, bad);
  }
});

Deno.test("secretMatcher() accepts the secret alone; nothing matches a missing secret", () => {
  const matches = secretMatcher(SECRET);
  assert.equal(matches(SECRET), true);
  for (const other of [null, "", SECRET.slice(0, -1), `${SECRET} `, "\0".repeat(SECRET.length)]) {
    assert.equal(matches(other), false, JSON.stringify(other));
  }
  for (const missing of [undefined, ""]) {
    const never = secretMatcher(missing);
    for (const presented of [null, "", "x"]) assert.equal(never(presented), false);
  }
});
