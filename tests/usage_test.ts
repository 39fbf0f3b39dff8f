/**
 * Usage that owners can see, and a request log an attacker cannot fill (issue 14), over real
 * HTTP against the test stack: the usage of a key shows within 5 s, refusal floods become
 * counters that add up to the requests answered, the usage API validates its parameters and
 * keeps to the caller's keys, and retention removes old rows but keeps the aggregates.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  api,
  assertError,
  closeDb,
  db,
  e2e,
  newKey,
  newTier,
  newUser,
  type TestKey,
  uniqueIp,
} from "./_harness.ts";
import { delay as sleep } from "../supabase/functions/_shared/deadline.ts";

/** The owner's bearer token of a key. */
async function ownerToken(key: TestKey): Promise<string> {
  return (await newUser(3600, key.email)).token;
}

/** Polls `path` as `token` until `done(body)` or `ms` pass; returns the last answer. */
async function poll(
  path: string,
  token: string,
  done: (body: { totals: { requests: number } }) => boolean,
  ms = 5_000,
) {
  const until = performance.now() + ms;
  while (true) {
    const r = await api(path, { headers: { Authorization: `Bearer ${token}` }, ip: uniqueIp() });
    assert.equal(r.status, 200, r.text);
    if (done(r.body) || performance.now() > until) {
      return { ...r, waited: ms - (until - performance.now()) };
    }
    await sleep(100);
  }
}

