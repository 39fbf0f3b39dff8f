/**
 * Third-party apps' tokens in the database (migration `20261207000000_oauth_apps.sql`): a token
 * with a `client_id` claim, as Supabase Auth issues it to an OAuth client acting for a user, may
 * do no more than that user's active grant to that app allows, whatever door it comes through
 * (the API's functions or PostgREST): vaults by scope, the profile with `profile:read`, account
 * tables and functions never. User tokens and API-key requests are the control: unchanged.
 *
 * The matrix is built from the catalogue, not from a list kept by hand: every table of `public`
 * the `authenticated` role holds a privilege on and every SECURITY DEFINER function it may call
 * must have its probes here, so an object added later without an app-token rule fails this test.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type postgres from "postgres";
import { createApiKey } from "../tools/admin/ops.ts";
import {
  asAnon,
  asRole,
  assertSqlState,
  asUser,
  type Claims,
  connectTestDb,
  createTestUser,
  type TestUser,
  withDatabaseBefore,
} from "./_db.ts";

type Tx = postgres.TransactionSql;
type Rows = postgres.PendingQuery<postgres.Row[]>;

/** What a rule needs: an API scope, never an app (account), or nothing (public data). */
type Need =
  | "vaults:read"
  | "vaults:write"
  | "vaults:delete"
  | "profile:read"
  | "account"
  | "public";
type Op = "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "EXECUTE";

/** One thing a token may try; it succeeded when it returned rows. */
interface Probe {
  /** A table, or a function's signature as `regprocedure` prints it. */
  object: string;
  op: Op;
  need: Need;
  run: (tx: Tx, f: Fixture) => Rows;
}

/** Rows the probes act on, and the token whose request runs them. */
interface Fixture {
  sub: string;
  endpointId: string;
  deliveryId: string;
  ownClientId: string;
  otherClientId: string;
}

const ALL = ["vaults:read", "vaults:write", "vaults:delete", "profile:read"];
const secret = () =>
  `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64")}`;
const randomHash = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
const LAST_HOUR = "now() - interval '1 hour'";

/** A probe that reads `column` of the table `object`: the probe names the very table it runs on. */
function reads(object: string, need: Need, column = "id"): Probe {
  return {
    object,
    op: "SELECT",
    need,
    run: (tx) => tx`select ${tx(column)} from ${tx(`public.${object}`)}`,
  };
}

/** A probe that deletes every row of the table `object` it may. */
function deletes(object: string, need: Need): Probe {
  return {
    object,
    op: "DELETE",
    need,
    run: (tx) => tx`delete from ${tx(`public.${object}`)} returning id`,
  };
}

