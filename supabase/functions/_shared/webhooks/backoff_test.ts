import assert from "node:assert/strict";
import { retryDelayMs } from "./backoff.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

Deno.test("retryDelayMs() doubles from the base, between half and all of each step (equal jitter)", () => {
  for (let attempts = 1; attempts <= 6; attempts++) {
    const step = MINUTE * 2 ** (attempts - 1);
    assert.equal(retryDelayMs(attempts, MINUTE, 6 * HOUR, () => 0), step / 2);
    assert.equal(retryDelayMs(attempts, MINUTE, 6 * HOUR, () => 1), step);
    const d = retryDelayMs(attempts, MINUTE, 6 * HOUR);
    assert.ok(d >= step / 2 && d <= step, `${d} within [${step / 2}, ${step}]`);
  }
});

Deno.test("retryDelayMs() is capped at the maximum delay, however many attempts failed", () => {
  assert.equal(retryDelayMs(12, MINUTE, 6 * HOUR, () => 1), 6 * HOUR);
  assert.equal(retryDelayMs(1000, MINUTE, 6 * HOUR, () => 1), 6 * HOUR);
  assert.equal(retryDelayMs(1000, MINUTE, 6 * HOUR, () => 0), 3 * HOUR);
});

Deno.test("the default schedule retries for about three days in some 20 to 32 attempts", () => {
  for (const random of [() => 0, () => 0.5, () => 1]) {
    let elapsed = 0;
    let attempts = 1;
    while (true) {
      const next = elapsed + retryDelayMs(attempts, MINUTE, 6 * HOUR, random);
      if (next > 72 * HOUR) break;
      elapsed = next;
      attempts++;
    }
    assert.ok(attempts >= 18 && attempts <= 33, `${attempts} attempts`);
    assert.ok(elapsed > 60 * HOUR, `the last retry ${elapsed / HOUR} h after the first attempt`);
  }
});
