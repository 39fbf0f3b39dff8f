/**
 * The admin CLI's commands: their arguments, options, checks made before connecting, and what
 * they print on stdout (hints go to stderr).
 *
 * @module
 */
import type postgres from "postgres";
import {
  createApiKey,
  createTier,
  createUser,
  listKeys,
  listTiers,
  mintTokenFor,
  setKeyExpiry,
  setKeyStatus,
  setUserTier,
  tokenIssuer,
} from "./ops.ts";
import { setKeyTier } from "./keys.ts";
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

/** The options that take a value. */
export const VALUE_OPTIONS = [
  "db-url",
  "ttl",
  "email",
  "tier",
  "mode",
  "name",
  "scopes",
  "expires-at",
  "ip-allowlist",
  "per-minute",
  "per-day",
  "test-per-minute",
  "test-per-day",
] as const;
/** A value option's name. */
export type OptionName = (typeof VALUE_OPTIONS)[number];
/** Option values as given on the command line. */
export type Values = Partial<Record<OptionName, string>>;

/** One command: its positional arguments, allowed options and what it does. */
export interface Command {
  args: string[];
  options: OptionName[];
  required?: OptionName[];
  run: (sql: postgres.Sql, args: string[], values: Values) => Promise<string[]>;
  /** Checks made before connecting. */
  validate?: (args: string[], values: Values) => void;
  /**
   * The command's lines of the usage text: its synopsis, then what it does from column 44
   * (on the synopsis line when it fits, else on the lines below).
   */
  help: readonly string[];
}

/** Where the description column of the usage text starts (after two spaces of indent). */
const HELP_COLUMN = 41;

/** Lays out a synopsis and its description lines in the usage text's two columns. */
function helpLines(synopsis: string | readonly string[], ...text: string[]): string[] {
  const lines = typeof synopsis === "string" ? [synopsis] : [...synopsis];
  const last = lines.length - 1;
  const pad = " ".repeat(HELP_COLUMN);
  const out = lines.map((l) => `  ${l}`);
  const [first, ...rest] = text;
  if (first !== undefined && (lines[last] ?? "").length < HELP_COLUMN) {
    out[last] = `  ${(lines[last] ?? "").padEnd(HELP_COLUMN)}${first}`;
  } else if (first !== undefined) {
    out.push(`  ${pad}${first}`);
  }
  for (const line of rest) out.push(`  ${pad}${line}`);
  return out;
}

const hint = (text: string) => console.error(text);
const cell = (text: string) => text.replace(/[\t\r\n]+/g, " ");
const opt = (values: Values, name: OptionName) => values[name];

