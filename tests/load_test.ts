/**
 * The load test (tests/_support/load.ts): 50 connections for 10 s with wrk on the main routes,
 * against a dev server of its own on the test profile's database and Redis. Zero errors other
 * than the expected 429s, the server's RSS grows by less than 50 % (after a warm-up, V8 heap
 * capped at 128 MiB), the rate limit is exact (never more than N per window, exactly N for a
 * fresh key) and every 200 of the limited key is in the request log.
 *
 * The sliding-window shortfall check (a window after the first getting fewer 200s than the
 * sliding window allows) only applies when the run crosses a minute boundary, so it is asserted
 * only in a run of 60 s or more: `deno task loadtest` runs this file with
 * TORVUS_LOAD_SECONDS=60 (the soak).
 */
import assert from "node:assert/strict";
import { formatReport, runLoadTest } from "./_support/load.ts";

// wrk is installed by `deno task stack up` (tools/stack/packages.ts); without it this fails.
const seconds = Number(Deno.env.get("TORVUS_LOAD_SECONDS") ?? 10);

Deno.test({
  name: `load: 50 connections for ${seconds} s`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const report = await runLoadTest({
      durationS: seconds,
      connections: 50,
      warmupS: 3,
      limitedPerMinute: 60,
      // With its heap capped, V8 stops growing it lazily: RSS then measures what is kept, and a
      // leak ends in an out-of-memory exit (the soak shows the same RSS plateau uncapped).
      maxHeapMiB: 128,
    });
    console.log(formatReport(report));
    assert.ok(report.requests > 1000, `a meaningful load: ${report.requests} requests`);
    assert.equal(report.errors, 0, "no errors other than the expected 429s");
    assert.deepEqual(report.rateLimit.problems, [], "rate limits exact");
    if (seconds >= 60) assert.deepEqual(report.rateLimit.shortfalls, [], "sliding windows");
    assert.ok(!report.serverExited, "the server is still running");
    assert.deepEqual(report.logProblems, [], "no unhandled rejection in the server log");
    assert.ok(
      report.rssKiB.growthPct < 50,
      `RSS grew ${report.rssKiB.growthPct} % (${report.rssKiB.before} -> ${report.rssKiB.after} KiB)`,
    );
  },
});
