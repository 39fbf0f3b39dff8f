import assert from "node:assert/strict";
import { createLogger, createRequestLineSampler, redact, setLogSink } from "./log.ts";

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
