import { generateSecret } from "./webhooks/signing.ts";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  applyPatterns,
  createLogger,
  createRequestLineSampler,
  redact,
  setLogSink,
} from "./log.ts";
import { generateApiKey, hashApiKey } from "./auth/key_format.ts";
import { localSigner } from "./testing/fakes.ts";

function capture(): { lines: Array<Record<string, unknown>>; restore: () => void } {
  const lines: Array<Record<string, unknown>> = [];
  const previous = setLogSink((line) => lines.push(JSON.parse(line)));
  return { lines, restore: () => setLogSink(previous) };
}

Deno.test("createRequestLineSampler() writes N lines per 10 s and counts the rest by status", () => {
  const { lines, restore } = capture();
  let now = 1_000_000;
  try {
    const sampler = createRequestLineSampler(3, createLogger(), () => now);
    const statuses = [200, 200, 429, 429, 429, 200, 401];
    const written = statuses.map((s) => sampler.admit(s));
    assert.deepEqual(written, [true, true, true, false, false, false, false]);
    now += 10_000; // the next window: the summary of the last one first
    assert.equal(sampler.admit(200), true);
    assert.equal(lines.length, 1);
    assert.deepEqual(
      { msg: lines[0]!.msg, suppressed: lines[0]!.suppressed, by_status: lines[0]!.by_status },
      { msg: "request lines sampled", suppressed: 4, by_status: { 200: 1, 401: 1, 429: 2 } },
    );
  } finally {
    restore();
  }
});

Deno.test("createRequestLineSampler() always writes the lines of 5xx answers", () => {
  const sampler = createRequestLineSampler(0, createLogger(), () => 0);
  assert.equal(sampler.admit(200), false);
  assert.equal(sampler.admit(503), true);
  assert.equal(sampler.admit(500), true);
  sampler.flush();
});

Deno.test("createRequestLineSampler() flush() writes the summary at once, and only once", () => {
  const { lines, restore } = capture();
  try {
    const sampler = createRequestLineSampler(1, createLogger(), () => 5);
    sampler.admit(200);
    sampler.admit(200);
    sampler.flush();
    sampler.flush();
    assert.equal(lines.filter((l) => l.msg === "request lines sampled").length, 1);
  } finally {
    restore();
  }
});

Deno.test("redact() removes keys, tokens and hashes from a log line", () => {
  const key = `sk_live_${"A".repeat(48)}`;
  const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
  const line = redact(`key=${key} auth=Bearer ${jwt} hash=${"ab".repeat(32)}`);
  for (const secret of [key.slice(8), jwt, "ab".repeat(32)]) assert.ok(!line.includes(secret));
});

Deno.test("redact() removes API keys of both modes, in any context", () => {
  for (const mode of ["live", "test"] as const) {
    const { key } = generateApiKey(mode);
    const cases = [
      key,
      `X-API-Key: ${key}`,
      `GET /api/v1/test?api_key=${key}&x=1`,
      JSON.stringify({ header: key, nested: { list: [key] } }),
      `${key}${key}`,
    ];
    for (const text of cases) {
      const out = redact(text);
      assert.ok(!out.includes(key.slice(8)), `a ${mode} key survived`);
      assert.ok(out.includes(`sk_${mode}_[redacted]`), out);
    }
  }
  // A bare or short prefix is redacted too (a truncated key is still a secret's start).
  assert.equal(redact("sk_live_abc"), "sk_live_[redacted]");
});

Deno.test("redact() removes JWTs, bearer credentials and hex SHA-256 digests", async () => {
  const signer = await localSigner();
  const token = await signer.token(crypto.randomUUID(), Date.now());
  assert.equal(redact(token), "[redacted-jwt]");
  assert.equal(redact(`token=${token}&x=1`), "token=[redacted-jwt]&x=1");
  assert.equal(
    redact("Authorization: Bearer opaque-credential"),
    "Authorization: Bearer [redacted]",
  );
  assert.equal(redact("authorization: bearer abc.def"), "authorization: bearer [redacted]");
  const hex = Array.from(hashApiKey("sk_live_x"), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  assert.equal(redact(`hash ${hex}`), "hash [redacted-hash]");
  assert.equal(redact(`hash \\x${hex}`), "hash [redacted-hash]");
  assert.equal(redact(`hash ${hex.toUpperCase()}`), "hash [redacted-hash]");
});

Deno.test("redact() leaves ordinary text, UUIDs, ULIDs and key ids alone", () => {
  const plain = [
    "request 6bbed81a-898f-4614-988f-ba3538c9bba1 took 4.52 ms",
    "key 01JBG7XKQM9F3Y8W2Z5N4P1R6T of tier 01JBG7XKQM9F3Y8W2Z5N4P1R6A",
    '{"level":"info","msg":"request","status":401,"code":"INVALID_API_KEY"}',
    "the skeleton key is sk-live (not a key)",
  ];
  for (const text of plain) assert.equal(redact(text), text);
});

Deno.test("redact() never lets a generated key or token through (property)", async () => {
  const signer = await localSigner();
  const token = await signer.token(crypto.randomUUID(), Date.now());
  const { key } = generateApiKey("live");
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), (before, after) => {
      const out = redact(`${before}${key}${after} ${before}${token}${after}`);
      return !out.includes(key.slice(8)) && !out.includes(token.split(".")[2]!);
    }),
    { numRuns: 300 },
  );
  assert.equal(redact(JSON.stringify({ t: token })), '{"t":"[redacted-jwt]"}');
});

Deno.test("redact()'s linear pre-check never skips a text the patterns would change (property)", () => {
  // Characters the patterns care about, so that near-secrets are common among the samples.
  const alphabet = fc.constantFrom(
    ...'abcdefxyzABCDEFXYZ0123456789+/_-.=: \\"{}sklivetbaerJy'.split(""),
  );
  const chunk = fc.oneof(
    fc.string({ unit: alphabet, maxLength: 60 }),
    fc.constantFrom("sk_live_", "sk_test_", "eyJ", "Bearer ", "\\x", "."),
    fc.string({
      unit: fc.constantFrom(..."0123456789abcdef".split("")),
      minLength: 38,
      maxLength: 66,
    }),
    fc.string({ unit: fc.constantFrom(..."AZaz09_-".split("")), minLength: 8, maxLength: 14 }),
  );
  fc.assert(
    fc.property(fc.array(chunk, { maxLength: 8 }), (parts) => {
      const text = parts.join("");
      return redact(text) === applyPatterns(text);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("redact() removes webhook signing secrets, whatever surrounds them", () => {
  const secret = generateSecret();
  for (
    const text of [
      secret,
      `rotated: ${secret}.`,
      JSON.stringify({ secret, previous: [secret] }),
      `whsec_short+/=`,
    ]
  ) {
    const out = redact(text);
    assert.ok(!out.includes(secret.slice(6)), out);
    assert.match(out, /whsec_\[redacted\]/);
    assert.ok(!/whsec_(?!\[redacted\])/.test(out), out);
  }
});