const PROBES: Probe[] = [
  reads("tiers", "public"),
  reads("accounts", "account", "user_id"),
  reads("api_keys", "account"),
  {
    object: "api_keys",
    op: "INSERT",
    need: "account",
    run: (tx, f) =>
      tx`insert into public.api_keys (user_id, name, mode, start, key_hash)
        values (${f.sub}, 'probe', 'live', 'sk_live_abcd', ${randomHash()}) returning id`,
  },
  {
    object: "api_keys",
    op: "UPDATE",
    need: "account",
    run: (tx) => tx`update public.api_keys set name = 'probe' returning id`,
  },
  reads("vaults", "vaults:read"),
  {
    object: "vaults",
    op: "INSERT",
    need: "vaults:write",
    run: (tx) => tx`insert into public.vaults (name) values ('probe') returning id`,
  },
  {
    object: "vaults",
    op: "UPDATE",
    need: "vaults:write",
    run: (tx) => tx`update public.vaults set name = 'renamed' where status = 'active' returning id`,
  },
  // The API's delete of a vault: deactivating it.
  {
    object: "vaults",
    op: "UPDATE",
    need: "vaults:delete",
    run: (tx) =>
      tx`update public.vaults set status = 'inactive' where status = 'active' returning id`,
  },
  reads("api_request_log", "account", "request_id"),
  reads("api_refusals", "account", "subject"),
  reads("api_usage_hourly", "account", "key_id"),
  reads("api_app_usage_hourly", "account", "client_id"),
  reads("webhook_endpoints", "account"),
  {
    object: "webhook_endpoints",
    op: "INSERT",
    need: "account",
    run: (tx) =>
      tx`insert into public.webhook_endpoints (mode, url, events, secret)
        values ('live', 'https://example.com/probe', '{vault.created}', ${secret()}) returning id`,
  },
  {
    object: "webhook_endpoints",
    op: "UPDATE",
    need: "account",
    run: (tx) => tx`update public.webhook_endpoints set description = 'probe' returning id`,
  },
  deletes("webhook_endpoints", "account"),
  reads("webhook_events", "account"),
  reads("webhook_deliveries", "account"),
  reads("oauth_apps", "account"),
  {
    object: "oauth_apps",
    op: "UPDATE",
    need: "account",
    run: (tx) => tx`update public.oauth_apps set name = 'probe' returning id`,
  },
  deletes("oauth_apps", "account"),
  reads("oauth_grants", "account"),
  {
    object: "oauth_grants",
    op: "INSERT",
    need: "account",
    run: (tx, f) =>
      tx`insert into public.oauth_grants (client_id, scopes)
        values (${f.ownClientId}, '{profile:read}') returning id`,
  },
  {
    object: "oauth_grants",
    op: "UPDATE",
    need: "account",
    run: (tx) =>
      tx`update public.oauth_grants set revoked_at = now() where revoked_at is null returning id`,
  },
  {
    object: "current_user_profile()",
    op: "EXECUTE",
    need: "profile:read",
    run: (tx) => tx`select id from public.current_user_profile()`,
  },
  {
    object: "my_request_log(timestamp with time zone,timestamp with time zone,integer)",
    op: "EXECUTE",
    need: "account",
    run: (tx) =>
      tx`select request_id from public.my_request_log(${tx.unsafe(LAST_HOUR)},
        now() + interval '1 hour')`,
  },
  {
    object: "webhook_rotate_secret(text,text,integer)",
    op: "EXECUTE",
    need: "account",
    run: (tx, f) =>
      tx`select 1 where public.webhook_rotate_secret(${f.endpointId}, ${secret()}, 0)`,
  },
  {
    object: "webhook_send_test(text)",
    op: "EXECUTE",
    need: "account",
    run: (tx, f) => tx`select 1 where public.webhook_send_test(${f.endpointId}) is not null`,
  },
  {
    object: "webhook_retry_delivery(text,text,interval)",
    op: "EXECUTE",
    need: "account",
    run: (tx, f) =>
      tx`select 1 where public.webhook_retry_delivery(${f.endpointId}, ${f.deliveryId},
        interval '1 hour') is not null`,
  },
  {
    object: "oauth_app_requested_scopes(text)",
    op: "EXECUTE",
    need: "account",
    run: (tx, f) =>
      tx`select 1 where public.oauth_app_requested_scopes(${f.otherClientId}) is not null`,
  },
  // The caller's own power: an app learns its grant's scopes, nothing else (checked by value).
  {
    object: "request_app_scopes()",
    op: "EXECUTE",
    need: "public",
    run: (tx) => tx`select public.request_app_scopes() as scopes`,
  },
];

/** A refusal: no privilege or policy (42501), or a guard's TV4xx. */
const REFUSED = /^(42501|TV4\d\d)$/;

class Rollback extends Error {}

/** Runs `fn` as `authenticated` with `claims` and rolls back: its rows, or the refusal's code. */
async function probe(
  sql: postgres.Sql,
  claims: Claims,
  fn: (tx: Tx) => Rows,
): Promise<{ rows: postgres.Row[] } | { code: string }> {
  let rows: postgres.Row[] = [];
  try {
    await sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      rows = [...await fn(tx)];
      throw new Rollback();
    });
  } catch (error) {
    if (error instanceof Rollback) return { rows };
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && REFUSED.test(code)) return { code };
    throw error;
  }
  throw new Error("unreachable");
}

/** The claims Supabase Auth puts in an OAuth client's access token. */
function appClaims(user: string, clientId: string): Claims {
  return {
    sub: user,
    role: "authenticated",
    aud: "authenticated",
    client_id: clientId,
    scope: "openid email profile",
    session_id: crypto.randomUUID(),
    amr: [{ method: "oauth_provider/authorization_code", timestamp: 1 }],
  };
}

