/**
 * The operator CLI: `deno task admin <command>`. Requested values go to stdout, one per line;
 * hints and errors (`admin: …`) go to stderr. Exit 0 on success, 2 for bad input (usage,
 * validation, unknown user/tier/key), 1 for database and other failures.
 *
 * @module
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { loadLocalEnv } from "./local_env.ts";
import {
  COMMANDS,
  commandsHelp,
  parseInput,
  VALUE_OPTIONS,
  type Values,
} from "./admin/commands.ts";
import { AdminError, describeError } from "./admin/ops.ts";

const USAGE = `usage: deno task admin <command> [--db-url <url>]

${commandsHelp()}

The database is SUPABASE_DB_URL (or .local/<TORVUS_PROFILE>.env) unless --db-url is given.
Exit codes: 0 ok, 2 bad input or unknown user/tier/key, 1 database or other failure.`;

/** `--opt value` becomes `--opt=value`, so values may start with `-` (e.g. `--ttl -60`). */
function joinValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const next = argv[i + 1];
    if (arg.startsWith("--") && VALUE_OPTIONS.some((o) => arg === `--${o}`) && next !== undefined) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** Parses and checks the command line: the command and its input; `undefined` for help. */
function parseCommandLine(argv: readonly string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinValues(argv),
      options: {
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(VALUE_OPTIONS.map((o) => [o, { type: "string" as const }])),
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new AdminError(error instanceof Error ? error.message : String(error), 2);
  }
  const { positionals } = parsed;
  const values = parsed.values as Values & { help?: boolean };
  if (values.help === true || positionals.length === 0) return undefined;
  const [first = "", second = ""] = positionals;
  const name = Object.hasOwn(COMMANDS, first) ? first : `${first} ${second}`;
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) throw new AdminError(`unknown command: ${positionals.join(" ")}`, 2);
  const args = positionals.slice(name.split(" ").length);
  if (args.length !== command.args.length) {
    const shape = command.args.map((a) => `<${a}>`).join(" ");
    throw new AdminError(`usage: ${name} ${shape}`.trimEnd(), 2);
  }
  for (const option of VALUE_OPTIONS) {
    if (values[option] === undefined || option === "db-url") continue;
    if (!command.options?.includes(option)) {
      throw new AdminError(`--${option} is not an option of ${name}`, 2);
    }
  }
  for (const option of command.required ?? []) {
    if (values[option] === undefined) throw new AdminError(`${name} needs --${option}`, 2);
  }
  return { command, input: parseInput(command, args, values), dbUrl: values["db-url"] };
}

/** Runs the CLI with these arguments; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let sql: postgres.Sql | undefined;
  try {
    loadLocalEnv();
    const parsed = parseCommandLine(argv);
    if (parsed === undefined) {
      console.error(USAGE);
      return 2;
    }
    const url = parsed.dbUrl ?? Deno.env.get("SUPABASE_DB_URL");
    if (!url) throw new AdminError("no database: set SUPABASE_DB_URL or pass --db-url <url>", 2);
    sql = postgres(url, { max: 1, connect_timeout: 10, onnotice: () => {} });
    const lines = await parsed.command.run(sql, parsed.input);
    for (const line of lines) console.log(line);
    return 0;
  } catch (error) {
    const { message, exitCode } = describeError(error);
    console.error(`admin: ${message}`);
    return exitCode;
  } finally {
    await sql?.end({ timeout: 5 });
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
