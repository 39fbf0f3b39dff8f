/**
 * The functions under the Edge Runtime's rules, end to end:
 *
 * - an isolate dropped early right after a burst of requests (`beforeunload`, then termination)
 *   has written every request-log row and `last_used_at` first, because that work was handed to
 *   `EdgeRuntime.waitUntil` when it was created (the dev server's runtime, tools/runtime, waits
 *   for such work and for nothing else, as the hosted one does);
 * - `v1-test/index.ts` and `me/index.ts`, served alone by Deno 2.1 (the runtime's version) with
 *   their own `deno.json` and no lock file, no unstable flag, answer a valid key and a valid
 *   token with 200.
 *
 * @module
 */
import assert from "node:assert/strict";
import { api, BASE_URL, e2e, uniqueIp } from "./_harness.ts";
import { closeDbLast, db, newKey, newTier, newUser } from "./_fixtures.ts";
import { EDGE_DENO } from "../tools/runtime/edge_deno.ts";
import { alone } from "./_support/alone.ts";

e2e(
  "early drop after a burst: every request-log row and last_used_at are written first",
  async () => {
    const tier = await newTier(1_000, 100_000);
    const key = await newKey({ tier, mode: "test" });
    const ip = uniqueIp();
    const answers = await Promise.all(
      Array.from(
        { length: 40 },
        () => api("/api/v1/test", { ip, headers: { "X-API-Key": key.key } }),
      ),
    );
    for (const a of answers) {
      assert.equal(a.status, 200, a.text);
    }
    const ids = answers.map((a) => a.headers.get("x-request-id")!);

    const before = await (await fetch(`${BASE_URL}/_runtime/stats`)).json();
    const dropped = await fetch(`${BASE_URL}/_runtime/functions/v1-test/drop`, { method: "POST" });
    assert.equal(dropped.status, 200, await dropped.text());
    const after = await (await fetch(`${BASE_URL}/_runtime/stats`)).json();
    assert.equal(
      after["v1-test"].isolatesEnded.early_drop,
      (before["v1-test"].isolatesEnded.early_drop ?? 0) + 1,
      "the isolate was dropped early",
    );

    // Read once, right after the drop: nothing is left to arrive later.
    const [row] = await db()<{ n: number }[]>`select count(*)::int as n
    from public.api_request_log where request_id = any(${ids}::uuid[])`;
    assert.equal(row?.n, ids.length, "every request of the burst is in the request log");
    const [used] = await db()<{ last_used_at: Date | null }[]>`
    select last_used_at from public.api_keys where id = ${key.id}`;
    assert.ok(used?.last_used_at instanceof Date, "last_used_at was moved");

    // The next request starts a new isolate and is served as usual.
    const next = await api("/api/v1/test", { ip, headers: { "X-API-Key": key.key } });
    assert.equal(next.status, 200, next.text);
  },
);

e2e("the runtime's Deno is 2.1", async () => {
  const out = await new Deno.Command(EDGE_DENO, { args: ["--version"] }).output();
  assert.match(new TextDecoder().decode(out.stdout), /^deno 2\.1\.\d+ /);
});

e2e("Deno 2.1 serves v1-test/index.ts alone: a valid key gets 200", async () => {
  const key = await newKey({ mode: "test" });
  await alone("v1-test", async (base) => {
    const r = await fetch(`${base}/v1-test`, { headers: { "X-API-Key": key.key } });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.success, true);
    assert.equal(body.key_info.key_id, key.id);
  });
});

e2e("Deno 2.1 serves me/index.ts alone: a valid token gets 200", async () => {
  const user = await newUser();
  await alone("me", async (base) => {
    const r = await fetch(`${base}/me`, { headers: { Authorization: `Bearer ${user.token}` } });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.id, user.userId);
  });
});

closeDbLast("edge runtime");
