import assert from "node:assert/strict";
import { type CaseResult, goals, median } from "./report.ts";

/** A measured case with only what the goals read. */
function result(id: string, server: number, round?: number): CaseResult {
  return {
    id,
    label: id,
    connections: 50,
    seconds: 6,
    rps: 1000,
    ratio: undefined,
    latencyMs: { p50: 1, p99: 2, max: 3 },
    statuses: { 200: 100 },
    unexpected: 0,
    warnings: 0,
    requests: 100,
    cpuUs: { server, bridge: 0, redis: 0, postgres: 0, pgbouncer: 0, wrk: 0 },
    busyCores: 1,
    redis: { calls: 0, perRequest: 0, commandsPerRequest: 0 },
    hitRatio: undefined,
    verifyCalls: undefined,
    churn: undefined,
    ...(round === undefined ? {} : { round }),
  };
}

const goal = (results: CaseResult[], start: string) =>
  goals(results).find((g) => g.goal.startsWith(start));

Deno.test("median: the middle value, or the mean of the two middle ones", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});

Deno.test("one round: a function against its floor is the ratio of the two", () => {
  const g = goal([result("me", 260), result("floor-me", 200)], "server CPU of /api/me ≤ 1.3");
  assert.equal(g?.value, "1.30×");
  assert.equal(g?.pass, true);
});

Deno.test("rounds: each round's function meets that round's floor; the median ratio decides", () => {
  const results = [
    // A busy moment inflates both cases of round 2; pairing by round keeps its ratio honest.
    result("me", 300, 1),
    result("floor-me", 200, 1),
    result("me", 900, 2),
    result("floor-me", 600, 2),
    result("me", 280, 3),
    result("floor-me", 200, 3),
  ];
  const g = goal(results, "server CPU of /api/me ≤ 1.3");
  assert.equal(g?.value, "1.50×");
  assert.equal(g?.pass, false);
  assert.match(g!.goal, /median of 3 rounds: 1\.50 1\.50 1\.40/);
  // Server CPU goals take the round of median CPU.
  assert.equal(goal(results, "server CPU, /api/me ≤ 80 µs")?.value, "300");
});

Deno.test("rounds: of an even count, the higher of the two middle runs, never an outlier", () => {
  const results = [100, 200, 900, 800].map((cpu, i) => result("me", cpu, i + 1));
  assert.equal(goal(results, "server CPU, /api/me ≤ 80 µs")?.value, "800");
});

Deno.test("a floor without its function, or a function without its floor, is not measured", () => {
  assert.equal(goal([result("floor-me", 200)], "server CPU of /api/me")?.value, "not measured");
  assert.equal(goal([result("me", 200)], "server CPU of /api/me")?.value, "not measured");
});
