/**
 * Database helpers for tests: connect to the test database (`SUPABASE_DB_URL`) and run queries
 * as an API role with request claims, exactly as the functions do it — in a transaction that
 * starts with `set_config('role', …, true), set_config('request.jwt.claims', …, true)`, so the
 * settings end with the transaction.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createUser } from "../tools/admin/ops.ts";

/** JWT claims as `auth.jwt()` sees them. */
export type Claims = Record<string, unknown>;

/** The API roles a request can run as. */
export type ApiRole = "anon" | "authenticated" | "service_role";

/** The test database URL; throws if `SUPABASE_DB_URL` is not set. */
export function testDbUrl(): string {
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (url === undefined || url === "") throw new Error("SUPABASE_DB_URL is not set");
  return url;
}

/** A postgres.js client for the test database, connected as the URL's user (`postgres`). */
export function connectTestDb(max = 4): postgres.Sql {
  return postgres(testDbUrl(), { max, onnotice: () => {} });
}

/**
 * Runs `fn` in a transaction as `role` with `claims` as `request.jwt.claims` (null: none). The
 * transaction commits if `fn` resolves and rolls back if it throws.
 */
export async function asRole<T>(
  sql: postgres.Sql,
  role: ApiRole,
  claims: Claims | null,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  const text = claims === null ? "" : JSON.stringify(claims);
  const result = await sql.begin(async (tx) => {
    await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${text}, true)`;
    return await fn(tx);
  });
  return result as T;
}

/** Runs `fn` as `authenticated` with these claims (see {@link userClaims}). */
export function asUser<T>(
  sql: postgres.Sql,
  claims: Claims,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  return asRole(sql, "authenticated", claims, fn);
}

/** Runs `fn` as `anon` with the claims of Supabase's anon key. */
export function asAnon<T>(
  sql: postgres.Sql,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  return asRole(sql, "anon", { role: "anon", iss: "supabase" }, fn);
}

/** The claims the functions set for a user's request; `extra` adds e.g. `key_mode`. */
export function userClaims(userId: string, extra: Claims = {}): Claims {
  return { sub: userId, role: "authenticated", aud: "authenticated", ...extra };
}

/** A test user with a unique email (free tier), and its claims. */
export interface TestUser {
  id: string;
  email: string;
  claims: Claims;
}

/** Creates a user with a unique email `<prefix>-<uuid>@test.local`. */
export async function createTestUser(sql: postgres.Sql, prefix = "user"): Promise<TestUser> {
  const user = await createUser(sql, `${prefix}-${crypto.randomUUID()}@test.local`);
  return { id: user.id, email: user.email, claims: userClaims(user.id) };
}

/** Asserts that `promise` rejects with a Postgres error of this SQLSTATE. */
export async function assertSqlState(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, "expected an Error");
    assert.equal(
      (error as { code?: unknown }).code,
      code,
      `expected SQLSTATE ${code}: ${error.message}`,
    );
    return true;
  });
}

/**
 * Runs `fn` on a database of its own (created here on the test stack's PostgreSQL, dropped after)
 * holding, as the stack makes it, the bootstrap and every migration before `migration`, each file
 * one transaction; `fn` fills in data of the older schema, then calls `apply()` to run
 * `migration` itself the same way.
 */
export async function withDatabaseBefore(
  migration: string,
  fn: (sql: postgres.Sql, apply: () => Promise<void>) => Promise<void>,
): Promise<void> {
  const root = new URL("../", import.meta.url);
  const read = (path: string) => Deno.readTextFileSync(new URL(path, root));
  const run = async (file: string) => {
    await sql.unsafe(`begin;\n${read(`supabase/migrations/${file}`)}\ncommit;`).simple();
  };
  const name = `torvus_migration_${migration.slice(0, 14)}_${Deno.pid}`;
  const url = new URL(testDbUrl());
  const admin = postgres(url.href, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${name}`);
  await admin.unsafe(`create database ${name}`);
  url.pathname = `/${name}`;
  const sql = postgres(url.href, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(read("supabase/local/bootstrap.sql")).simple();
    const files = [...Deno.readDirSync(new URL("supabase/migrations/", root))]
      .map((e) => e.name).filter((n) => n.endsWith(".sql")).sort();
    for (const file of files.filter((f) => f < migration)) await run(file);
    await fn(sql, () => run(migration));
  } finally {
    await sql.end({ timeout: 5 });
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end({ timeout: 5 });
  }
}