Deno.test("app tokens in the database: no more than the grant, for every table", async (t) => {
  const sql = connectTestDb();
  try {
    const u = await createTestUser(sql, "apps-u");
    const other = await createTestUser(sql, "apps-o");
    const dev = await createTestUser(sql, "apps-dev");
    const tag = crypto.randomUUID().slice(0, 8);
    const newApp = async (owner: TestUser, name: string, scopes = ALL) => {
      const clientId = `${name}-${tag}`;
      await sql`insert into public.oauth_apps (owner_id, client_id, client_type, name,
          redirect_uris, scopes)
        values (${owner.id}, ${clientId}, 'confidential', ${name}, '{https://app.example/cb}',
          ${scopes}::text[])`;
      return clientId;
    };
    const clientA = await newApp(dev, "a");
    const clientB = await newApp(dev, "b");
    const clientN = await newApp(dev, "n");
    const clientU = await newApp(u, "u");

    // One row of the user in every table, so the user's own token (the control) sees each.
    await createApiKey(sql, { email: u.email, tier: "free", mode: "live" });
    const [endpoint] = await sql<{ id: string }[]>`insert into public.webhook_endpoints
        (user_id, mode, url, events, secret)
      values (${u.id}, 'live', 'https://example.com/hook', '{vault.created}', ${secret()})
      returning id`;
    await sql`insert into public.vaults (user_id, mode, name) values (${u.id}, 'live', 'v')`;
    const [delivery] = await sql<{ id: string }[]>`select id from public.webhook_deliveries
      where endpoint_id = ${endpoint!.id}`;
    const [shape] = await sql<{ id: string }[]>`
      insert into public.api_request_shapes (id, method, route, last_day)
      values (public.request_shape_id('GET', '/api/me', null, null, null), 'GET', '/api/me',
        current_date)
      on conflict (id) do update set last_day = excluded.last_day returning id`;
    await sql`insert into public.api_request_log (request_id, user_id, shape, status, latency_ms)
      values (${crypto.randomUUID()}, ${u.id}, ${shape!.id}, 200, 1)`;
    await sql`insert into public.api_refusals (subject, code, minute, status, count, first_seen,
        last_seen, user_id)
      values (${`user:${u.id}`}, 'NOT_FOUND', date_trunc('minute', now()), 404, 1, now(), now(),
        ${u.id})`;
    await sql`insert into public.api_usage_hourly (key_id, hour, user_id, mode, requests)
      values ('01JBG7XKQM9F3Y8W2Z5N4P1R6Z', date_trunc('hour', now()), ${u.id}, 'live', 1)
      on conflict do nothing`;
    await sql`insert into public.api_app_usage_hourly (client_id, hour, requests)
      values (${clientU}, date_trunc('hour', now()), 1)`;

    const grant = (scopes: string[], clientId = clientA) =>
      asUser(
        sql,
        u.claims,
        (tx) =>
          tx`insert into public.oauth_grants (client_id, scopes) values (${clientId}, ${scopes}::text[])`,
      );
    const revokeAll = () =>
      asUser(
        sql,
        u.claims,
        (tx) => tx`update public.oauth_grants set revoked_at = now() where revoked_at is null`,
      );

    await t.step(
      "every reachable table and definer function has probes and app rules",
      async () => {
        const privileges = await sql<{ object: string; op: Op }[]>`
        select c.relname::text as object, p.op
        from pg_class c cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p (op)
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
          and case when has_table_privilege('authenticated', c.oid, p.op) then true
            when p.op = 'DELETE' then false
            else has_any_column_privilege('authenticated', c.oid, p.op) end
        union all
        select p.oid::regprocedure::text, 'EXECUTE'
        from pg_proc p
        where p.pronamespace = 'public'::regnamespace and p.prosecdef
          and p.prorettype <> 'trigger'::regtype
          and has_function_privilege('authenticated', p.oid, 'execute')`;
        const probed = new Set(PROBES.map((p) => `${p.object} ${p.op}`));
        const missing = privileges.map((p) => `${p.object} ${p.op}`).filter((k) => !probed.has(k));
        assert.deepEqual(missing, [], "reachable by authenticated without an app-token probe");
        const reachable = new Set(privileges.map((p) => `${p.object} ${p.op}`));
        const stale = [...probed].filter((k) => !reachable.has(k));
        assert.deepEqual(stale, [], "probes of objects authenticated cannot reach");
        // Each table an app must not (fully) reach has RLS and a restrictive app-token policy for
        // each command the role may run on it.
        const tables = privileges.filter((p) => p.op !== "EXECUTE");
        const policies = await sql<{ tablename: string; cmd: string; rls: boolean }[]>`
        select c.relname as tablename, coalesce(p.cmd, '') as cmd, c.relrowsecurity as rls
        from pg_class c left join pg_policies p on p.schemaname = 'public'
          and p.tablename = c.relname and p.permissive = 'RESTRICTIVE'
          and p.policyname like 'app tokens %' and 'authenticated' = any (p.roles)
        where c.relnamespace = 'public'::regnamespace
          and c.relname = any (${tables.map((p) => p.object)})`;
        for (const { object, op } of tables) {
          const need = PROBES.find((p) => p.object === object && p.op === op)!.need;
          const rows = policies.filter((p) => p.tablename === object);
          assert.ok(rows.every((r) => r.rls), `${object}: RLS`);
          if (need === "public") continue;
          assert.ok(
            rows.some((r) => r.cmd === op || r.cmd === "ALL"),
            `${object}: no restrictive "app tokens" policy for ${op}`,
          );
        }
      },
    );

    interface Case {
      name: string;
      claims: Claims;
      /** The grant's power; null: no app (a user's token, an API-key request). */
      scopes: string[] | null;
      prepare?: () => Promise<unknown>;
    }
    const app = (scopes: string[]): Case => ({
      name: `app token, grant ${scopes.join(" ")}`,
      claims: appClaims(u.id, clientA),
      scopes,
      prepare: () => grant(scopes),
    });
    const cases: Case[] = [
      { name: "user token (control)", claims: u.claims, scopes: null, prepare: () => grant(ALL) },
      {
        name: "API-key request claims (control)",
        claims: { ...u.claims, key_id: "01JBG7XKQM9F3Y8W2Z5N4P1R6Z", key_mode: "live" },
        scopes: null,
        prepare: () => grant(ALL),
      },
      {
        name: "token with an empty client_id (control)",
        claims: { ...u.claims, client_id: "" },
        scopes: null,
        prepare: () => grant(ALL),
      },
      app(["vaults:read"]),
      app(["vaults:read", "vaults:write"]),
      app(["vaults:read", "vaults:delete"]),
      app(["profile:read"]),
      app(ALL),
      {
        name: "app token, all granted, the app now asks profile:read only",
        claims: appClaims(u.id, clientN),
        scopes: ["profile:read"],
        prepare: async () => {
          await grant(ALL, clientN);
          await sql`update public.oauth_apps set scopes = '{profile:read}'
            where client_id = ${clientN}`;
        },
      },
      {
        name: "app token, never granted",
        claims: appClaims(u.id, clientB),
        scopes: [],
        prepare: () => grant(ALL),
      },
      {
        name: "app token, grant revoked",
        claims: appClaims(u.id, clientA),
        scopes: [],
        prepare: async () => {
          await grant(ALL);
          await revokeAll();
        },
      },
      {
        name: "app token, unknown client_id",
        claims: appClaims(u.id, `unknown-${tag}`),
        scopes: [],
        prepare: () => grant(ALL),
      },
      {
        name: "app token of a user without a grant (another user's grant)",
        claims: appClaims(other.id, clientA),
        scopes: [],
        prepare: () => grant(ALL),
      },
    ];

    let checks = 0;
    for (const c of cases) {
      await t.step(c.name, async () => {
        await c.prepare?.();
        const f: Fixture = {
          sub: String(c.claims.sub),
          endpointId: endpoint!.id,
          deliveryId: delivery!.id,
          ownClientId: clientU,
          otherClientId: clientA,
        };
        for (const p of PROBES) {
          const outcome = await probe(sql, c.claims, (tx) => p.run(tx, f));
          const label = `${p.object} ${p.op} (${p.need}): ${JSON.stringify(outcome)}`;
          checks++;
          if (p.object === "request_app_scopes()") {
            assert.ok("rows" in outcome, label);
            assert.deepEqual(outcome.rows[0]?.scopes ?? null, c.scopes, label);
            continue;
          }
          const allowed = c.scopes === null || p.need === "public" ||
            (p.need !== "account" && c.scopes.includes(p.need));
          if (allowed) {
            assert.ok("rows" in outcome && outcome.rows.length > 0, `allowed: ${label}`);
          } else {
            assert.ok("code" in outcome || outcome.rows.length === 0, `refused: ${label}`);
          }
        }
        await revokeAll();
      });
    }
    await t.step(
      `matrix: ${checks} checks (${PROBES.length} probes x ${cases.length} tokens)`,
      () => {
        assert.equal(checks, PROBES.length * cases.length);
      },
    );

    await t.step(
      "policies read the claims and the grant once per statement (InitPlan)",
      async () => {
        await grant(["vaults:read"]);
        const plan = await asUser(
          sql,
          appClaims(u.id, clientA),
          (tx) => tx<{ "QUERY PLAN": string }[]>`explain select * from public.vaults`,
        );
        const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
        assert.match(text, /InitPlan/);
        assert.doesNotMatch(text, /SubPlan/);
        await revokeAll();
      },
    );

    await t.step(
      "grants: scopes within the app's, one active per app, final revocation",
      async () => {
        const narrow = await newApp(dev, "narrow", ["vaults:read"]);
        await assertSqlState(grant(["vaults:read", "vaults:write"], narrow), "TV400");
        await assertSqlState(grant(["vaults:read"], `missing-${tag}`), "TV404");
        // Grants are the user's own: no user_id in the insert grant.
        await assertSqlState(
          asUser(
            sql,
            u.claims,
            (tx) =>
              tx`insert into public.oauth_grants (user_id, client_id, scopes)
            values (${other.id}, ${clientA}, '{vaults:read}')`,
          ),
          "42501",
        );
        await grant(["vaults:read"]);
        await grant(["vaults:read", "vaults:write"]);
        const rows = await sql<{ scopes: string[]; revoked: boolean }[]>`
        select scopes, revoked_at is not null as revoked from public.oauth_grants
        where user_id = ${u.id} and client_id = ${clientA} order by granted_at, revoked_at nulls last`;
        assert.equal(
          rows.filter((r) => !r.revoked).length,
          1,
          "a new consent supersedes",
        );
        assert.deepEqual(rows.find((r) => !r.revoked)?.scopes, ["vaults:read", "vaults:write"]);
        // Operators are not bound by the guard, but the index holds them to one active grant.
        await assertSqlState(
          sql`insert into public.oauth_grants (user_id, client_id, scopes)
          values (${u.id}, ${clientA}, '{vaults:read}')`,
          "23505",
        );
        await revokeAll();
        await assertSqlState(
          asUser(
            sql,
            u.claims,
            (tx) =>
              tx`update public.oauth_grants set revoked_at = null where client_id = ${clientA}`,
          ),
          "TV409",
        );
        // Another user sees none of them.
        const seen = await asUser(
          sql,
          other.claims,
          (tx) => tx`select 1 from public.oauth_grants union all select 1 from public.oauth_apps`,
        );
        assert.equal(seen.length, 0);
      },
    );

    await t.step("apps: closed scopes, written by the service only, owner's columns", async () => {
      const bad = [[], ["vaults:admin"], ["vaults:read", "vaults:read"], ["vaults:write"], [
        "profile:read",
        "vaults:delete",
      ]];
      for (const scopes of bad) {
        await assertSqlState(
          sql`insert into public.oauth_apps (owner_id, client_id, client_type, name,
              redirect_uris, scopes)
            values (${dev.id}, ${`bad-${crypto.randomUUID()}`}, 'public', 'x', '{https://a/cb}',
              ${scopes}::text[])`,
          "23514",
        );
      }
      await assertSqlState(
        sql`insert into public.oauth_apps (owner_id, client_id, client_type, name, redirect_uris,
            scopes, logo_uri)
          values (${dev.id}, ${`bad-${tag}`}, 'public', 'x', '{https://a/cb}', '{profile:read}',
            'http://plain.example/logo.png')`,
        "23514",
      );
      await assertSqlState(
        asUser(
          sql,
          dev.claims,
          (tx) =>
            tx`insert into public.oauth_apps (owner_id, client_id, client_type, name,
              redirect_uris, scopes)
            values (${dev.id}, ${`squat-${tag}`}, 'public', 'x', '{https://a/cb}',
              '{profile:read}')`,
        ),
        "42501",
      );
      for (const column of ["tier_id", "client_id", "owner_id", "client_type"]) {
        await assertSqlState(
          asUser(
            sql,
            dev.claims,
            (tx) =>
              tx`update public.oauth_apps set ${tx(column)} = ${tx(column)}
              where client_id = ${clientA}`,
          ),
          "42501",
        );
      }
      const [row] = await sql<{ tier: string }[]>`select t.name as tier from public.oauth_apps a
        join public.tiers t on t.id = a.tier_id where a.client_id = ${clientA}`;
      assert.equal(row?.tier, "free", "the owner's account's tier");
    });

    await t.step("verify_oauth_grant: the active grant for the service only", async () => {
      const call = (tx: postgres.Sql | Tx) =>
        tx<{ scopes: string[]; epoch_shard: number; tier_name: string }[]>`
          select * from public.verify_oauth_grant(${u.id}, ${clientA})`;
      await grant(["vaults:read", "profile:read"]);
      await assertSqlState(asUser(sql, u.claims, call), "42501");
      await assertSqlState(asAnon(sql, call), "42501");
      const [found] = await asRole(sql, "service_role", { role: "service_role" }, call);
      assert.deepEqual(found?.scopes, ["vaults:read", "profile:read"]);
      assert.equal(found?.tier_name, "free");
      // The shard the API computes from the token's sub alone.
      const digest = createHash("sha256").update(Buffer.from(u.id.replaceAll("-", ""), "hex"))
        .digest();
      assert.equal(found?.epoch_shard, (digest[0]! << 4) | (digest[1]! >> 4));
      await revokeAll();
      assert.equal((await call(sql)).length, 0, "revoked: no row");
    });

    await t.step("events: the app's owner hears of grants and revocations", async () => {
      const [hook] = await sql<{ id: string }[]>`insert into public.webhook_endpoints
          (user_id, mode, url, events, secret)
        values (${dev.id}, 'live', 'https://example.com/dev',
          '{app_grant.created,app_grant.revoked}', ${secret()})
        returning id`;
      await grant(["profile:read"]);
      await revokeAll();
      const events = await sql<{ type: string; data: Record<string, unknown> }[]>`
        select e.type, e.payload -> 'data' as data from public.webhook_deliveries d
        join public.webhook_events e on e.id = d.event_id
        where d.endpoint_id = ${hook!.id} order by e.created_at, e.id`;
      assert.deepEqual(
        events.map((e) => e.type),
        ["app_grant.created", "app_grant.revoked"],
      );
      for (const e of events) {
        assert.equal(e.data.user_id, u.id);
        assert.deepEqual(e.data.scopes, ["profile:read"]);
        assert.equal(e.data.client_id, clientA);
        assert.deepEqual(
          Object.keys(e.data).sort(),
          ["app_id", "client_id", "granted_at", "scopes", "user_id"]
            .concat(e.type === "app_grant.revoked" ? ["revoked_at"] : []).sort(),
        );
      }
    });

    await t.step("request shapes: the app in the hash, old shapes keep their ids", async () => {
      const [ids] = await sql<{ plain: string; legacy: string; app: string }[]>`
        select public.request_shape_id('GET', '/api/me', null, 'live', 'ua') as plain,
          ('x' || left(encode(sha256(convert_to(concat_ws(e'\n', 'GET', '/api/me', '', 'live',
            'ua'), 'UTF8')), 'hex'), 16))::bit(64)::bigint as legacy,
          public.request_shape_id('GET', '/api/me', null, 'live', 'ua', ${clientA}) as app`;
      assert.equal(ids?.plain, ids?.legacy);
      assert.notEqual(ids?.app, ids?.plain);
    });
  } finally {
    await sql.end();
  }
});

