/**
 * The migrated schema's isolation: RLS policies, column grants and the api_keys guard trigger,
 * exercised as the functions will use them (role + request.jwt.claims per transaction).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type postgres from "postgres";
import { hashApiKey } from "../supabase/functions/_shared/auth/key_format.ts";
import { createApiKey, setKeyStatus, setUserTier } from "../tools/admin/ops.ts";
import {
  asAnon,
  asRole,
  assertSqlState,
  asUser,
  type Claims,
  connectTestDb,
  createTestUser,
  type TestUser,
  userClaims,
} from "./_db.ts";

/** Anything that runs queries: the client itself, or a role-scoped transaction. */
type Q = postgres.ISql;

const DENIED = "42501";
/** A fresh 32-byte value for key_hash (unique per row, so reruns never collide). */
const randomHash = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
const KEY_COLUMNS = "id, user_id, name, status, tier_id, expires_at";

Deno.test("database isolation (RLS, grants, guard trigger)", async (t) => {
  const sql = connectTestDb();
  try {
    const a = await createTestUser(sql, "rls-a");
    const b = await createTestUser(sql, "rls-b");
    const newKey = (user: TestUser, extra: { expiresAt?: Date } = {}) =>
      createApiKey(sql, { email: user.email, tier: "free", mode: "live", ...extra });
    const keyA = await newKey(a);
    const keyB = await newKey(b);
    const vault = async (user: TestUser, mode: "live" | "test") =>
      (await sql<{ id: string }[]>`
        insert into public.vaults (user_id, mode, name) values (${user.id}, ${mode}, 'v')
        returning id`)[0]?.id ?? "";
    const vaultB = await vault(b, "live");
    await vault(a, "live");
    await vault(b, "test");
    const [shape] = await sql<{ id: string }[]>`
      insert into public.api_request_shapes (id, method, route, last_day)
      values (public.request_shape_id('GET', '/api/v1/test', null, null, null), 'GET',
        '/api/v1/test', current_date)
      on conflict (id) do update set last_day = excluded.last_day returning id`;
    for (const user of [a, b]) {
      await sql`insert into public.api_request_log (request_id, user_id, shape, status, latency_ms)
        values (${crypto.randomUUID()}, ${user.id}, ${shape!.id}, 200, 1.5)`;
    }
    // A key's rows name the key only (its owner is the key's): the owner reads them too.
    for (const key of [keyA, keyB]) {
      await sql`insert into public.api_request_log (request_id, key_id, shape, status, latency_ms)
        values (${crypto.randomUUID()}, public.key_uuid(${key.id}), ${shape!.id}, 200, 1.5)`;
    }
    const ids = <T extends { id: string }>(rows: readonly T[]) => rows.map((r) => r.id);
    /** Asserts that `fn`, run as the user of `claims`, fails with `code` (no privilege). */
    const refused = (
      claims: Claims,
      fn: (tx: postgres.TransactionSql) => Promise<unknown>,
      code = DENIED,
    ) => assertSqlState(asUser(sql, claims, fn), code);

    await t.step("api_keys: a user sees only their own keys", async () => {
      const rows = await asUser(
        sql,
        a.claims,
        (tx) =>
          tx<{ id: string; user_id: string }[]>`select ${
            tx.unsafe(KEY_COLUMNS)
          } from public.api_keys`,
      );
      assert.ok(rows.length >= 1);
      assert.ok(rows.every((r) => r.user_id === a.id));
      assert.ok(ids(rows).includes(keyA.id));
      assert.ok(!ids(rows).includes(keyB.id));
    });

    await t.step("api_keys: a user cannot change or delete another's key", async () => {
      const updated = await asUser(
        sql,
        a.claims,
        (tx) =>
          tx`update public.api_keys set name = 'taken', status = 'revoked' where id = ${keyB.id}
          returning id`,
      );
      assert.equal(updated.length, 0);
      await refused(a.claims, (tx) => tx`delete from public.api_keys where id = ${keyB.id}`);
      const [row] = await sql`select name, status from public.api_keys where id = ${keyB.id}`;
      assert.deepEqual({ ...row }, { name: "live key", status: "active" });
    });

    await t.step("api_keys: key_hash is not readable, not even one's own (42501)", async () => {
      const hash = Buffer.from(hashApiKey(keyA.key));
      for (
        const query of [
          (tx: Q) => tx`select key_hash from public.api_keys`,
          (tx: Q) => tx`select * from public.api_keys`,
          (tx: Q) => tx`select id from public.api_keys where key_hash = ${hash}`,
        ]
      ) {
        await refused(a.claims, query);
      }
    });

    await t.step(
      "verify_api_key: denied to anon and authenticated, allowed to services",
      async () => {
        const hash = Buffer.from(hashApiKey(keyA.key));
        const call = (tx: Q) =>
          tx<{ id: string; tier_name: string; requests_per_minute: number }[]>`
          select * from public.verify_api_key(${hash})`;
        await refused(a.claims, call);
        await assertSqlState(asAnon(sql, call), DENIED);
        for (
          const rows of [
            await asRole(sql, "service_role", { role: "service_role" }, call),
            await call(sql),
          ]
        ) {
          assert.equal(rows.length, 1);
          assert.equal(rows[0]?.id, keyA.id);
          assert.equal(rows[0]?.tier_name, "free");
          assert.equal(rows[0]?.requests_per_minute, 10);
        }
      },
    );

    await t.step("guard: a user may revoke a key but never reactivate it (TV409)", async () => {
      const key = await newKey(a);
      await refused(
        a.claims,
        (tx) => tx`update public.api_keys set status = 'suspended' where id = ${key.id}`,
        "TV409",
      );
      const [revoked] = await asUser(
        sql,
        a.claims,
        (tx) =>
          tx<{ status: string; revoked_at: Date | null }[]>`
          update public.api_keys set status = 'revoked' where id = ${key.id} returning status, revoked_at`,
      );
      assert.equal(revoked?.status, "revoked");
      assert.ok(revoked?.revoked_at instanceof Date);
      for (const status of ["active", "suspended"]) {
        await refused(
          a.claims,
          (tx) => tx`update public.api_keys set status = ${status} where id = ${key.id}`,
          "TV409",
        );
      }
      const suspended = await newKey(a);
      await setKeyStatus(sql, suspended.id, "suspended");
      await refused(
        a.claims,
        (tx) => tx`update public.api_keys set status = 'active' where id = ${suspended.id}`,
        "TV409",
      );
    });

    await t.step(
      "guard: a user cannot change tier_id or set columns outside the grants (42501)",
      async () => {
        const enterprise = "01JBG7XKQM9F3Y8W2Z5N4P1R6C";
        const attempts = [
          (tx: Q) => tx`update public.api_keys set tier_id = ${enterprise} where id = ${keyA.id}`,
          (tx: Q) =>
            tx`update public.api_keys set ip_allowlist = '{10.0.0.0/8}' where id = ${keyA.id}`,
          (tx: Q) =>
            tx`update public.api_keys set scopes = '{read,write,delete}' where id = ${keyA.id}`,
          (tx: Q) =>
            tx`insert into public.api_keys (user_id, name, mode, start, key_hash, tier_id)
            values (${a.id}, 'k', 'live', 'sk_live_abcd', ${randomHash()}, ${enterprise})`,
          (tx: Q) =>
            tx`insert into public.api_keys (user_id, name, mode, start, key_hash, status)
            values (${a.id}, 'k', 'live', 'sk_live_abcd', ${randomHash()}, 'active')`,
        ];
        for (const attempt of attempts) {
          await refused(a.claims, attempt);
        }
      },
    );

    await t.step(
      "guard: expiry can be brought closer, never extended or removed (TV409)",
      async () => {
        const day = 86_400_000;
        const key = await newKey(a, { expiresAt: new Date(Date.now() + day) });
        const setExpiry = (at: Date | null) =>
          asUser(
            sql,
            a.claims,
            (tx) =>
              tx`update public.api_keys set expires_at = ${at} where id = ${key.id} returning id`,
          );
        await assertSqlState(setExpiry(new Date(Date.now() + 2 * day)), "TV409");
        await assertSqlState(setExpiry(null), "TV409");
        assert.equal((await setExpiry(new Date(Date.now() + day / 2))).length, 1);
      },
    );

    await t.step(
      "guard: inserts take the account's tier; ip allowlists need enterprise (TV403)",
      async () => {
        const c = await createTestUser(sql, "rls-c");
        const insert = (allowlist: string[] | null) =>
          asUser(sql, c.claims, (tx) =>
            tx<{ tier_id: string; status: string }[]>`
            insert into public.api_keys (user_id, name, mode, start, key_hash, ip_allowlist)
            values (${c.id}, 'k', 'live', 'sk_live_abcd',
              ${randomHash()},
              ${allowlist}::cidr[])
            returning tier_id, status`);
        await assertSqlState(insert(["10.0.0.0/8"]), "TV403");
        const [free] = await insert(null);
        assert.deepEqual({ ...free }, { tier_id: "01JBG7XKQM9F3Y8W2Z5N4P1R6A", status: "active" });
        await setUserTier(sql, c.email, "enterprise");
        const [enterprise] = await insert(["10.0.0.0/8"]);
        assert.equal(enterprise?.tier_id, "01JBG7XKQM9F3Y8W2Z5N4P1R6C");
      },
    );

    // The insert grant includes rolled_from and its foreign key is checked without RLS, so the
    // guard trigger checks that the rolled key is one of the user's own.
    await t.step("guard: rolled_from must be one of the user's own keys (TV404)", async () => {
      await refused(
        a.claims,
        (tx) =>
          tx`insert into public.api_keys (user_id, name, mode, start, key_hash, rolled_from)
            values (${a.id}, 'k', 'live', 'sk_live_abcd', ${randomHash()}, ${keyB.id})`,
        "TV404",
      );
      const [own] = await asUser(sql, a.claims, (tx) =>
        tx<{ rolled_from: string }[]>`
          insert into public.api_keys (user_id, name, mode, start, key_hash, rolled_from)
          values (${a.id}, 'k', 'live', 'sk_live_abcd', ${randomHash()}, ${keyA.id})
          returning rolled_from`);
      assert.equal(own?.rolled_from, keyA.id);
    });

    await t.step("vaults: a user sees and changes only their own", async () => {
      const rows = await asUser(sql, a.claims, (tx) =>
        tx<{ id: string; user_id: string }[]>`
        select id, user_id from public.vaults`);
      assert.ok(rows.length >= 1 && rows.every((r) => r.user_id === a.id));
      const updated = await asUser(
        sql,
        a.claims,
        (tx) => tx`update public.vaults set name = 'taken' where id = ${vaultB} returning id`,
      );
      assert.equal(updated.length, 0);
      await refused(a.claims, (tx) => tx`delete from public.vaults where id = ${vaultB}`);
      await refused(
        a.claims,
        (tx) => tx`insert into public.vaults (user_id, name) values (${b.id}, 'planted')`,
      );
    });

    await t.step("vaults: test and live data are invisible to each other", async () => {
      const u = await createTestUser(sql, "rls-mode");
      const test = userClaims(u.id, { key_mode: "test" });
      const live = userClaims(u.id, { key_mode: "live" });
      const plain = userClaims(u.id);
      const create = (claims: typeof test) =>
        asUser(sql, claims, (tx) =>
          tx<{ id: string; mode: string }[]>`
          insert into public.vaults (name) values ('v') returning id, mode`);
      const [inTest] = await create(test);
      const [inLive] = await create(live);
      assert.equal(inTest?.mode, "test");
      assert.equal(inLive?.mode, "live");
      const visible = async (claims: typeof test) =>
        ids(await asUser(sql, claims, (tx) => tx<{ id: string }[]>`select id from public.vaults`));
      assert.deepEqual(await visible(test), [inTest?.id]);
      assert.deepEqual(await visible(live), [inLive?.id]);
      assert.deepEqual(await visible(plain), [inLive?.id]);
      const crossUpdate = await asUser(
        sql,
        test,
        (tx) => tx`update public.vaults set name = 'x' where id = ${inLive?.id ?? ""} returning id`,
      );
      assert.equal(crossUpdate.length, 0);
      await refused(test, (tx) => tx`insert into public.vaults (name, mode) values ('v', 'live')`);
    });

    await t.step("accounts: only one's own, read-only", async () => {
      const rows = await asUser(
        sql,
        a.claims,
        (tx) => tx<{ user_id: string }[]>`select user_id from public.accounts`,
      );
      assert.deepEqual(rows.map((r) => r.user_id), [a.id]);
      await refused(
        a.claims,
        (tx) =>
          tx`update public.accounts set tier_id = '01JBG7XKQM9F3Y8W2Z5N4P1R6C' where user_id = ${a.id}`,
      );
    });

    await t.step("request log: only one's own, read-only", async () => {
      const rows = await asUser(
        sql,
        a.claims,
        (tx) =>
          tx<{ user_id: string | null; key_id: string | null }[]>`
            select user_id, public.key_ulid(key_id) as key_id from public.api_request_log`,
      );
      assert.ok(rows.some((r) => r.user_id === a.id), "the user's own rows");
      assert.ok(rows.some((r) => r.key_id === keyA.id), "the rows of the user's key");
      assert.ok(
        rows.every((r) => r.user_id === a.id || (r.user_id === null && r.key_id === keyA.id)),
        JSON.stringify(rows),
      );
      await refused(
        a.claims,
        (tx) =>
          tx`insert into public.api_request_log (request_id, user_id, shape, status, latency_ms)
            values (${crypto.randomUUID()}, ${a.id}, 0, 200, 1)`,
      );
      for (const table of ["api_request_shapes", "api_request_log_entries"]) {
        await refused(a.claims, (tx) => tx`select 1 from ${tx("public." + table)}`);
      }
    });

    await t.step("request log: my_request_log() shows one's own rows as written", async () => {
      const rows = await asUser(
        sql,
        a.claims,
        (tx) =>
          tx<{ key_id: string | null; route: string }[]>`select key_id, route
            from public.my_request_log(now() - interval '1 hour', now() + interval '1 hour')`,
      );
      assert.deepEqual(rows.map((r) => r.key_id).sort(), [keyA.id, null].sort());
      assert.ok(rows.every((r) => r.route === "/api/v1/test"));
      const none = await asUser(
        sql,
        { role: "authenticated" },
        (tx) => tx`select 1 from public.my_request_log(now() - interval '1 hour', now())`,
      );
      assert.equal(none.length, 0, "no subject, no rows");
      const old = await asUser(
        sql,
        a.claims,
        (tx) =>
          tx`select 1 from public.my_request_log(now() - interval '3 days',
            now() + interval '2 days')`,
      );
      assert.equal(old.length, 0, "at most the range's last day");
      await assertSqlState(
        asAnon(sql, (tx) => tx`select 1 from public.my_request_log(now(), now())`),
        DENIED,
      );
    });

    await t.step("authenticated without a subject sees no rows; auth.users is closed", async () => {
      for (const table of ["api_keys", "vaults", "accounts", "api_request_log"]) {
        const rows = await asUser(
          sql,
          { role: "authenticated" },
          (tx) =>
            tx`select ${
              tx.unsafe(
                table === "accounts"
                  ? "user_id"
                  : table === "api_request_log"
                  ? "request_id"
                  : "id",
              )
            } from ${tx("public." + table)}`,
        );
        assert.equal(rows.length, 0, table);
      }
      await refused(a.claims, (tx) => tx`select id from auth.users`);
    });

    // Each partition is a table of its own, reachable by name: created by the maintenance job
    // under the default privileges that grant the API roles everything, so each must have RLS
    // on and no privileges left (the parent's policy applies only through the parent).
    await t.step("request log partitions: RLS on, nothing granted to the API roles", async () => {
      const parts = await sql<{ name: string; rls: boolean }[]>`
        select c.relname as name, c.relrowsecurity as rls from pg_inherits i
        join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'public.api_request_log'::regclass`;
      assert.ok(parts.length >= 2, "the default partition and today's at least");
      for (const p of parts) {
        assert.ok(p.rls, `${p.name}: RLS`);
        for (const role of ["anon", "authenticated"]) {
          const [row] = await sql<{ granted: boolean }[]>`select has_table_privilege(${role},
            ${"public." + p.name}, 'select,insert,update,delete,truncate') as granted`;
          assert.equal(row?.granted, false, `${role} on ${p.name}`);
        }
        await refused(a.claims, (tx) => tx`select 1 from ${tx("public." + p.name)}`);
      }
    });

    await t.step("anon sees no rows of anything but tiers", async () => {
      const queries: Record<string, string> = {
        accounts: "select user_id from public.accounts",
        api_keys: "select id from public.api_keys",
        vaults: "select id from public.vaults",
        api_request_log: "select request_id from public.api_request_log",
        users: "select id from auth.users",
      };
      for (const [name, query] of Object.entries(queries)) {
        try {
          const rows = await asAnon(sql, (tx) => tx.unsafe(query));
          assert.equal(rows.length, 0, `anon read ${name}`);
        } catch (error) {
          assert.equal((error as { code?: unknown }).code, DENIED, `${name}: ${error}`);
        }
      }
      const tiers = await asAnon(
        sql,
        (tx) => tx<{ name: string }[]>`select name from public.tiers`,
      );
      assert.ok(
        ["free", "professional", "enterprise"].every((n) => tiers.some((t) => t.name === n)),
      );
      await assertSqlState(
        asAnon(
          sql,
          (tx) =>
            tx`insert into public.tiers (name, requests_per_minute, requests_per_day,
            test_requests_per_minute, test_requests_per_day) values ('anon-tier', 1, 1, 1, 1)`,
        ),
        DENIED,
      );
    });
  } finally {
    await sql.end();
  }
});
