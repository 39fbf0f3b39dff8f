/**
 * The admin CLI's commands: their arguments and options, checked before connecting, and what
 * they print on stdout (hints go to stderr).
 *
 * @module
 */
import type postgres from "postgres";
import type { z } from "zod";
import {
  createApiKey,
  createTier,
  createUser,
  listKeys,
  listTiers,
  mintTokenFor,
  setKeyExpiry,
  setKeyStatus,
  setKeyTier,
  setUserTier,
  tokenIssuer,
} from "./ops.ts";
import {
  emailSchema,
  expirySchema,
  instantSchema,
  ipAllowlistSchema,
  keyNameSchema,
  limitSchema,
  modeSchema,
  parseOr,
  scopesSchema,
  statusSchema,
  tierNameSchema,
  ttlSchema,
  ulidSchema,
} from "./schemas.ts";

/** The positional arguments: how each is checked, and its name in messages. */
const ARGUMENTS = {
  email: [emailSchema, "email"],
  tier: [tierNameSchema, "tier"],
  "key-id": [ulidSchema, "key id"],
  status: [statusSchema, "status"],
  expiry: [expirySchema, "expiry"],
  name: [tierNameSchema, "tier name"],
} as const;
type ArgumentName = keyof typeof ARGUMENTS;

/** The options, all of which take a value (messages name them as `--name`). */
const OPTIONS = {
  "db-url": undefined,
  ttl: ttlSchema,
  email: emailSchema,
  tier: tierNameSchema,
  mode: modeSchema,
  name: keyNameSchema,
  scopes: scopesSchema,
  "expires-at": instantSchema,
  "ip-allowlist": ipAllowlistSchema,
  "per-minute": limitSchema,
  "per-day": limitSchema,
  "test-per-minute": limitSchema,
  "test-per-day": limitSchema,
} as const;
type OptionName = keyof typeof OPTIONS;
export const VALUE_OPTIONS = Object.keys(OPTIONS) as OptionName[];
/** Option values as given on the command line. */
export type Values = Partial<Record<OptionName, string>>;

type Out<S> = S extends z.ZodType ? z.output<S> : never;
/** What a command runs with: its arguments and the options given, checked. */
export type Input =
  & { [K in ArgumentName]: Out<(typeof ARGUMENTS)[K][0]> }
  & { [K in Exclude<OptionName, "db-url">]?: Out<(typeof OPTIONS)[K]> };

/** One command: its positional arguments, allowed options and what it does. */
export interface Command {
  args: ArgumentName[];
  options?: OptionName[];
  required?: OptionName[];
  /** Further checks made before connecting. */
  check?: () => void;
  run: (sql: postgres.Sql, input: Input) => Promise<string[]>;
  /**
   * The command's lines of the usage text: its synopsis, then what it does from column 44
   * (on the synopsis line when it fits, else on the lines below).
   */
  help: readonly string[];
}

/** Checks a command's arguments and options (in the order it lists them). */
export function parseInput(command: Command, args: string[], values: Values): Input {
  const input: Record<string, unknown> = {};
  command.args.forEach((name, i) => {
    const [schema, what] = ARGUMENTS[name];
    input[name] = parseOr(schema, args[i], what);
  });
  for (const name of command.options ?? []) {
    const schema = OPTIONS[name];
    if (schema !== undefined && values[name] !== undefined) {
      input[name] = parseOr(schema, values[name], `--${name}`);
    }
  }
  command.check?.();
  return input as Input;
}

/** Where the description column of the usage text starts (after two spaces of indent). */
const HELP_COLUMN = 41;

/** Lays out a synopsis and its description lines in the usage text's two columns. */
function helpLines(synopsis: string | readonly string[], ...text: string[]): string[] {
  const out = [synopsis].flat().map((l) => `  ${l}`);
  const last = out.length - 1;
  const pad = " ".repeat(HELP_COLUMN + 2);
  const [first, ...rest] = text;
  if (first !== undefined && out[last]!.length < HELP_COLUMN + 2) {
    out[last] = `${out[last]!.padEnd(HELP_COLUMN + 2)}${first}`;
  } else if (first !== undefined) {
    out.push(`${pad}${first}`);
  }
  return [...out, ...rest.map((line) => `${pad}${line}`)];
}

const hint = (text: string) => console.error(text);
const row = (cells: unknown[]) => cells.map((c) => String(c).replace(/[\t\r\n]+/g, " ")).join("\t");