Deno.test("apps migration: applies on a database with the earlier migrations and data", () =>
  withDatabaseBefore("20261207000000_oauth_apps.sql", async (sql, apply) => {
    const user = crypto.randomUUID();
    await sql`insert into auth.users (id, email) values (${user}, 'before@torvus.test')`;
    await sql`insert into public.vaults (user_id, name) values (${user}, 'kept')`;
    const [shape] = await sql<{ id: string }[]>`insert into public.api_request_shapes
        (id, method, route, mode, last_day)
      values (public.request_shape_id('GET', '/api/me', null, 'live', null), 'GET', '/api/me',
        'live', current_date) returning id`;
    await sql`insert into public.api_request_log (request_id, user_id, shape, status, latency_ms)
      values (${crypto.randomUUID()}, ${user}, ${shape!.id}, 200, 1)`;

    await apply();

    const [after] = await sql<{ same: boolean; rows: number; keep: string }[]>`
      select public.request_shape_id('GET', '/api/me', null, 'live', null) = ${shape!.id} as same,
        (select count(*)::int from public.api_request_log_entries where user_id = ${user}
          and client_id is null) as rows,
        (select keep::text from public.retention_settings
          where relation = 'api_app_usage_hourly') as keep`;
    assert.deepEqual({ ...after }, { same: true, rows: 1, keep: "1 year 1 mon" });
    const vaults = await asUser(
      sql,
      { sub: user, role: "authenticated" },
      (tx) => tx`select name from public.vaults`,
    );
    assert.deepEqual(vaults.map((v) => v.name), ["kept"]);
  }));
