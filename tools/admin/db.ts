/**
 * The admin tool's database connection.
 *
 * @module
 */
import postgres from "postgres";
import { AdminError } from "./errors.ts";

/** Anything that runs queries: a client or a transaction. */
export type Queryable = postgres.ISql;

/** The database URL: `--db-url`, else `SUPABASE_DB_URL`; an {@link AdminError} if neither. */
export function resolveDbUrl(flag: string | undefined): string {
  const url = flag ?? Deno.env.get("SUPABASE_DB_URL");
  if (url === undefined || url === "") {
    throw new AdminError("no database: set SUPABASE_DB_URL or pass --db-url <url>", 2);
  }
  return url;
}

/** Opens a small postgres.js client for one command; close it with `await sql.end()`. */
export function connect(url: string): postgres.Sql {
  return postgres(url, { max: 1, connect_timeout: 10, onnotice: () => {} });
}