e2e("usage: 25 requests with a key show in its usage within 5 s", async () => {
  const key = await newKey({ mode: "test", tier: await newTier(100, 1000) });
  const token = await ownerToken(key);
  const ip = uniqueIp();
  const started = performance.now();
  for (let i = 0; i < 25; i++) {
    const r = await api("/api/v1/test", { headers: { "X-API-Key": key.key }, ip });
    assert.equal(r.status, 200, r.text);
  }
  const r = await poll(
    `/api/keys/${key.id}/usage`,
    token,
    (b) => b.totals.requests >= 25,
  );
  const seconds = (performance.now() - started) / 1000;
  assert.deepEqual(r.body.totals, {
    requests: 25,
    success: 25,
    rate_limited: 0,
    client_errors: 0,
    server_errors: 0,
  });
  assert.equal(r.body.granularity, "day");
  assert.equal(r.body.buckets.length, 30, "the last 30 days, zeros included");
  const today = r.body.buckets.at(-1);
  assert.equal(today.requests, 25);
  assert.match(today.start, /T00:00:00\.000Z$/);
  console.log(`usage: 25 requests visible ${seconds.toFixed(1)} s after the first was sent`);

  const hourly = await api(`/api/keys/${key.id.toLowerCase()}/usage?granularity=hour`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(hourly.status, 200, hourly.text);
  assert.equal(hourly.body.buckets.length, 24);
  assert.equal(hourly.body.totals.requests, 25);
  assert.equal(hourly.body.buckets.at(-1).requests, 25);
});

e2e("usage: 429s and refused keys count as rate_limited and client_errors", async () => {
  const key = await newKey({ mode: "live", tier: await newTier(5, 1000) });
  const token = await ownerToken(key);
  const ip = uniqueIp();
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    statuses.push((await api("/api/v1/test", { headers: { "X-API-Key": key.key }, ip })).status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
  const revoke = await api(`/api/keys/${key.id}/revoke`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(revoke.status, 200, revoke.text);
  const refused = await api("/api/v1/test", { headers: { "X-API-Key": key.key }, ip });
  assertError(refused, 401, "API_KEY_NOT_ACTIVE");
  const r = await poll(`/api/keys/${key.id}/usage`, token, (b) => b.totals.requests >= 9);
  assert.deepEqual(r.body.totals, {
    requests: 9,
    success: 5,
    rate_limited: 3,
    client_errors: 1,
    server_errors: 0,
  });
});

e2e("usage: /api/usage sums the caller's keys, by key and mode, and never another's", async () => {
  const live = await newKey({ mode: "live" });
  const test = await newKey({ mode: "test", email: live.email });
  const stranger = await newKey({ mode: "live" });
  const token = await ownerToken(live);
  const ip = uniqueIp();
  for (const [k, n] of [[live, 3], [test, 2], [stranger, 4]] as const) {
    for (let i = 0; i < n; i++) {
      assert.equal(
        (await api("/api/v1/test", { headers: { "X-API-Key": k.key }, ip })).status,
        200,
      );
    }
  }
  const all = await poll("/api/usage", token, (b) => b.totals.requests >= 5);
  assert.equal(all.body.totals.requests, 5, "3 live + 2 test, not the stranger's 4");
  const auth = { headers: { Authorization: `Bearer ${token}` } };
  const byMode = await api("/api/usage?mode=test&granularity=hour", auth);
  assert.equal(byMode.status, 200, byMode.text);
  assert.equal(byMode.body.totals.requests, 2);
  const byKey = await api(`/api/usage?key_id=${live.id.toLowerCase()}`, auth);
  assert.equal(byKey.body.totals.requests, 3);
  assertError(await api(`/api/usage?key_id=${stranger.id}`, auth), 404, "NOT_FOUND");
  assertError(await api(`/api/keys/${stranger.id}/usage`, auth), 404, "NOT_FOUND");
});

e2e("usage: bad ranges, granularities and ids are 400 naming the parameter", async () => {
  const key = await newKey();
  const auth = { headers: { Authorization: `Bearer ${await ownerToken(key)}` } };
  const base = `/api/keys/${key.id}/usage`;
  const cases: Array<[string, string]> = [
    [`${base}?granularity=week`, "granularity"],
    [`${base}?from=yesterday`, "from"],
    [`${base}?to=2026-13-40`, "to"],
    [`${base}?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z`, "from"],
    [`${base}?granularity=hour&from=2026-01-01&to=2026-03-01`, "from"],
    [`${base}?granularity=day&from=2020-01-01&to=2026-01-01`, "from"],
    [`${base}?limit=5`, "limit"],
    [`/api/keys/not-a-key/usage`, "id"],
    [`/api/usage?key_id=nope`, "key_id"],
    [`/api/usage?mode=staging`, "mode"],
    [`/api/usage?from=2026-11-01&from=2026-11-02`, "from"],
    // One character past each bound: an instant of 36 characters, a key id of 27.
    [`${base}?from=2026-11-01T00:00:00.1234567890%2B00:00`, "from"],
    [`/api/usage?to=2026-11-03T00:00:00.1234567890%2B00:00`, "to"],
    [`/api/usage?key_id=${key.id}0`, "key_id"],
  ];
  for (const [path, parameter] of cases) {
    const r = await api(path, auth);
    assertError(r, 400, "VALIDATION_FAILED");
    assert.match(r.body.message, new RegExp(`: ${parameter}: `), `${path}: ${r.body.message}`);
  }
  const noToken = await api(base);
  assertError(noToken, 401, "MISSING_AUTH_TOKEN");
  // At the bounds: 35 characters (nanoseconds and an offset), a key id in lower case.
  const longest = await api(
    `/api/usage?from=2026-11-01T00:00:00.123456789%2B00:00&key_id=${key.id.toLowerCase()}`,
    auth,
  );
  assert.equal(longest.status, 200, longest.text);
  const ok = await api(`${base}?from=2026-11-01&to=2026-11-03T12:00:00%2B02:00`, auth);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.from, "2026-11-01T00:00:00.000Z");
  assert.equal(ok.body.to, "2026-11-04T00:00:00.000Z", "widened to whole days");
  assert.equal(ok.body.buckets.length, 3);
});

/** Rows of every table the request log writes. */
async function tableRows(): Promise<number> {
  const [row] = await db()<{ n: number }[]>`select
    (select count(*) from public.api_request_log) + (select count(*) from public.api_refusals) +
    (select count(*) from public.api_usage_hourly) + (select count(*) from public.api_log_batches)
    as n`;
  return Number(row?.n ?? 0);
}

/** Sends requests from `connections` loops for `seconds`; returns the statuses answered. */
async function flood(
  headers: Record<string, string>,
  ip: string,
  connections: number,
  seconds: number,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const until = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < until) {
      const r = await fetch(
        new URL(
          "/api/v1/test",
          Deno.env.get("TORVUS_TEST_BASE_URL") ??
            "http://127.0.0.1:29331",
        ),
        { headers: { ...headers, "X-Forwarded-For": ip } },
      );
      await r.body?.cancel();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  }));
  return statuses;
}

