/**
 * The request log at scale (issue 27), against the test stack's database and over HTTP: the
 * maintenance job run across days of a clock this test controls (partitions created ahead,
 * expired ones dropped, no row of a kept day lost), the bytes a logged request costs with its
 * indexes and the plans of the queries that read the log, and the raw-log setting, with the
 * usage API exact in every mode.
 *
 * The test clock is in 2020: the job then never touches the partitions the stack writes to now
 * (they end after its cutoff), and the real job at the end drops everything it made as expired.
 *
 * @module
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { api, closeDbLast, db, e2e, newKey, newTier, newUser, uniqueIp } from "./_harness.ts";
import { delay as sleep } from "../supabase/functions/_shared/deadline.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2020, 2, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

interface Partition {
  name: string;
  lower: Date;
  upper: Date;
}

/** The log's partitions of the test's year, by lower bound. */
async function testPartitions(): Promise<Partition[]> {
  return await db()<Partition[]>`select name, lower, upper from public.request_log_partitions()
    where lower < '2021-01-01'`;
}

/**
 * Waits for the dev server's first retention run (5 s after it starts, then hourly): it would drop
 * this file's old partitions as expired while a test uses them.
 */
async function afterScheduledPurge() {
  const path = Deno.env.get("TORVUS_SERVER_LOG") ??
    new URL("../.local/logs/test-server.log", import.meta.url).pathname;
  for (let i = 0; i < 100; i++) {
    if (/"job":"purge_expired"/.test(Deno.readTextFileSync(path))) return;
    await sleep(200);
  }
  assert.fail(`no purge_expired run in ${path} within 20 s`);
}

/** Drops what an earlier run of this file may have left (partitions and rows of 2019-2020). */
async function cleanUp() {
  await afterScheduledPurge();
  for (const p of await testPartitions()) await db().unsafe(`drop table public.${p.name}`);
  await db()`delete from public.api_request_log_default where created_at < '2021-01-01'`;
}

/** Inserts `n` rows at `at` + i ms; returns their request ids. */
async function insertRows(at: number, n: number): Promise<string[]> {
  const rows = await db()<{ request_id: string }[]>`
    insert into public.api_request_log (created_at, request_id, shape, status, latency_ms, ip)
    select ${iso(at)}::timestamptz + i * interval '1 ms', gen_random_uuid(), 0, 200, 1, '192.0.2.1'
    from generate_series(0, ${n - 1}) i
    returning request_id`;
  return rows.map((r) => r.request_id);
}

async function maintain(at: number) {
  const [row] = await db()<{ r: { created: string[]; dropped: string[]; skipped: string[] } }[]>`
    select public.request_log_maintain(${iso(at)}) as r`;
  return row!.r;
}

