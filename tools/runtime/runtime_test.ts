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

/** A runtime of the fixtures (`limits` over the defaults), shut down at the end of `await using`. */
function runtime(limits: Partial<RuntimeLimits> = {}): EdgeRuntime & AsyncDisposable {
  const entries = Object.fromEntries(
    ["background", "burn", "boom", "echo"].map((n) => [n, new URL(`${n}/index.ts`, FIXTURES)]),
  );
  const rt = new EdgeRuntime(entries, { ...DEFAULT_LIMITS, ...limits });
  return Object.assign(rt, { [Symbol.asyncDispose]: () => rt.shutdown() });
}

/** A temporary directory, removed at the end of `using` (declare it before the runtime). */
function tempDir(): { path: string } & Disposable {
  const path = Deno.makeTempDirSync();
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
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
  using dir = tempDir();
  // Limits far away: on a busy machine a boot's CPU must not retire the isolate before the drop.
  await using rt = runtime({ cpuSoftMs: 20_000, cpuHardMs: 40_000 });
  const events = `${dir.path}/events`;
  const tracked = `${dir.path}/tracked`;
  const untracked = `${dir.path}/untracked`;
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
});

test("runtime: one isolate serves concurrent requests and keeps its module state", async () => {
  await using rt = runtime();
  const answers = await Promise.all(
    Array.from({ length: 20 }, () => rt.fetch("burn", get("/?ms=0"))),
  );
  const served = (await Promise.all(answers.map((a) => a.json()))).map((b) => b.served);
  assert.deepEqual(served.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal(rt.stats().burn!.isolatesStarted, 1);
});

test("runtime: the CPU soft limit retires an isolate; the next request gets a new one", async () => {
  await using rt = runtime({ cpuSoftMs: 100, cpuHardMs: 5_000 });
  assert.equal((await (await rt.fetch("burn", get("/?ms=150"))).json()).served, 1);
  await eventually(() => (rt.stats().burn!.isolatesEnded.early_drop ?? 0) === 1, 2_000, "drop");
  // A new isolate: module state starts over.
  assert.equal((await (await rt.fetch("burn", get("/?ms=0"))).json()).served, 1);
  assert.equal(rt.stats().burn!.isolatesStarted, 2);
});

test("runtime: the CPU hard limit terminates the isolate; its request gets 546", async () => {
  await using rt = runtime({ cpuSoftMs: 100, cpuHardMs: 300 });
  const r = await rt.fetch("burn", get("/?ms=3000"));
  assert.equal(r.status, 546);
  assert.equal((await r.json()).code, "WORKER_LIMIT");
  assert.equal(rt.stats().burn!.isolatesEnded.cpu, 1);
});

test("runtime: the wall clock retires at half, announces at 90 %, cuts waitUntil work at 100 %", async () => {
  using dir = tempDir();
  await using rt = runtime({ wallClockMs: 1_000 });
  const events = `${dir.path}/events`;
  const late = `${dir.path}/late`;
  const r = await rt.fetch(
    "background",
    get(`/?events=${events}&file=${late}&track=1&delay=5000`),
  );
  assert.equal(await r.text(), "ok");
  await eventually(() => rt.stats().background!.isolatesEnded.wall_clock === 1, 3_000, "end");
  assert.deepEqual(lines(events), ["drain", "beforeunload:wall_clock"]);
  assert.deepEqual(lines(late), [], "work still pending at the hard limit is lost");
});

test("runtime: a function that fails to load answers 503 BOOT_ERROR", async () => {
  await using rt = runtime();
  const r = await rt.fetch("boom", get("/"));
  assert.equal(r.status, 503);
  assert.equal((await r.json()).code, "BOOT_ERROR");
  assert.equal(rt.stats().boom!.isolatesEnded.boot_error, 1);
});

test("runtime: a request reaches the function as sent, remoteAddr as the hosted runtime gives it", async () => {
  await using rt = runtime();
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
});

test("runtime: an isolate may use the network and env and write /tmp, not run programs", async () => {
  await using rt = runtime();
  const body = await (await rt.fetch("echo", get("/"))).json();
  assert.deepEqual(body.may, { env: true, writeTmp: true, writeElsewhere: false, run: false });
});
