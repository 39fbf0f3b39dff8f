/**
 * A function served alone, as the Edge Runtime serves it: its `index.ts` run by Deno 2.1 (the
 * runtime's version) with its own `deno.json`, no lock file and no unstable flag, listening
 * where `Deno.serve` listens by default (Deno 2.1 has no way to move it: port 8000).
 *
 * @module
 */
import assert from "node:assert/strict";
import { EDGE_DENO, EDGE_DENO_ENV } from "../../tools/runtime/edge_deno.ts";
import { delay } from "../../supabase/functions/_shared/deadline.ts";

const FUNCTIONS = new URL("../../supabase/functions/", import.meta.url);
const PORT = 8000;

/** What the function printed, available once `alone` has returned. */
export interface AloneOutput {
  stdout: string;
  stderr: string;
}

/**
 * Runs `supabase/functions/<name>/index.ts` alone until `use` returns, with the test profile's
 * environment plus `env`. Returns what it printed.
 */
export async function alone(
  name: string,
  use: (base: string) => Promise<void>,
  env: Record<string, string> = {},
): Promise<AloneOutput> {
  try {
    Deno.listen({ hostname: "0.0.0.0", port: PORT }).close();
  } catch {
    assert.fail(`port ${PORT} is taken: a function served alone listens there`);
  }
  const child = new Deno.Command(EDGE_DENO, {
    args: [
      "run",
      "--no-lock",
      "--config",
      new URL(`${name}/deno.json`, FUNCTIONS).pathname,
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      new URL(`${name}/index.ts`, FUNCTIONS).pathname,
    ],
    env: { ...EDGE_DENO_ENV, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  const base = `http://127.0.0.1:${PORT}`;
  try {
    const deadline = Date.now() + 30_000;
    while (true) {
      try {
        // A preflight: answered without credentials and counted against no limit.
        const probe = await fetch(`${base}/${name}`, {
          method: "OPTIONS",
          signal: AbortSignal.timeout(1000),
        });
        await probe.body?.cancel();
        break;
      } catch {
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          assert.fail(`${name} did not start on Deno 2.1:\n${(await output).join("\n")}`);
        }
        await delay(100);
      }
    }
    await use(base);
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
  }
  const [stdout, stderr] = await output;
  assert.ok(!/unstable|ReferenceError/i.test(stdout + stderr), stderr);
  return { stdout, stderr };
}
