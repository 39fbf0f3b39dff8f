/**
 * The local Edge Runtime (tools/runtime): the hosted runtime's rules, checked with small
 * functions of tests/fixtures/runtime, each in isolates of its own, in this process.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DEFAULT_LIMITS, EdgeRuntime, type RuntimeLimits } from "./supervisor.ts";
import type { WireRequest } from "./protocol.ts";
import { delay as sleep } from "../../supabase/functions/_shared/deadline.ts";

const FIXTURES = new URL("../../tests/fixtures/runtime/", import.meta.url);

function runtime(limits: Partial<RuntimeLimits> = {}): EdgeRuntime {
  const entries = Object.fromEntries(
    ["background", "burn", "boom", "echo"].map((n) => [n, new URL(`${n}/index.ts`, FIXTURES)]),
  );
  return new EdgeRuntime(entries, { ...DEFAULT_LIMITS, ...limits });
}

function get(path: string, init: Partial<WireRequest> = {}): WireRequest {
  return { method: "GET", url: `http://runtime.test${path}`, headers: [], body: null, ...init };
}

const lines = (file: string) => {
  try {
    return Deno.readTextFileSync(file).trim().split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
};

/** Polls until `check` holds or `ms` passed. */
async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const until = performance.now() + ms;
  while (!check()) {
    if (performance.now() > until) assert.fail(`${what} within ${ms} ms`);
    await sleep(10);
  }
}

function test(name: string, fn: () => Promise<void>): void {
  // Workers and their timers outlive a test by design (the runtime is shut down at its end).
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

test("runtime: an early drop waits for waitUntil work and cuts off untracked work", async () => {
  // Limits far away: on a busy machine a boot's CPU must not retire the isolate before the drop.
  const rt = runtime({ cpuSoftMs: 20_000, cpuHardMs: 40_000 });
  const dir = Deno.makeTempDirSync();
  try {
    const events = `${dir}/events`;
    const tracked = `${dir}/tracked`;
    const untracked = `${dir}/untracked`;
    const answers = await Promise.all([
      rt.fetch("background", get(`/?events=${events}&file=${tracked}&track=1&delay=300`)),
      rt.fetch("background", get(`/?file=${untracked}&track=0&delay=800`)),
    ]);
    for (const a of answers) assert.equal(await a.text(), "ok");
    assert.equal(await rt.drop("background"), true, JSON.stringify(rt.stats()));
    // The drop happened after the tracked work, and before the untracked timer fired.
    assert.deepEqual(lines(tracked), ["done"], "waitUntil work finished before the drop");
    assert.deepEqual(lines(events), ["drain", "beforeunload:early_drop"]);
    await sleep(1_000);
    assert.deepEqual(lines(untracked), [], "untracked work died with the isolate");
    const stats = rt.stats().background!;
    assert.equal(stats.isolatesStarted, 1);
    assert.equal(stats.isolatesEnded.early_drop, 1);
    assert.deepEqual(stats.live, []);
  } finally {
    await rt.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});

test("runtime: one isolate serves concurrent requests and keeps its module state", async () => {
  const rt = runtime();
  try {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => rt.fetch("burn", get("/?ms=0"))),
    );
    const served = (await Promise.all(answers.map((a) => a.json()))).map((b) => b.served);
    assert.deepEqual(served.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.equal(rt.stats().burn!.isolatesStarted, 1);
  } finally {
    await rt.shutdown();
  }
});

test("runtime: the CPU soft limit retires an isolate; the next request gets a new one", async () => {
  const rt = runtime({ cpuSoftMs: 100, cpuHardMs: 5_000 });
  try {
    assert.equal((await (await rt.fetch("burn", get("/?ms=150"))).json()).served, 1);
    await eventually(() => (rt.stats().burn!.isolatesEnded.early_drop ?? 0) === 1, 2_000, "drop");
    // A new isolate: module state starts over.
    assert.equal((await (await rt.fetch("burn", get("/?ms=0"))).json()).served, 1);
    assert.equal(rt.stats().burn!.isolatesStarted, 2);
  } finally {
    await rt.shutdown();
  }
});

test("runtime: the CPU hard limit terminates the isolate; its request gets 546", async () => {
  const rt = runtime({ cpuSoftMs: 100, cpuHardMs: 300 });
  try {
    const r = await rt.fetch("burn", get("/?ms=3000"));
    assert.equal(r.status, 546);
    assert.equal((await r.json()).code, "WORKER_LIMIT");
    assert.equal(rt.stats().burn!.isolatesEnded.cpu, 1);
  } finally {
    await rt.shutdown();
  }
});

test("runtime: the wall clock retires at half, announces at 90 %, cuts waitUntil work at 100 %", async () => {
  const rt = runtime({ wallClockMs: 1_000 });
  const dir = Deno.makeTempDirSync();
  try {
    const events = `${dir}/events`;
    const late = `${dir}/late`;
    const r = await rt.fetch(
      "background",
      get(`/?events=${events}&file=${late}&track=1&delay=5000`),
    );
    assert.equal(await r.text(), "ok");
    await eventually(() => rt.stats().background!.isolatesEnded.wall_clock === 1, 3_000, "end");
    assert.deepEqual(lines(events), ["drain", "beforeunload:wall_clock"]);
    assert.deepEqual(lines(late), [], "work still pending at the hard limit is lost");
  } finally {
    await rt.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});

test("runtime: a function that fails to load answers 503 BOOT_ERROR", async () => {
  const rt = runtime();
  try {
    const r = await rt.fetch("boom", get("/"));
    assert.equal(r.status, 503);
    assert.equal((await r.json()).code, "BOOT_ERROR");
    assert.equal(rt.stats().boom!.isolatesEnded.boot_error, 1);
  } finally {
    await rt.shutdown();
  }
});

test("runtime: a request reaches the function as sent, remoteAddr as the hosted runtime gives it", async () => {
  const rt = runtime();
  try {
    for (const method of ["constructor", "toString", "PATCH"]) {
      const r = await rt.fetch("echo", get("/x?y=1", { method, headers: [["x-probe", "p"]] }));
      const body = await r.json();
      assert.equal(body.method, method);
      assert.equal(body.url, "http://runtime.test/x?y=1");
      assert.equal(body.header, "p");
      assert.equal(r.headers.get("x-echo"), "1");
    }
    const withBody = await rt.fetch("echo", {
      ...get("/"),
      method: "GET",
      body: new TextEncoder().encode("a body").buffer,
    });
    const echoed = await withBody.json();
    assert.equal(echoed.body, "a body");
    assert.deepEqual(echoed.remote, { transport: "tcp", hostname: "0.0.0.0", port: 9999 });
  } finally {
    await rt.shutdown();
  }
});

test("runtime: an isolate may use the network and env and write /tmp, not run programs", async () => {
  const rt = runtime();
  try {
    const body = await (await rt.fetch("echo", get("/"))).json();
    assert.deepEqual(body.may, { env: true, writeTmp: true, writeElsewhere: false, run: false });
  } finally {
    await rt.shutdown();
  }
});
