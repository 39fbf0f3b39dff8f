/**
 * What monitors and tools poll never answers 429: `GET /api/v1/health` and
 * `GET /api/openapi.json` count against no budget and carry no rate-limit headers, even for an
 * address whose unauthenticated budget (100 an hour) is spent; and health stays cheap under a
 * flood, one dependency probe serving every request for a second.
 *
 * @module
 */
import assert from "node:assert/strict";
import { api, assertCommonHeaders, e2e, uniqueIp } from "./_harness.ts";
import { alone } from "./_support/alone.ts";
import { delay } from "../supabase/functions/_shared/deadline.ts";

e2e(
  "health and the reference answer 200 to an address over its budget, without limit headers",
  async () => {
    const ip = uniqueIp();
    // Spend the address's budget with failed authentications.
    for (let i = 0; i < 100; i++) {
      const r = await api("/api/v1/test", { ip });
      assert.equal(r.status, 401, r.text);
    }
    const spent = await api("/api/v1/test", { ip });
    assert.equal(spent.status, 429, "the budget is spent");
    for (const path of ["/api/v1/health", "/api/openapi.json"]) {
      for (let i = 0; i < 3; i++) {
        const r = await api(path, { ip });
        assert.equal(r.status, 200, `${path}: ${r.text.slice(0, 200)}`);
        assertCommonHeaders(r);
        for (
          const h of ["x-ratelimit-limit", "x-ratelimit-remaining", "ratelimit", "retry-after"]
        ) {
          assert.equal(r.headers.get(h), null, `${path} carries no ${h}`);
        }
      }
    }
    // A method health lacks is a 405, not a 429, for the same address.
    const wrong = await api("/api/v1/health", { ip, method: "POST" });
    assert.equal(wrong.status, 405);
  },
);

e2e("a flood of health requests shares one dependency probe per second", async () => {
  const answers = await Promise.all(
    Array.from({ length: 200 }, () => api("/api/v1/health", { ip: uniqueIp() })),
  );
  for (const r of answers) assert.equal(r.status, 200, r.text);
  const probes = new Set(answers.map((r) => r.body.checked_at));
  const spread = Math.max(...answers.map((r) => Date.parse(r.body.timestamp))) -
    Math.min(...answers.map((r) => Date.parse(r.body.timestamp)));
  // One probe per started second of the flood, and one more at most.
  assert.ok(
    probes.size <= Math.ceil(spread / 1000) + 1,
    `${probes.size} probes for 200 requests over ${spread} ms`,
  );
});

e2e(
  "request lines are sampled above their quota; the rest are counted in one summary line",
  async () => {
    const output = await alone("v1-test", async (base) => {
      for (let i = 0; i < 30; i++) {
        const r = await fetch(`${base}/v1-test`);
        await r.body?.cancel();
        assert.equal(r.status, 401);
      }
      // The summary of a window is written when the window ends (10 s).
      await delay(10_500);
    }, {
      TORVUS_LOG_REQUESTS_PER_10S: "5",
      TORVUS_REDIS_PREFIX: `torvus-test-logs-${crypto.randomUUID().slice(0, 8)}`,
    });
    const lines = output.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l)
    );
    const requests = lines.filter((l) => l.msg === "request");
    const summaries = lines.filter((l) => l.msg === "request lines sampled");
    assert.equal(requests.length, 5, "five request lines in the window");
    assert.equal(summaries.length, 1, output.stdout);
    // The 401s written and counted add up to the 30 made (alone() probes with OPTIONS too).
    const written401 = requests.filter((l) => l.status === 401).length;
    assert.equal(summaries[0].by_status[401] + written401, 30, "every request is accounted for");
    const counted = Object.values(summaries[0].by_status as Record<string, number>);
    assert.equal(summaries[0].suppressed, counted.reduce((a, b) => a + b, 0));
  },
);