/** The commands, by name (`key create`, `token`, …). */
export const COMMANDS: Record<string, Command> = {
  "user create": {
    args: ["email"],
    options: [],
    help: helpLines("user create <email>", "create a user (or reuse it); prints its id"),
    validate: ([email]) => parseOr(emailSchema, email, "email"),
    run: async (sql, [email]) => {
      const user = await createUser(sql, email ?? "");
      hint(user.created ? `created user ${user.email}` : `user ${user.email} already exists`);
      return [user.id];
    },
  },
  "user tier": {
    args: ["email", "tier"],
    options: [],
    help: helpLines(
      "user tier <email> <tier>",
      "set the account's tier and move its existing",
      "non-revoked keys to it too (an upgrade applies",
      "to keys already issued, from their next request)",
    ),
    validate: ([email, tier]) => {
      parseOr(emailSchema, email, "email");
      parseOr(tierNameSchema, tier, "tier");
    },
    run: async (sql, [email, tier]) => {
      const set = await setUserTier(sql, email ?? "", tier ?? "");
      const keys = set.keysMoved === 1 ? "1 key" : `${set.keysMoved} keys`;
      hint(`tier of ${email} is now ${set.name}; ${keys} moved to it`);
      return [];
    },
  },
  "token": {
    args: ["email"],
    options: ["ttl"],
    help: helpLines(
      "token <email> [--ttl <seconds>]",
      "print an access token (negative ttl: expired)",
    ),
    validate: ([email], values) => {
      parseOr(emailSchema, email, "email");
      parseOr(ttlSchema, opt(values, "ttl") ?? 3600, "--ttl");
      tokenIssuer();
    },
    run: async (sql, [email], values) => {
      const ttl = parseOr(ttlSchema, opt(values, "ttl") ?? 3600, "--ttl");
      const minted = await mintTokenFor(sql, email ?? "", ttl);
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
    validate: (_, values) => void keyOptions(values),
    run: async (sql, _, values) => {
      const options = keyOptions(values);
      // One transaction: a key that cannot be stored leaves no new user behind.
      const created = await sql.begin((tx) => createApiKey(tx, options));
      hint(`created ${created.mode} key ${created.start}… (shown once; store it now)`);
      return [created.id, created.key];
    },
  },
  "key status": {
    args: ["key-id", "status"],
    options: [],
    help: helpLines(
      "key status <key-id> <active|revoked|suspended|expired>",
      'suspended: suspend the key (refused with "API key',
      '  is suspended" until reactivated)',
      "active: reactivate a suspended key (an instance",
      "  that just refused it may do so for up to 10 s)",
      "revoked / expired: end the key; prints its id",
    ),
    validate: ([id, status]) => {
      parseOr(ulidSchema, id, "key id");
      parseOr(statusSchema, status, "status");
    },
    run: async (sql, [id, status]) => [
      await setKeyStatus(sql, id ?? "", parseOr(statusSchema, status, "status")),
    ],
  },
  "key expire-at": {
    args: ["key-id", "expiry"],
    options: [],
    help: helpLines("key expire-at <key-id> <iso8601|never>", "set or clear the key's expiry"),
    validate: ([id, expiry]) => {
      parseOr(ulidSchema, id, "key id");
      parseOr(expirySchema, expiry, "expiry");
    },
    run: async (sql, [id, expiry]) => [
      await setKeyExpiry(sql, id ?? "", parseOr(expirySchema, expiry, "expiry")),
    ],
  },
  "key tier": {
    args: ["key-id", "tier"],
    options: [],
    help: helpLines(
      "key tier <key-id> <tier>",
      "move one key to another tier (its limits change",
      "from its next request); prints its id",
    ),
    validate: ([id, tier]) => {
      parseOr(ulidSchema, id, "key id");
      parseOr(tierNameSchema, tier, "tier");
    },
    run: async (sql, [id, tier]) => [await setKeyTier(sql, id ?? "", tier ?? "")],
  },
  "key list": {
    args: [],
    options: ["email"],
    required: ["email"],
    help: helpLines("key list --email <e>", "id name mode status start tier expires_at (tabs)"),
    validate: (_, values) => parseOr(emailSchema, opt(values, "email"), "--email"),
    run: async (sql, _, values) => {
      const keys = await listKeys(sql, opt(values, "email") ?? "");
      if (keys.length === 0) hint("no keys");
      return keys.map((k) =>
        [
          k.id,
          cell(k.name),
          k.mode,
          k.status,
          k.start,
          k.tier,
          k.expiresAt?.toISOString() ?? "never",
        ]
          .join("\t")
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
    validate: ([name], values) => void tierOptions(name, values),
    run: async (sql, [name], values) => [(await createTier(sql, tierOptions(name, values))).id],
  },
  "tier list": {
    args: [],
    options: [],
    help: helpLines("tier list", "id name per-minute per-day test-per-minute test-per-day"),
    run: async (sql) =>
      (await listTiers(sql)).map((t) =>
        [
          t.id,
          t.name,
          t.requestsPerMinute,
          t.requestsPerDay,
          t.testRequestsPerMinute,
          t.testRequestsPerDay,
        ]
          .join("\t")
      ),
  },
};

/** The commands' part of the usage text, one command after another. */
export function commandsHelp(): string {
  return Object.values(COMMANDS).flatMap((c) => c.help).join("\n");
}

function keyOptions(values: Values) {
  const name = opt(values, "name");
  const scopes = opt(values, "scopes");
  const expiresAt = opt(values, "expires-at");
  const ipAllowlist = opt(values, "ip-allowlist");
  return {
    email: parseOr(emailSchema, opt(values, "email"), "--email"),
    tier: parseOr(tierNameSchema, opt(values, "tier"), "--tier"),
    mode: parseOr(modeSchema, opt(values, "mode"), "--mode"),
    ...(name === undefined ? {} : { name: parseOr(keyNameSchema, name, "--name") }),
    ...(scopes === undefined ? {} : { scopes: parseOr(scopesSchema, scopes, "--scopes") }),
    ...(expiresAt === undefined
      ? {}
      : { expiresAt: parseOr(instantSchema, expiresAt, "--expires-at") }),
    ...(ipAllowlist === undefined
      ? {}
      : { ipAllowlist: parseOr(ipAllowlistSchema, ipAllowlist, "--ip-allowlist") }),
  };
}

function tierOptions(name: string | undefined, values: Values) {
  const perMinute = parseOr(limitSchema, opt(values, "per-minute"), "--per-minute");
  const perDay = parseOr(limitSchema, opt(values, "per-day"), "--per-day");
  const testPerMinute = opt(values, "test-per-minute");
  const testPerDay = opt(values, "test-per-day");
  return {
    name: parseOr(tierNameSchema, name, "tier name"),
    perMinute,
    perDay,
    testPerMinute: testPerMinute === undefined
      ? perMinute * 2
      : parseOr(limitSchema, testPerMinute, "--test-per-minute"),
    testPerDay: testPerDay === undefined
      ? perDay * 2
      : parseOr(limitSchema, testPerDay, "--test-per-day"),
  };
}
