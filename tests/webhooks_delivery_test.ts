/**
 * Webhook delivery when things go wrong, for real:
 *
 * - against the dev server under test (its defaults: 10 s timeout, backoff from 1 s): a receiver
 *   answering 500 gets the event again after backoff, until it answers 200; a receiver that
 *   hangs is cut at the timeout and gets the event again;
 * - against a dev server of this file's own, on a database of its own (so no other dispatcher
 *   touches its deliveries) and a DNS server on loopback (`TORVUS_WEBHOOK_DNS_SERVER`): a name
 *   resolving to a private address is refused, also when it resolved to an allowed address
 *   before (DNS rebinding) or resolves to both; deliveries survive the dispatcher's death
 *   (SIGKILL mid-attempt, and events written while no dispatcher ran): all arrive, the one
 *   in flight twice at most, with the same `webhook-id`;
 * - the webhooks function served alone without loopback: a localhost name or a name of
 *   /etc/hosts that means this machine is refused.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { closeDb, db, e2e, newUser, type TestUser } from "./_harness.ts";
import { mintTokenFor } from "../tools/admin/ops.ts";
import { migrateDatabase, parseDbUrl } from "../tools/stack/postgres.ts";
import { randomToken } from "../tools/stack/config.ts";
import {
  type DevServer,
  freePort,
  sleep,
  stackEnv,
  startDevServer,
  waitFor,
} from "./_support/dev_server.ts";
import { alone } from "./_support/alone.ts";
import { startDnsServer } from "./_support/dns.ts";
import { startReceiver } from "./_support/receiver.ts";
import {
  asUser,
  createEndpoint,
  deliveriesWhen,
  succeeded,
  verified,
} from "./_support/webhooks.ts";

// --- against the dev server under test -----------------------------------------------------------

e2e("webhook delivery: a receiver answering 500 gets the event again after backoff", async () => {
  await using receiver = startReceiver((n) =>
    n <= 2 ? new Response("busy", { status: 500 }) : new Response(null, { status: 200 })
  );
  const user = await newUser();
  const endpoint = await createEndpoint(user, {
    url: receiver.url,
    events: ["vault.created"],
    mode: "test",
  });
  const sent = await asUser(user, "POST", `/api/webhooks/${endpoint.id}/test`);
  assert.equal(sent.status, 202);
  await receiver.waitFor(1, 5_000);
  // Between attempts the owner sees why it failed and when it is tried next.
  const [pending] = await deliveriesWhen(
    user,
    endpoint.id,
    (l) => l[0]?.attempts >= 1 && l[0]?.status === "pending" && l[0]?.response_status === 500,
    5_000,
  );
  assert.equal(pending.response_body, "busy");
  assert.equal(pending.last_error, "HTTP 500");
  assert.ok(Date.parse(pending.next_attempt_at) > Date.parse(pending.last_attempt_at));
  const [a, b, c] = await receiver.waitFor(3, 15_000);
  const gaps = [b!.at - a!.at, c!.at - b!.at];
  console.log(`retries after ${gaps.map((g) => `${(g / 1000).toFixed(2)} s`).join(", then ")}`);
  // The retry base is 1 s: the first retry waits 0.5-1 s, the second 1-2 s (equal jitter),
  // plus up to a sweep interval (1 s).
  assert.ok(gaps[0]! >= 450 && gaps[0]! < 3_500, `first retry after ${gaps[0]} ms`);
  assert.ok(gaps[1]! >= 950 && gaps[1]! < 5_000, `second retry after ${gaps[1]} ms`);
  const ids = new Set([a, b, c].map((r) => r!.headers["webhook-id"]));
  assert.equal(ids.size, 1, "the same webhook-id on every attempt");
  for (const r of [a, b, c]) assert.equal(verified(endpoint.secret, r!).type, "webhook.test");
  const done = await succeeded(user, endpoint.id);
  assert.equal(done.attempts, 3);
  assert.equal(done.response_status, 200);
  assert.equal(done.last_error, null);
  const shown = await asUser(user, "GET", `/api/webhooks/${endpoint.id}`);
  assert.equal(shown.body.failing_since, null, "a success ends the failure streak");
});

e2e("webhook delivery: a receiver that hangs is cut at the timeout, then tried again", async () => {
  let cutAfterMs = -1;
  const receiver = startReceiver(async (n, request) => {
    if (n === 1) {
      // Holds the request until the dispatcher gives up on it and closes the connection.
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (performance.now() - request.at > 20_000) (clearInterval(check), resolve());
        }, 50);
        hung.push(() => (clearInterval(check), resolve()));
      });
    }
    return new Response(null, { status: 204 });
  });
  const hung: Array<() => void> = [];
  try {
    const user = await newUser();
    const endpoint = await createEndpoint(user, {
      url: receiver.url,
      events: ["vault.created"],
      mode: "test",
    });
    await asUser(user, "POST", `/api/webhooks/${endpoint.id}/test`);
    const [first] = await receiver.waitFor(1, 5_000);
    const [cut] = await deliveriesWhen(
      user,
      endpoint.id,
      (l) => l[0]?.last_error !== null && l[0]?.last_error !== undefined,
      15_000,
    );
    cutAfterMs = Date.parse(cut.last_attempt_at) > 0 ? performance.now() - first!.at : -1;
    console.log(`the hanging attempt was recorded as cut ${(cutAfterMs / 1000).toFixed(1)} s in`);
    assert.equal(cut.last_error, "Timed out after 10 s");
    assert.equal(cut.response_status, null);
    assert.equal(cut.status, "pending");
    assert.ok(cutAfterMs >= 9_900 && cutAfterMs < 13_000, `cut after ${cutAfterMs} ms`);
    for (const release of hung) release();
    const [, second] = await receiver.waitFor(2, 8_000);
    assert.equal(second!.headers["webhook-id"], first!.headers["webhook-id"]);
    const done = await succeeded(user, endpoint.id);
    assert.equal(done.attempts, 2);
  } finally {
    for (const release of hung) release();
    await receiver.close();
  }
});

// --- a dev server of this file's own --------------------------------------------------------------

/** A dev server on a database of its own, resolving names with the test's DNS server. */
interface Isolated {
  server: DevServer;
  sql: postgres.Sql;
  start(): Promise<DevServer>;
  user(): Promise<TestUser>;
  call(user: TestUser, method: string, path: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

async function isolatedServer(dnsPort: number): Promise<Isolated> {
  const stack = stackEnv();
  const target = parseDbUrl(stack.dbUrl);
  const url = stack.dbUrl.replace(`/${target.database}?`, `/${target.database}_hooks?`);
  const admin = postgres(target.adminUrl, { max: 1, onnotice: () => {} });
  try {
    const [exists] = await admin`select 1 from pg_database
      where datname = ${`${target.database}_hooks`}`;
    if (!exists) await admin.unsafe(`create database "${target.database}_hooks"`);
  } finally {
    await admin.end();
  }
  await migrateDatabase(url, "reset", () => {});
  const port = freePort();
  const options = {
    port,
    dbUrl: url,
    redisUrl: stack.redisUrl,
    redisToken: stack.redisToken,
    redisPrefix: `${stack.redisPrefix}-hooks`,
    keyFile: stack.keyFile,
    logName: "webhooks-isolated",
    extraEnv: {
      TORVUS_WEBHOOK_DNS_SERVER: `127.0.0.1:${dnsPort}`,
      TORVUS_WEBHOOK_ALLOW_LOOPBACK: "true",
      TORVUS_WEBHOOK_TIMEOUT_MS: "2000",
      TORVUS_WEBHOOK_RETRY_BASE_MS: "60000",
      // Retries end after 3 s (the first one is at least 30 s away: failed at once), and an
      // endpoint failing for 1 s is disabled.
      TORVUS_WEBHOOK_RETRY_FOR_MS: "3000",
      TORVUS_WEBHOOK_DISABLE_AFTER_MS: "1000",
      TORVUS_WEBHOOK_SWEEP_EVERY_MS: "500",
      TORVUS_CRON_SECRET: randomToken(),
    },
  };
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  const self: Isolated = {
    server: await startDevServer(options),
    sql,
    async start() {
      self.server = await startDevServer(options);
      return self.server;
    },
    async user() {
      const email = `hooks-${crypto.randomUUID()}@test.local`;
      const minted = await mintTokenFor(sql, email, 3600, {
        issuer: self.server.issuer,
        ...(stack.keyFile ? { keyFile: stack.keyFile } : {}),
      });
      return { email, userId: minted.userId, token: minted.token };
    },
    call(user, method, path, body) {
      return fetch(`${self.server.url}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${user.token}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    },
    async stop() {
      await self.server.stop();
      await sql.end({ timeout: 5 });
      const admin = postgres(target.adminUrl, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`drop database if exists "${target.database}_hooks" with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
  return self;
}

/** A delivery as the isolated server's database holds it. */
interface Row {
  status: string;
  attempts: number;
  last_error: string | null;
  event_id: string;
}

/** The deliveries of an endpoint, read from the isolated server's database. */
async function rows(sql: postgres.Sql, endpointId: string): Promise<Row[]> {
  return [
    ...await sql<Row[]>`select status, attempts, last_error, event_id
      from public.webhook_deliveries where endpoint_id = ${endpointId} order by created_at, id`,
  ];
}

e2e(
  "webhook delivery: private targets are refused, whatever DNS answered before; deliveries survive the dispatcher's death",
  async () => {
    const dns = await startDnsServer((name, type, asked) => {
      if (type !== "A") return [];
      if (name === "private.hooks.test") return ["10.20.30.40"];
      if (name === "mixed.hooks.test") return ["127.0.0.1", "192.168.7.7"];
      // Allowed at first, then a private address: DNS rebinding.
      if (name === "rebind.hooks.test") return [asked === 0 ? "127.0.0.1" : "10.20.30.41"];
      if (name === "receiver.hooks.test") return ["127.0.0.1"];
      return [];
    });
    const receiver = startReceiver();
    const isolated = await isolatedServer(dns.port);
    try {
      const user = await isolated.user();
      const endpointFor = async (host: string) => {
        const r = await isolated.call(user, "POST", "/api/webhooks", {
          url: `http://${host}:${receiver.port}/in`,
          events: ["vault.created"],
          mode: "test",
        });
        const body = await r.json();
        assert.equal(r.status, 201, JSON.stringify(body));
        return body as { id: string; secret: string };
      };
      const test = async (id: string) => {
        const r = await isolated.call(user, "POST", `/api/webhooks/${id}/test`);
        assert.equal(r.status, 202, await r.text());
      };
      const settled = async (id: string, n: number) => {
        let last: Row[] = [];
        await waitFor(
          `${n} attempt(s) recorded`,
          async () =>
            (last = await rows(isolated.sql, id)).filter((d) =>
              d.attempts > 0 &&
              (d.status !== "pending" || d.last_error !== null)
            ).length >= n,
          8_000,
        ).catch((e) => {
          throw new Error(`${(e as Error).message}: ${JSON.stringify(last)}`);
        });
        return last;
      };

      // What a delivery records when the name resolved to a private address.
      const refusal = (host: string, address: string) =>
        `Refused: ${host} resolved to ${address}, a private address`;
      const privately = await endpointFor("private.hooks.test");
      await test(privately.id);
      const [refused] = await settled(privately.id, 1);
      assert.equal(refused!.last_error, refusal("private.hooks.test", "10.20.30.40"));

      assert.equal(refused!.status, "failed", "its retry period is over");
      // Failing ever since: the next failure disables the endpoint, and its owner sees why.
      await sleep(1_100);
      await test(privately.id);
      await settled(privately.id, 2);
      const shown = await (await isolated.call(user, "GET", `/api/webhooks/${privately.id}`))
        .json();
      assert.equal(shown.status, "disabled");
      assert.match(
        shown.disabled_reason,
        /^Deliveries failed without a success since \d{4}-.+Z \(last: Refused: private\.hooks\.test resolved to 10\.20\.30\.40, a private address\)$/,
      );
      assert.ok(shown.failing_since && shown.disabled_at);
      const again = await isolated.call(user, "POST", `/api/webhooks/${privately.id}/test`);
      assert.equal(again.status, 409);
      assert.equal((await again.json()).code, "WEBHOOK_DISABLED");

      const mixed = await endpointFor("mixed.hooks.test");
      await test(mixed.id);
      const [both] = await settled(mixed.id, 1);
      assert.equal(both!.last_error, refusal("mixed.hooks.test", "192.168.7.7"));

      const rebinding = await endpointFor("rebind.hooks.test");
      await test(rebinding.id);
      await receiver.waitFor(1, 5_000);
      await settled(rebinding.id, 1);
      await test(rebinding.id);
      const [first, second] = await settled(rebinding.id, 2);
      assert.equal(first!.status, "succeeded");
      assert.equal(second!.last_error, refusal("rebind.hooks.test", "10.20.30.41"));
      assert.equal(receiver.received.length, 1, "nothing reached the receiver after the change");
      assert.ok(dns.queries.get("private.hooks.test A")! >= 1, "names were resolved at delivery");

      // --- the dispatcher dies mid-attempt -----------------------------------------------------
      let releaseHeld!: () => void;
      const held = new Promise<void>((resolve) => (releaseHeld = resolve));
      const slow = startReceiver(async (n) => {
        if (n === 1) await held;
        return new Response(null, { status: 204 });
      });
      try {
        const r = await isolated.call(user, "POST", "/api/webhooks", {
          url: `http://receiver.hooks.test:${slow.port}/in`,
          events: ["vault.created", "vault.updated"],
          mode: "test",
        });
        const endpoint = await r.json() as { id: string; secret: string };
        assert.equal(r.status, 201);
        await test(endpoint.id);
        const [inFlight] = await slow.waitFor(1, 5_000);
        isolated.server.kill("SIGKILL");
        await isolated.server.status;
        releaseHeld();
        // While no dispatcher runs, changes still write their events (the outbox).
        await isolated.sql.begin(async (tx) => {
          await tx`select set_config('role', 'authenticated', true),
          set_config('request.jwt.claims', ${
            JSON.stringify({ sub: user.userId, role: "authenticated", key_mode: "test" })
          }, true)`;
          await tx`insert into public.vaults (name) values ('enc:v1:b2ZmbGluZQ')`;
        });
        const [during] = await rows(isolated.sql, endpoint.id);
        assert.equal(during!.status, "pending");
        assert.equal(during!.attempts, 1, "the attempt in flight was counted, not recorded");
        const restarted = performance.now();
        await isolated.start();
        await slow.waitFor(3, 20_000);
        console.log(
          `after a restart, ${((performance.now() - restarted) / 1000).toFixed(1)} s to deliver ` +
            "the lost attempt (lease: 2 s timeout + 5 s) and the event written meanwhile",
        );
        const byId = new Map<string, number>();
        for (const request of slow.received) {
          const id = request.headers["webhook-id"]!;
          byId.set(id, (byId.get(id) ?? 0) + 1);
          verified(endpoint.secret, request);
        }
        assert.equal(byId.get(inFlight!.headers["webhook-id"]!), 2, "the lost attempt, once more");
        assert.equal(byId.size, 2, "the test event and the vault created while down");
        await waitFor("both deliveries are recorded", async () => {
          const final = await rows(isolated.sql, endpoint.id);
          return final.length === 2 && final.every((d) => d.status === "succeeded");
        }, 5_000);
        await sleep(1_500);
        assert.equal(slow.received.length, 3, "nothing more: at least once, not again and again");
      } finally {
        releaseHeld();
        await slow.close();
      }
    } finally {
      await isolated.stop();
      await receiver.close();
      await dns.close();
    }
  },
);

e2e(
  "webhook delivery: without loopback, localhost names and /etc/hosts names for this machine are refused",
  async () => {
    const user = await newUser();
    await alone("webhooks", async (base) => {
      const call = async (method: string, path: string, body?: unknown) => {
        const r = await fetch(`${base}/webhooks${path}`, {
          method,
          headers: {
            Authorization: `Bearer ${user.token}`,
            ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await r.text();
        return { status: r.status, body: text === "" ? undefined : JSON.parse(text) };
      };
      const loopback: Record<string, string> = {
        "http://localhost:8080/x": "localhost, a loopback name",
        "http://api.localhost/x": "api.localhost, a loopback name",
        "http://127.0.0.1:8080/x": "127.0.0.1, a loopback address",
        "http://[::1]:8080/x": "::1, a loopback address",
      };
      for (const [url, why] of Object.entries(loopback)) {
        const r = await call("POST", "", { url, events: ["vault.created"], mode: "test" });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.details[0].message, `cannot be delivered to ${why}`);
      }
      // A name only resolution can judge: /etc/hosts maps it to 127.0.0.1 on this machine.
      const hosts = await Deno.readTextFile("/etc/hosts");
      const name = hosts.split("\n").map((l) => l.trim().split(/\s+/))
        .find((f) => f[0] === "127.0.0.1" && f[1] && f[1] !== "localhost")?.[1];
      assert.ok(name, "/etc/hosts names 127.0.0.1 other than localhost");
      const created = await call("POST", "", {
        url: `http://${name}:9/x`,
        events: ["vault.created"],
        mode: "test",
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const sent = await call("POST", `/${created.body.id}/test`);
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
      let error: string | null = null;
      await waitFor("the refusal is recorded", async () => {
        const list = await call("GET", `/${created.body.id}/deliveries`);
        error = list.body.data[0]?.last_error ?? null;
        return error !== null;
      }, 8_000);
      assert.equal(error, `Refused: ${name} resolved to 127.0.0.1, a loopback address`);
      await call("DELETE", `/${created.body.id}`);
    }, { TORVUS_WEBHOOK_ALLOW_LOOPBACK: "false", TORVUS_DIRECT_ACCESS: "allow" });
    void db;
    await closeDb();
  },
);