/** The commands, by name (`key create`, `token`, …). */
export const COMMANDS: Record<string, Command> = {
  "user create": {
    args: ["email"],
    help: helpLines("user create <email>", "create a user (or reuse it); prints its id"),
    run: async (sql, { email }) => {
      const user = await createUser(sql, email);
      hint(user.created ? `created user ${user.email}` : `user ${user.email} already exists`);
      return [user.id];
    },
  },
  "user tier": {
    args: ["email", "tier"],
    help: helpLines(
      "user tier <email> <tier>",
      "set the account's tier and move its existing",
      "non-revoked keys to it too (an upgrade applies",
      "to keys already issued, from their next request)",
    ),
    run: async (sql, { email, tier }) => {
      const set = await setUserTier(sql, email, tier);
      const keys = set.keysMoved === 1 ? "1 key" : `${set.keysMoved} keys`;
      hint(`tier of ${email} is now ${set.name}; ${keys} moved to it`);
      return [];
    },
  },
  "token": {
    args: ["email"],
    options: ["ttl"],
    check: () => void tokenIssuer(),
    help: helpLines(
      "token <email> [--ttl <seconds>]",
      "print an access token (negative ttl: expired)",
    ),
    run: async (sql, { email, ttl }) => {
      const minted = await mintTokenFor(sql, email, ttl ?? 3600);
      hint(
        `token for ${minted.email} (${minted.userId}) expires ${minted.expiresAt.toISOString()}`,
      );
      return [minted.token];
    },
  },
  "key create": {
    args: [],
    options: ["email", "tier", "mode", "name", "scopes", "expires-at", "ip-allowlist"],
    required: ["email", "tier", "mode"],
    help: helpLines(
      [
        "key create --email <e> --tier <t> --mode <live|test> [--name <n>]",
        "           [--scopes read,write,delete] [--expires-at <iso8601>] [--ip-allowlist cidr,...]",
      ],
      "prints the key id, then the key (shown once)",
    ),
    run: async (sql, input) => {
      const options = {
        email: input.email,
        tier: input.tier,
        mode: input.mode!,
        name: input.name,
        scopes: input.scopes,
        expiresAt: input["expires-at"],
        ipAllowlist: input["ip-allowlist"],
      };
      // One transaction: a key that cannot be stored leaves no new user behind.
      const created = await sql.begin((tx) => createApiKey(tx, options));
      hint(`created ${created.mode} key ${created.start}… (shown once; store it now)`);
      return [created.id, created.key];
    },
  },
  "key status": {
    args: ["key-id", "status"],
    help: helpLines(
      "key status <key-id> <active|revoked|suspended|expired>",
      'suspended: suspend the key (refused with "API key',
      '  is suspended" until reactivated)',
      "active: reactivate a suspended key (an instance",
      "  that just refused it may do so for up to 10 s)",
      "revoked / expired: end the key; prints its id",
    ),
    run: async (sql, input) => [await setKeyStatus(sql, input["key-id"], input.status)],
  },
  "key expire-at": {
    args: ["key-id", "expiry"],
    help: helpLines("key expire-at <key-id> <iso8601|never>", "set or clear the key's expiry"),
    run: async (sql, input) => [await setKeyExpiry(sql, input["key-id"], input.expiry)],
  },
  "key tier": {
    args: ["key-id", "tier"],
    help: helpLines(
      "key tier <key-id> <tier>",
      "move one key to another tier (its limits change",
      "from its next request); prints its id",
    ),
    run: async (sql, input) => [await setKeyTier(sql, input["key-id"], input.tier)],
  },
  "key list": {
    args: [],
    options: ["email"],
    required: ["email"],
    help: helpLines("key list --email <e>", "id name mode status start tier expires_at (tabs)"),
    run: async (sql, { email }) => {
      const keys = await listKeys(sql, email);
      if (keys.length === 0) hint("no keys");
      return keys.map((k) =>
        row([
          k.id,
          k.name,
          k.mode,
          k.status,
          k.start,
          k.tier,
          k.expiresAt?.toISOString() ?? "never",
        ])
      );
    },
  },
  "tier create": {
    args: ["name"],
    options: ["per-minute", "per-day", "test-per-minute", "test-per-day"],
    required: ["per-minute", "per-day"],
    help: helpLines(
      "tier create <name> --per-minute N --per-day N [--test-per-minute N] [--test-per-day N]",
    ),
    run: async (sql, input) => {
      const tier = await createTier(sql, {
        name: input.name,
        perMinute: input["per-minute"]!,
        perDay: input["per-day"]!,
        testPerMinute: input["test-per-minute"],
        testPerDay: input["test-per-day"],
      });
      return [tier.id];
    },
  },
  "tier list": {
    args: [],
    help: helpLines("tier list", "id name per-minute per-day test-per-minute test-per-day"),
    // A tier's fields are those columns, in that order.
    run: async (sql) => (await listTiers(sql)).map((tier) => row(Object.values(tier))),
  },
};

/** The commands' part of the usage text, one command after another. */
export function commandsHelp(): string {
  return Object.values(COMMANDS).flatMap((c) => c.help).join("\n");
}