e2e(
  "request log: a flood from one address adds at most 2,000 rows, and counts add up",
  async () => {
    const ip = uniqueIp();
    const key = await newKey({ mode: "live" });
    const before = await tableRows();
    const garbage = `sk_live_${"A".repeat(48)}`;
    const first = await flood({ "X-API-Key": garbage }, ip, 50, 8);
    const second = await flood({ "X-API-Key": key.key }, ip, 50, 8);
    const sent = [...first.values(), ...second.values()].reduce((a, b) => a + b, 0);
    // Every answer is logged as a row or counted; wait until all of them are.
    const logged = async () => {
      const [row] = await db()<{ n: number }[]>`select
      (select count(*) from public.api_request_log where ip = ${ip}::inet) +
      (select coalesce(sum(count), 0) from public.api_refusals
        where subject in (${`ip:${ip}`}, ${`key:${key.id}`})) as n`;
      return Number(row?.n ?? 0);
    };
    const until = performance.now() + 10_000;
    while (await logged() < sent && performance.now() < until) await sleep(200);
    const added = await tableRows() - before;
    const summary = (m: Map<number, number>) => [...m].map(([s, n]) => `${s}×${n}`).join(" ");
    console.log(
      `flood: ${sent} requests (garbage keys: ${summary(first)}; free key: ${summary(second)}) ` +
        `added ${added} rows to the request log's tables`,
    );
    assert.equal(await logged(), sent, "full rows plus counts equal the requests answered");
    assert.ok(added <= 2_000, `${added} rows added`);
    assert.ok((first.get(401) ?? 0) > 0 && (first.get(429) ?? 0) > 0, summary(first));
    assert.ok((second.get(429) ?? 0) > 0, summary(second));
  },
);

e2e("retention: rows older than their table keeps go, aggregates stay", async () => {
  const sql = db();
  const key = await newKey();
  const oldId = crypto.randomUUID();
  const newId = crypto.randomUUID();
  // The log keeps 4 days. Rows dated before today's partition land in the default partition,
  // whose strays the job deletes once expired (partitions themselves: request_log_test.ts).
  await sql`insert into public.api_request_log (request_id, shape, key_id, status, latency_ms,
      created_at)
    values (${oldId}, 0, public.key_uuid(${key.id}), 200, 1, now() - interval '5 days'),
      (${newId}, 0, public.key_uuid(${key.id}), 200, 1, now() - interval '3 days')`;
  const hour = new Date(Date.now() - 40 * 86_400_000);
  hour.setUTCMinutes(0, 0, 0);
  await sql`insert into public.api_usage_hourly (key_id, hour, user_id, mode, requests, success)
    values (${key.id}, ${hour}, ${key.userId}, 'test', 7, 7)`;
  const subject = `ip:${uniqueIp()}`;
  await sql`insert into public.api_refusals (subject, code, minute, status, count, first_seen,
      last_seen) values (${subject}, 'INVALID_API_KEY', ${hour}, 401, 3, ${hour}, ${hour}),
      (${subject}, 'INVALID_API_KEY', now() - interval '14 months', 401, 2, now(), now())`;
  // As pg_cron calls it: a statement of its own, in the simple protocol (it commits as it goes).
  const [purged] = await sql.unsafe<{ deleted: string }[]>("call public.purge_expired(null, 2)")
    .simple();
  assert.ok(Number(purged?.deleted) >= 1, `deleted ${purged?.deleted}`);
  const ids = await sql<{ request_id: string }[]>`select request_id from public.api_request_log
    where request_id in (${oldId}, ${newId})`;
  assert.deepEqual(ids.map((r) => r.request_id), [newId], "5 days old: gone; 3: kept");
  const [usage] = await sql<{ requests: number }[]>`select requests from public.api_usage_hourly
    where key_id = ${key.id} and hour = ${hour}`;
  assert.equal(usage?.requests, 7, "the 40-day-old hourly usage is kept (13 months)");
  const refusals = await sql`select 1 from public.api_refusals where subject = ${subject}`;
  assert.equal(refusals.length, 1, "the 40-day-old counter stays, the 14-month-old one goes");
  const owner = { headers: { Authorization: `Bearer ${await ownerToken(key)}` } };
  const r = await api(
    `/api/keys/${key.id}/usage?granularity=day&from=${hour.toISOString()}`,
    owner,
  );
  assert.equal(r.body.totals.requests, 7, "usage older than the raw log still answers");
});

e2e("retention: the dev server runs the job as pg_cron would", async () => {
  const log = Deno.readTextFileSync(
    new URL("../.local/logs/test-server.log", import.meta.url),
  );
  assert.match(log, /"msg":"scheduled job done","job":"purge_expired"/);
  await closeDb();
});
