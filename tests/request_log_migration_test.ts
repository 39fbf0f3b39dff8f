/**
 * Migration `20261206000000_request_log_partitioned.sql` on a running system's data: a database
 * of its own (created and dropped here, on the test stack's PostgreSQL) gets the bootstrap and
 * every migration before it, rows in the old unpartitioned form, then the migration. Every row
 * the log still keeps is in the new table with the same facts; older ones are not copied.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withDatabaseBefore } from "./_db.ts";

const MIGRATION = "20261206000000_request_log_partitioned.sql";

Deno.test("request log migration: kept rows move into partitions with the same facts", () =>
  withDatabaseBefore(MIGRATION, async (sql, apply) => {
    const user = crypto.randomUUID();
    const keyId = "01JBG7XKQM9F3Y8W2Z5N4P1R6T";
    await sql`insert into auth.users (id, email) values (${user}, 'migrated@torvus.test')`;
    await sql`insert into public.api_keys (id, user_id, name, mode, start, key_hash, tier_id)
      select ${keyId}, ${user}, 'k', 'live', 'sk_live_abcd', sha256('k'), id
      from public.tiers where name = 'free'`;
    const ids = [
      crypto.randomUUID(),
      crypto.randomUUID(),
      crypto.randomUUID(),
      crypto.randomUUID(),
    ];
    await sql`insert into public.api_request_log (request_id, key_id, user_id, mode, method, path,
        status, code, latency_ms, ip, user_agent, created_at) values
      (${ids[0]!}, ${keyId}, ${user}, 'live', 'GET', '/api/v1/test', 200, null, 1.25,
        '203.0.113.5', 'curl/8.5', now() - interval '1 hour'),
      (${ids[1]!}, null, ${user}, 'test', 'PATCH', ${`/api/keys/${keyId}`}, 404, 'NOT_FOUND', 3.5,
        '2001:db8::1', null, now() - interval '2 days'),
      (${ids[2]!}, null, null, null, 'GET', '/api/v1/test', 401, 'INVALID_API_KEY', 0.5,
        '198.51.100.9', 'scanner', now() - interval '3 days'),
      (${ids[3]!}, ${keyId}, ${user}, 'live', 'GET', '/api/v1/test', 200, null, 1, null, null,
        now() - interval '10 days')`;

    await apply();

    const [keep] = await sql<{ keep: string }[]>`select keep::text from public.retention_settings
      where relation = 'api_request_log'`;
    assert.equal(keep?.keep, "4 days", "the old default keep becomes 4 days");
    const rows = await sql<Record<string, unknown>[]>`select e.request_id, e.key_id,
        e.user_id, e.mode, e.method, e.route, e.status, e.code, e.latency_ms, host(e.ip) as ip,
        e.user_agent, l.tableoid::regclass::text as part
      from public.api_request_log_entries e
      join public.api_request_log l using (created_at, request_id)
      order by e.created_at desc`;
    const parts = rows.map((r) => r.part);
    for (const r of rows) delete r.part;
    assert.deepEqual([...rows], [
      {
        request_id: ids[0],
        key_id: keyId,
        user_id: user,
        mode: "live",
        method: "GET",
        route: "/api/v1/test",
        status: 200,
        code: null,
        latency_ms: 1.25,
        ip: "203.0.113.5",
        user_agent: "curl/8.5",
      },
      {
        request_id: ids[1],
        key_id: null,
        user_id: user,
        mode: "test",
        method: "PATCH",
        route: "/api/keys/{id}",
        status: 404,
        code: "NOT_FOUND",
        latency_ms: 3.5,
        ip: "2001:db8::1",
        user_agent: null,
      },
      {
        request_id: ids[2],
        key_id: null,
        user_id: null,
        mode: null,
        method: "GET",
        route: "/api/v1/test",
        status: 401,
        code: "INVALID_API_KEY",
        latency_ms: 0.5,
        ip: "198.51.100.9",
        user_agent: "scanner",
      },
    ], "the 10-day-old row is past the 4 days kept and not copied");
    assert.ok(parts.every((p) => /^api_request_log_p\d{8}_0000$/.test(String(p))), String(parts));
    const [stored] = await sql<{ user_id: string | null }[]>`select user_id
      from public.api_request_log where request_id = ${ids[0]!}`;
    assert.equal(stored?.user_id, null, "a key's row stores the key, not its owner");
    const [old] = await sql<{ n: number }[]>`select count(*)::int as n from pg_class
      where relname = 'api_request_log_unpartitioned'`;
    assert.equal(old?.n, 0, "the old table is gone");
  }));
