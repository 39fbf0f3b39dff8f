/**
 * Debian packages the project's tests and tools need, installed by the stack as PostgreSQL and
 * Redis are: a fresh machine gets them from `stack up`, never from someone's hand.
 *
 * @module
 */

import { LOGS_DIR } from "./config.ts";
import { isRoot, type Log, run, type RunResult, StackError, which } from "./process.ts";

/** A command the project runs and the Debian package that provides it. */
export interface Requirement {
  command: string;
  pkg: string;
  /** What needs it, for the error message when it cannot be installed. */
  usedBy: string;
}

/** What the test suite and the benchmark run besides PostgreSQL and Redis. */
export const TOOL_REQUIREMENTS: readonly Requirement[] = [
  { command: "wrk", pkg: "wrk", usedBy: "the load test and `deno task bench`" },
  { command: "pgbouncer", pkg: "pgbouncer", usedBy: "the transaction pooler of the local stack" },
];

let aptUpdated = false;

/** `apt-get install -y` (as root), output to .local/logs/apt.log. */
export async function aptInstall(packages: string[], log: Log): Promise<void> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const logPath = `${LOGS_DIR}/apt.log`;
  Deno.mkdirSync(LOGS_DIR, { recursive: true });
  const record = (result: RunResult) =>
    Deno.writeTextFileSync(logPath, result.stdout + result.stderr, { append: true });
  if (!aptUpdated) {
    log("apt: apt-get update");
    const update = await run("apt-get", ["update"], { env, timeoutMs: 600_000 });
    record(update);
    if (!update.success) throw new StackError(`apt-get update failed (see ${logPath})`);
    aptUpdated = true;
  }
  log(`apt: apt-get install -y ${packages.join(" ")}`);
  const install = await run("apt-get", ["install", "-y", "--no-install-recommends", ...packages], {
    env,
    timeoutMs: 600_000,
  });
  record(install);
  if (!install.success) {
    throw new StackError(`apt-get install ${packages.join(" ")} failed (see ${logPath})`);
  }
}

/**
 * Installs the packages of the requirements whose command is missing (as root), or fails naming
 * what to install: a missing tool never turns into a skipped test.
 */
export async function ensureCommands(
  requirements: readonly Requirement[],
  log: Log,
): Promise<void> {
  const missing = requirements.filter((r) => which(r.command) === undefined);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((r) => r.pkg))];
  if (!isRoot()) {
    throw new StackError(
      `missing ${missing.map((r) => `${r.command} (${r.usedBy})`).join(", ")}: run as root or ` +
        `\`sudo apt-get install ${packages.join(" ")}\``,
    );
  }
  await aptInstall(packages, log);
  const still = missing.filter((r) => which(r.command) === undefined);
  if (still.length > 0) {
    throw new StackError(
      `apt-get installed ${packages.join(" ")} but ${still[0]!.command} is not on PATH`,
    );
  }
}