e2e(
  "request log: the job across 8 days of its own clock keeps every row of a kept day",
  async () => {
    await cleanUp();
    const sql = db();
    const [setting] = await sql<{ keep: string }[]>`select keep::text from public.retention_settings
    where relation = 'api_request_log'`;
    assert.equal(setting?.keep, "4 days", "the default keep");
    /** Request ids written per UTC day (epoch ms of its midnight). */
    const written = new Map<number, string[]>();
    // A row far ahead of the job (a skewed clock) lands in the default partition and moves into
    // its partition when the job creates it.
    const stray = T0 + 6 * DAY;
    written.set(stray - (stray % DAY), await insertRows(stray, 3));
    for (let d = 0; d < 8; d++) {
      const now = T0 + d * DAY;
      const today = now - (now % DAY);
      const done = await maintain(now);
      assert.deepEqual(done.skipped, []);
      const parts = await testPartitions();
      // Today and 3 days ahead exist, each a whole UTC day.
      for (let a = 0; a <= 3; a++) {
        const lower = today + a * DAY;
        assert.ok(
          parts.some((p) => p.lower.getTime() === lower && p.upper.getTime() === lower + DAY),
          `day ${d}: partition of ${iso(lower)} created ahead (${parts.map((p) => p.name)})`,
        );
      }
      // Nothing ends at or before now - 4 days; what ends after it is kept.
      const cutoff = now - 4 * DAY;
      assert.ok(parts.every((p) => p.upper.getTime() > cutoff), `day ${d}: expired dropped`);
      for (const name of done.dropped) assert.ok(!parts.some((p) => p.name === name));
      // Rows at both ends of today, one at the very last microsecond.
      written.set(today, [
        ...(written.get(today) ?? []),
        ...await insertRows(today, 50),
        ...await insertRows(today + DAY - 60_000, 50),
      ]);
      await sql`insert into public.api_request_log (created_at, request_id, shape, status,
      latency_ms) values (${iso(today + DAY)}::timestamptz - interval '1 microsecond',
      ${crypto.randomUUID()}, 0, 200, 1)`;
      // Every kept day has all its rows, in its own partition; expired days have none.
      for (const [day, ids] of written) {
        const [row] = await sql<{ n: number; parts: string[] }[]>`
        select count(*)::int as n, array_agg(distinct tableoid::regclass::text) as parts
        from public.api_request_log where request_id = any(${ids}::uuid[])`;
        const kept = day + DAY > cutoff;
        if (!kept) {
          assert.equal(row?.n, 0, `day ${d}: rows of ${iso(day)} dropped with their partition`);
          continue;
        }
        if (day > today + 3 * DAY) continue; // the stray, before its partition exists
        assert.equal(row?.n, ids.length, `day ${d}: every row of ${iso(day)} kept`);
        assert.deepEqual(row?.parts, [
          `api_request_log_p${iso(day).slice(0, 10).replace(/-/g, "")}_0000`,
        ]);
      }
    }
    const [dead] = await sql<{ n: number }[]>`select count(*)::int as n
    from public.api_request_log_default where created_at < '2021-01-01'`;
    assert.equal(dead?.n, 0, "the default partition kept no row of the test's days");

    // The real job (as pg_cron calls it) drops all of them as expired, and still deletes what the
    // other tables keep no longer.
    const batch = crypto.randomUUID();
    await sql`insert into public.api_log_batches (id, written_at)
    values (${batch}, now() - interval '3 days')`;
    const [purged] = await sql.unsafe<{ deleted: string; maintained: { dropped: string[] } }[]>(
      "call public.purge_expired()",
    ).simple();
    assert.ok(Number(purged?.deleted) >= 1, `deleted ${purged?.deleted}`);
    assert.equal((await testPartitions()).length, 0, "the test's partitions dropped as expired");
    assert.ok(purged!.maintained.dropped.length >= 4, JSON.stringify(purged?.maintained));
    assert.equal((await sql`select 1 from public.api_log_batches where id = ${batch}`).length, 0);
    // Retention by dropping leaves no dead tuple in the log's partitions.
    const [tuples] = await sql<{ dead: number }[]>`select coalesce(sum(n_dead_tup), 0)::int as dead
    from pg_stat_user_tables where relname like 'api_request_log_p%'`;
    assert.equal(tuples?.dead, 0);
  },
);

/** One query that reads the log, named, with its plan. */
const QUERIES: Record<string, string> = {
  "owner's view (RLS: the caller's user and keys)": `select * from public.api_request_log
    where created_at >= $1 and created_at < $2 order by created_at desc limit 100`,
  "a key's requests (investigation)": `select * from public.api_request_log
    where key_id = public.key_uuid($3) and created_at >= $1 and created_at < $2`,
  "an address's refusals (investigation)": `select * from public.api_request_log
    where ip = '198.51.100.7' and status >= 400 and created_at >= $1 and created_at < $2`,
  "one request by id, around its time": `select * from public.api_request_log
    where request_id = $4 and created_at >= $1 and created_at < $2`,
};

