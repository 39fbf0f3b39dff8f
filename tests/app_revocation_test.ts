/**
 * A revoked grant is refused on the very next request on every instance: two instances of the
 * vaults function (the dev server's isolate and the function served alone on Deno 2.1, as the
 * Edge Runtime serves it) have both admitted an app's token, so both hold its grant in their
 * caches; the grant is revoked (the SQL update and the grant-epoch bump the grants API makes),
 * and the next request to each is refused, without waiting for any cache to lapse.
 *
 * It also states how long that took: from the start of the revocation to the refusal on the
 * second instance, over several rounds (printed; README "Third-party apps' tokens").
 *
 * @module
 */
import assert from "node:assert/strict";
import { api, e2e, uniqueIp } from "./_harness.ts";
import { closeDbLast, newTier, newUser } from "./_fixtures.ts";
import { appToken, grantApp, newApp, revokeApp } from "./_support/apps.ts";
import { alone } from "./_support/alone.ts";

const ROUNDS = 10;
const SECRET = Deno.env.get("TORVUS_GATEWAY_SECRET") ?? "";

e2e("a revoked grant is refused on the next request of a second instance", async () => {
  const app = await newApp({ tier: await newTier(1000, 100_000) });
  const user = await newUser();
  const token = await appToken(user, app.clientId);
  const ip = uniqueIp();
  const viaDevServer = () =>
    api("/api/vaults", { ip, headers: { Authorization: `Bearer ${token}` } });
  const elapsed: number[] = [];
  await alone("vaults", async (base) => {
    // The function served alone, asked as the gateway asks it.
    const viaAlone = async () => {
      const r = await fetch(`${base}/vaults`, {
        headers: {
          Authorization: `Bearer ${token}`,
          "X-Torvus-Gateway-Secret": SECRET,
          "X-Torvus-Client-IP": "198.51.100.25",
        },
      });
      return { status: r.status, body: await r.json() };
    };
    for (let round = 0; round < ROUNDS; round++) {
      await grantApp(user, app);
      // Both instances admit the token and cache its grant (a second request is a cache hit).
      for (let i = 0; i < 2; i++) {
        assert.equal((await viaDevServer()).status, 200, `round ${round}: dev server`);
        const r = await viaAlone();
        assert.equal(r.status, 200, `round ${round}: alone: ${JSON.stringify(r.body)}`);
      }
      const started = performance.now();
      await revokeApp(user, app);
      const refused = await viaAlone();
      elapsed.push(performance.now() - started);
      assert.equal(refused.status, 401, JSON.stringify(refused.body));
      assert.equal(refused.body.code, "APP_GRANT_NOT_ACTIVE");
      const other = await viaDevServer();
      assert.equal(other.status, 401, other.text);
      assert.equal(other.body.code, "APP_GRANT_NOT_ACTIVE");
    }
  });
  const sorted = [...elapsed].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  console.log(
    `revocation to first refusal on a second instance, ${ROUNDS} rounds: ` +
      `median ${at(0.5).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms ` +
      `(SQL update + epoch bump + one request)`,
  );
});

closeDbLast("app revocation");
