/**
 * The end-to-end suites' data: the operator connection to the test database and the users,
 * tokens, keys and tiers a test makes with the admin operations, in-process.
 *
 * @module
 */
import postgres from "postgres";
import {
  createApiKey,
  type CreateKeyOptions,
  createTier,
  mintTokenFor,
} from "../tools/admin/ops.ts";

let sql: postgres.Sql | undefined;

/** The operator connection to the test database (closed by {@link closeDb}). */
export function db(): postgres.Sql {
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (!url) throw new Error("SUPABASE_DB_URL is not set: run the tests with ./scripts/test");
  sql ??= postgres(url, { max: 4, onnotice: () => {} });
  return sql;
}

/** Closes the shared connection. */
export async function closeDb(): Promise<void> {
  await sql?.end({ timeout: 5 });
  sql = undefined;
}

/** The last test of a suite: closes the shared database connection. */
export function closeDbLast(suite: string): void {
  const name = `${suite}: close the database connection`;
  Deno.test({ name, fn: closeDb, sanitizeOps: false, sanitizeResources: false });
}

/** A unique email for a test user. */
export function uniqueEmail(tag = "user"): string {
  return `${tag}-${crypto.randomUUID()}@test.local`;
}

/** A signed-in test user. */
export interface TestUser {
  email: string;
  userId: string;
  token: string;
}

/** Creates a user and mints an access token for it (`ttl` seconds; negative: expired). */
export async function newUser(ttl = 3600, email = uniqueEmail()): Promise<TestUser> {
  const minted = await mintTokenFor(db(), email, ttl);
  return { email, userId: minted.userId, token: minted.token };
}

/** A test API key. */
export interface TestKey {
  id: string;
  key: string;
  userId: string;
  email: string;
}

/** Creates an API key (free tier, test mode, read scope unless told otherwise). */
export async function newKey(options: Partial<CreateKeyOptions> = {}): Promise<TestKey> {
  const email = options.email ?? uniqueEmail("key-owner");
  const created = await createApiKey(db(), {
    tier: "free",
    mode: "test",
    ...options,
    email,
  });
  return { id: created.id, key: created.key, userId: created.userId, email };
}

/** Creates a tier of its own for a test, so that limits are known and untouched by others. */
export async function newTier(perMinute: number, perDay: number): Promise<string> {
  const name = `t-${crypto.randomUUID().slice(0, 8)}`;
  await createTier(db(), {
    name,
    perMinute,
    perDay,
    testPerMinute: perMinute,
    testPerDay: perDay,
  });
  return name;
}
