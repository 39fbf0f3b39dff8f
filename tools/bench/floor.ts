/**
 * The floor of the database-bound cases (issue 26): what `/api/me` and `/api/v1/vaults` cannot
 * cost less than, served alone on the same Deno 2.1 and wrapper as the functions. Each request is
 * the function's transaction and nothing else: on a connection reserved from the same pool
 * (`createSql`: the vendored postgres.js, no prepared statements, the same PgBouncer), BEGIN, the
 * four `set_config` of `_shared/db/client.ts`, the function's one SELECT and COMMIT leave in one
 * write; the rows go back as JSON. No authentication, no rate limit, no request log, no headers
 * beyond `Content-Type`: the caller's claims come ready in `X-Floor-Claims`.
 *
 * `GET /vaults` reads the first page of vaults as `readPage` does (the same select list, order and
 * window count); `GET /me` reads `current_user_profile()` as `me` does.
 *
 * @module
 */
import { createSql, type Sql } from "../../supabase/functions/_shared/db/client.ts";
import { parseDbConfig } from "../../supabase/functions/_shared/config.ts";
import { VAULTS as SOURCE } from "../../supabase/functions/vaults/handler.ts";
import { PROFILE } from "../../supabase/functions/me/handler.ts";

/** The statements of the functions themselves: their select lists, sources and order. */
const VAULTS = `select ${SOURCE.columns}, count(*) over () as total
  from ${SOURCE.from} where true order by ${SOURCE.orderBy} limit 20 offset 0`;
const ME = PROFILE;

/** One transaction in one write, as `inTransaction` sends it, without its wrappers. */
async function once(sql: Sql, claims: string, statement: string): Promise<unknown[]> {
  const timeouts = sql.timeouts ?? { statementMs: 1500, idleInTransactionMs: 3000 };
  const conn = await sql.reserve();
  try {
    const begun = conn`begin`.execute();
    const applied = conn.unsafe(
      "select set_config($1, $2, true), set_config($3, $4, true), set_config($5, $6, true), " +
        "set_config($7, $8, true)",
      [
        "statement_timeout",
        String(timeouts.statementMs),
        "idle_in_transaction_session_timeout",
        String(timeouts.idleInTransactionMs),
        "role",
        "authenticated",
        "request.jwt.claims",
        claims,
      ],
    ).execute();
    const rows = conn.unsafe(statement).execute();
    const committed = conn`commit`.execute();
    await begun;
    await applied;
    const result = await rows;
    await committed;
    return [...result];
  } finally {
    conn.release();
  }
}

/** The floor's handler, over a pool built from the function's own settings. */
export function floorHandler(env: Record<string, string | undefined>) {
  const db = parseDbConfig(env);
  if (!db) throw new Error("the floor needs TORVUS_DB_URL or SUPABASE_DB_URL");
  const sql = createSql(db);
  return async (req: Request): Promise<Response> => {
    const claims = req.headers.get("x-floor-claims") ?? "{}";
    const path = new URL(req.url).pathname;
    if (path.endsWith("/vaults")) {
      const rows = await once(sql, claims, VAULTS) as Array<{ total: string }>;
      const total = Number(rows[0]?.total ?? 0);
      return Response.json({ data: rows, pagination: { limit: 20, offset: 0, total } });
    }
    if (path.endsWith("/me")) return Response.json((await once(sql, claims, ME))[0] ?? null);
    return new Response(null, { status: 404 });
  };
}
