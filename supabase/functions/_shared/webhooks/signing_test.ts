import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { generateSecret, sign, signedHeaders } from "./signing.ts";

const body = JSON.stringify({
  type: "vault.created",
  timestamp: "2026-01-01T00:00:00.000Z",
  data: {},
});
const now = () => Math.floor(Date.now() / 1000);

Deno.test("generateSecret() makes whsec_ and 32 random bytes in base64, never the same twice", () => {
  const a = generateSecret();
  assert.match(a, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(atob(a.slice(6)).length, 32);
  assert.notEqual(generateSecret(), a);
});

Deno.test("signedHeaders() are accepted by the reference verifiers (standardwebhooks, svix)", async () => {
  const secret = generateSecret();
  const headers = await signedHeaders([secret], "01JBG7XKQM9F3Y8W2Z5N4P1R6T", now(), body);
  assert.deepEqual(Object.keys(headers), ["webhook-id", "webhook-timestamp", "webhook-signature"]);
  assert.match(headers["webhook-signature"]!, /^v1,[A-Za-z0-9+/]{43}=$/);
  assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
  new SvixWebhook(secret).verify(body, headers);
});

Deno.test("sign() equals the reference implementation's signature", async () => {
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const at = 1_614_265_330;
  const expected = new Webhook(secret).sign(
    "msg_p5jXN8AQM9LWM0D4loKWxJek",
    new Date(at * 1000),
    "{}",
  );
  assert.equal(await sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", at, "{}"), expected);
});

Deno.test("during a rotation both secrets sign, and either one verifies", async () => {
  const [current, previous] = [generateSecret(), generateSecret()];
  const headers = await signedHeaders(
    [current, previous],
    "01JBG7XKQM9F3Y8W2Z5N4P1R6T",
    now(),
    body,
  );
  assert.equal(headers["webhook-signature"]!.split(" ").length, 2);
  for (const secret of [current, previous]) {
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
    new SvixWebhook(secret).verify(body, headers);
  }
  assert.throws(() => new Webhook(generateSecret()).verify(body, headers));
});

Deno.test("a changed body, id or timestamp fails verification", async () => {
  const secret = generateSecret();
  const headers = await signedHeaders([secret], "01JBG7XKQM9F3Y8W2Z5N4P1R6T", now(), body);
  const verifier = new Webhook(secret);
  assert.throws(() => verifier.verify(body.replace("vault", "vaulx"), headers));
  assert.throws(() => verifier.verify(body, { ...headers, "webhook-id": "other" }));
  assert.throws(() =>
    verifier.verify(body, {
      ...headers,
      "webhook-timestamp": String(Number(headers["webhook-timestamp"]) + 1),
    })
  );
  assert.throws(() => new SvixWebhook(secret).verify(body.slice(1), headers));
});

Deno.test("sign() refuses a secret without the whsec_ prefix", async () => {
  await assert.rejects(() => sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id", 1, "{}"));
});
