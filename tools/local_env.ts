/**
 * The local stack's settings files, `.local/<profile>.env` (`dev.env`, `test.env`; KEY=VALUE
 * lines), written by `deno task stack up --profile <profile>`. Tools call {@link loadLocalEnv} so that `deno task dev` and
 * `deno task admin` work in a new shell without exporting anything; variables already set in
 * the environment always win, which is how tests and deployments point them elsewhere.
 *
 * @module
 */

/** Where the local stack keeps its generated state (ignored by git). */
export const LOCAL_DIR = new URL("../.local/", import.meta.url);

/** The settings file of a stack profile (`dev` or `test`). */
export function envFileUrl(profile = Deno.env.get("TORVUS_PROFILE") ?? "dev"): URL {
  return new URL(`${profile}.env`, LOCAL_DIR);
}

/** Parses KEY=VALUE lines; `#` comments and blank lines are skipped, values are taken as-is. */
export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) continue;
    values.set(trimmed.slice(0, eq).trim(), trimmed.slice(eq + 1).trim());
  }
  return values;
}

/**
 * Fills unset environment variables from the profile's settings file, if it exists.
 * Returns the names it set.
 */
export function loadLocalEnv(profile?: string): string[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(envFileUrl(profile));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  const set: string[] = [];
  for (const [name, value] of parseEnvFile(text)) {
    if (Deno.env.get(name) === undefined) {
      Deno.env.set(name, value);
      set.push(name);
    }
  }
  return set;
}