e2e("request log: bytes per logged request, indexes included, and the readers' plans", async () => {
  const sql = db();
  await afterScheduledPurge();
  const N = 200_000;
  const day = Date.UTC(2019, 5, 1);
  await sql`select public.request_log_add_partition(${iso(day)}, ${iso(day + DAY)})`;
  const name = "api_request_log_p20190601_0000";
  const owner = await newUser();
  // A day's traffic: 90% by 500 API keys, 10% by 200 users with tokens, 2,000 IPv4 addresses,
  // 5% refused; request ids random, as in production; inserted in time order, as written.
  await sql`insert into public.api_request_log (created_at, request_id, shape, key_id, user_id,
      latency_ms, status, ip)
    select ${iso(day)}::timestamptz + i * (interval '1 day' / ${N}), gen_random_uuid(), i % 12,
      case when i % 10 <> 0 then md5('k' || (hashtext(i::text) & 511))::uuid end,
      case when i % 10 = 0 then md5('u' || (hashtext(i::text) & 255))::uuid end,
      (random() * 50)::real, case when i % 20 = 0 then 429 else 200 end,
      ('198.51.' || (i % 2000) / 250 || '.' || i % 250)::inet
    from generate_series(0, ${N - 1}) i`;
  // The owner's rows, with a key of theirs.
  const [key] = await sql<{ id: string }[]>`insert into public.api_keys (user_id, name, mode,
      start, key_hash, tier_id)
    select ${owner.userId}, 'bytes', 'live', 'sk_live_bytes', sha256(gen_random_uuid()::text::bytea),
      id from public.tiers where name = 'free' returning id`;
  await sql`insert into public.api_request_log (created_at, request_id, shape, key_id, latency_ms,
      status) select ${iso(day + 5_000_000)}::timestamptz + i * interval '1 s', gen_random_uuid(),
      0, public.key_uuid(${key!.id}), 1, 200 from generate_series(1, 100) i`;
  await sql.unsafe(`analyze public.${name}`);
  const sizes = await sql<{ what: string; bytes: number }[]>`
    select 'table' as what, pg_relation_size(${"public." + name})::float8 as bytes
    union all
    select i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)::float8
    from pg_index i where i.indrelid = ${"public." + name}::regclass
    union all
    select 'total', pg_total_relation_size(${"public." + name})::float8`;
  const per = Object.fromEntries(sizes.map((s) => [s.what, s.bytes / N]));
  console.log(
    `request log: ${N} rows, bytes per row: ` +
      sizes.map((s) =>
        `${s.what.replace(/^api_request_log_p20190601_0000_?/, "")} ${(s.bytes / N).toFixed(1)}`
      )
        .join(", "),
  );
  assert.ok(per.total! <= 120, `${per.total} bytes per logged request`);

  // The plans, as an owner (RLS) and as the operator.
  const [sample] = await sql<{ request_id: string; key: string }[]>`
    select request_id, public.key_ulid(key_id) as key from public.${sql(name)}
    where key_id is not null limit 1`;
  // Values written in (a parameter unused by a query could not be typed by EXPLAIN).
  const values = [iso(day + 3_600_000), iso(day + 7_200_000), sample!.key, sample!.request_id];
  for (const [label, text] of Object.entries(QUERIES)) {
    const query = text.replace(/\$(\d)/g, (_, i) => `'${values[Number(i) - 1]}'`);
    const explain = (q: postgres.Sql | postgres.TransactionSql) =>
      q.unsafe<{ "QUERY PLAN": string }[]>(`explain ${query}`);
    const plan = label.startsWith("owner")
      ? await sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true),
          set_config('request.jwt.claims', ${
          JSON.stringify({ sub: owner.userId, role: "authenticated" })
        },
          true)`;
        return await explain(tx);
      })
      : await explain(sql);
    const shown = plan.map((r) => r["QUERY PLAN"]).join("\n");
    console.log(`-- ${label}\n${query}\n${shown}`);
    assert.match(shown, new RegExp(name), `${label}: pruned to the day's partition`);
    assert.doesNotMatch(shown, /Seq Scan on api_request_log_p2019/, label);
  }
  await sql.unsafe(`drop table public.${name}`);
  await sql`delete from public.api_keys where id = ${key!.id}`;
});

/** Polls the usage of `keyId` until `n` requests show (or 8 s). */
async function usageOf(keyId: string, token: string, n: number) {
  for (let i = 0;; i++) {
    const r = await api(`/api/keys/${keyId}/usage?granularity=hour`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(r.status, 200, r.text);
    if (r.body.totals.requests >= n || i >= 40) return r.body.totals;
    await sleep(200);
  }
}

e2e("request log: raw_log 'failed' and 'none' keep less, the usage stays exact", async () => {
  const sql = db();
  const key = await newKey({ mode: "live", tier: await newTier(3, 1000) });
  const token = (await newUser(3600, key.email)).token;
  const send = async (n: number) => {
    const ids: Array<[string, number]> = [];
    for (let i = 0; i < n; i++) {
      const r = await api("/api/v1/test", { headers: { "X-API-Key": key.key }, ip: uniqueIp() });
      ids.push([r.headers.get("x-request-id")!, r.status]);
    }
    return ids;
  };
  const logged = async (ids: Array<[string, number]>) =>
    (await sql<{ request_id: string }[]>`select request_id from public.api_request_log
      where request_id = any(${ids.map(([id]) => id)}::uuid[])`).map((r) => r.request_id).sort();
  try {
    await sql`update public.request_log_settings set raw_log = 'failed'`;
    const first = await send(5); // 3 answered 200, then 429s (3 a minute)
    assert.deepEqual(first.map(([, s]) => s), [200, 200, 200, 429, 429]);
    assert.deepEqual(await usageOf(key.id, token, 5), {
      requests: 5,
      success: 3,
      rate_limited: 2,
      client_errors: 0,
      server_errors: 0,
    });
    assert.deepEqual(
      await logged(first),
      first.filter(([, s]) => s >= 400).map(([id]) => id).sort(),
      "only the refusals kept",
    );
    await sql`update public.request_log_settings set raw_log = 'none'`;
    const second = await send(2);
    const totals = await usageOf(key.id, token, 7);
    assert.equal(totals.requests, 7);
    assert.equal(totals.rate_limited, 4);
    assert.deepEqual(await logged(second), [], "nothing kept");
  } finally {
    await sql`update public.request_log_settings set raw_log = 'all'`;
  }
});

closeDbLast("request log");
