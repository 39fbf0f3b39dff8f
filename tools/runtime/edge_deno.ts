/**
 * How tools start the local Edge Runtime: the dev server on Deno 2.1, the version Supabase's
 * hosted runtime is compatible with (installed by `npm ci` into tools/toolchain/edge), without
 * the lock file (version 5, which Deno 2.1 cannot read; the hosted bundler resolves afresh too).
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/**
 * The Deno 2.1 binary itself: the package's `.bin/deno` is a Node.js shim that does not pass
 * signals on, so a SIGTERM would kill the shim and orphan the runtime.
 */
export const EDGE_DENO = `${ROOT}/tools/toolchain/edge/node_modules/deno/deno`;

/**
 * Flags of the dev server. It reads its isolates' CPU clocks in /proc, which Deno grants only
 * with every permission; each isolate gets the hosted runtime's narrower set instead
 * (runtime/supervisor.ts), which a Worker can be given only with --unstable-worker-options.
 * The functions themselves need no unstable flag (tests/edge_runtime_test.ts runs them alone).
 */
export const DEV_SERVER_FLAGS = ["--no-lock", "--allow-all", "--unstable-worker-options"];

/**
 * Environment for Deno 2.1: it trusts only its bundled roots unless told to use the system's
 * store too, which holds this machine's registry proxy certificate.
 */
export const EDGE_DENO_ENV: Record<string, string> = { DENO_TLS_CA_STORE: "mozilla,system" };

/** `deno run` arguments for the dev server, extra flags (e.g. --cpu-prof) first. */
export function devServerArgs(extra: string[] = []): string[] {
  return ["run", ...DEV_SERVER_FLAGS, ...extra, "tools/dev_server.ts"];
}
