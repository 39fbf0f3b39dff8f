/**
 * The benchmark's data (tiers, keys, users and their tokens, vaults) and the background client
 * that changes key states through the public API while the cache case runs.
 *
 * @module
 */
import { createApiKey, createTier, type MintedToken, mintTokenFor } from "../admin/ops.ts";
import { mintAppAccessToken } from "../local_auth.ts";
import { portOf, type Stack } from "./stack.ts";

/** The credentials the cases use. */
export type Fixtures = Awaited<ReturnType<typeof createFixtures>>;
/** Owners of throwaway keys, with their tokens and the keys' ids, whose keys the churn changes. */
type Changers = Array<{ token: string; keyIds: string[] }>;

/** The status of a request (its body is not read). */
async function status(url: string, init: RequestInit): Promise<number> {
  const res = await fetch(url, init);
  await res.body?.cancel();
  return res.status;
}

/** Breaks a key's checksum: its last character encodes only checksum bits. */
function corruptKey(key: string): string {
  return key.slice(0, -1) + (key.at(-1) === "A" ? "B" : "A");
}

/**
 * Creates the data in the freshly reset database: keys of a tier whose limits cannot be
 * exhausted (valid; read-scoped, owner of the vaults; 1,000 for the cache case; throwaway keys
 * of 20 other users for the churn), a key of a tier of 1 a minute and a day that has made its
 * one request, a well-formed key whose checksum fails, and ES256 tokens of distinct users.
 */
export async function createFixtures(
  stack: Stack,
  sizes: { users: number; churnKeys: number; changes: number },
  log: (line: string) => void,
) {
  const { sql } = stack;
  const huge = 1_000_000_000;
  await createTier(sql, { name: "bench-huge", perMinute: huge, perDay: huge });
  await createTier(sql, { name: "bench-exhausted", perMinute: 1, perDay: 1 });
  const key = (email: string, tier: string, scopes: ("read" | "write")[] = ["read"]) =>
    createApiKey(sql, { email, tier, mode: "live", scopes });
  const owner = "bench@torvus.local";
  const valid = await key(owner, "bench-huge");
  const read = await key(owner, "bench-huge");
  const writer = await key(owner, "bench-huge", ["read", "write"]);
  const limited = await key(owner, "bench-exhausted");
  const mint = (email: string) => mintTokenFor(sql, email, 3600, { issuer: stack.issuer });
  const users: MintedToken[] = [];
  for (let i = 0; i < sizes.users; i++) users.push(await mint(`bench-user-${i}@torvus.local`));
  const tokens = users.map((u) => u.token);
  const appTokens = await appTokensFor(stack, users);
  const churnKeys: string[] = [];
  for (let i = 0; i < sizes.churnKeys; i++) {
    churnKeys.push((await key("bench-cache@torvus.local", "bench-huge")).key);
  }
  const changers: Changers = [];
  const perUser = Math.ceil(sizes.changes / 20);
  for (let u = 0; u < 20; u++) {
    const email = `bench-changer-${u}@torvus.local`;
    const keyIds: string[] = [];
    for (let i = 0; i < perUser; i++) keyIds.push((await key(email, "bench-huge")).id);
    changers.push({ token: (await mint(email)).token, keyIds });
  }

  const headers = { ...stack.gateway("198.51.100.1"), "Content-Type": "application/json" };
  const vaults = 20;
  for (let i = 0; i < vaults; i++) {
    const body = JSON.stringify({ name: `bench vault ${i}` });
    const init = { method: "POST", headers: { ...headers, "X-API-Key": writer.key }, body };
    const created = await status(`http://127.0.0.1:${portOf("vaults")}/vaults/v1`, init);
    if (created !== 201) throw new Error(`creating a vault answered ${created}`);
  }
  const url = `http://127.0.0.1:${portOf("v1-test")}/v1-test`;
  const first = await status(url, { headers: { ...headers, "X-API-Key": limited.key } });
  if (first !== 200) throw new Error(`the limited key's one request answered ${first}`);
  log(
    `fixtures: ${sizes.users} users with tokens, ${sizes.churnKeys} keys for the cache case, ` +
      `${20 * perUser} throwaway keys of 20 other users, ${vaults} vaults`,
  );
  return {
    validKey: valid.key,
    readKey: read.key,
    /** The claims the vaults function sets for the read key (claimsOf): the floor's. */
    readClaims: {
      sub: read.userId,
      role: "authenticated",
      aud: "authenticated",
      key_id: read.id,
      key_mode: "live",
    },
    invalidKey: corruptKey(valid.key),
    limitedKey: limited.key,
    tokens,
    appTokens,
    churnKeys,
    changers,
    vaults,
  };
}

/**
 * The same users' tokens as a third-party app holds them (issue 25): an app of the huge tier that
 * every user granted every scope, and for each user the app's access token as Supabase Auth's
 * OAuth server mints it (the user's claims plus `client_id`, `scope`, the OAuth `amr`).
 */
async function appTokensFor(stack: Stack, users: readonly MintedToken[]): Promise<string[]> {
  const { sql } = stack;
  const clientId = crypto.randomUUID();
  const scopes = ["vaults:read", "vaults:write", "vaults:delete", "profile:read"];
  await sql`insert into public.oauth_apps
      (owner_id, client_id, client_type, name, redirect_uris, scopes, tier_id)
    values (${users[0]!.userId}, ${clientId}, 'public', 'bench app', ${["https://127.0.0.1:9/cb"]},
      ${scopes}, (select id from public.tiers where name = 'bench-huge'))`;
  const out: string[] = [];
  for (const user of users) {
    await sql`insert into public.oauth_grants (user_id, client_id, scopes)
      values (${user.userId}, ${clientId}, ${scopes})`;
    out.push(
      await mintAppAccessToken({
        userId: user.userId,
        email: user.email,
        issuer: stack.issuer,
        clientId,
      }),
    );
  }
  return out;
}

/** What the churn client did: changes answered 200 or 201 per second, statuses. */
/** What a churn did: how long it ran, its changes a second, and its answers by status. */
export type ChurnResult = { seconds: number; perSecond: number; statuses: Record<string, number> };

/**
 * Starts revoking and rolling (grace 0) the changers' keys through the api-keys function,
 * `perSecond` changes a second, each owner in turn; the returned function stops it.
 */
export function startChurn(
  stack: Stack,
  changers: Changers,
  perSecond: number,
): () => Promise<ChurnResult> {
  const base = `http://127.0.0.1:${portOf("api-keys")}/api-keys`;
  const statuses: Record<string, number> = {};
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  const change = async (n: number) => {
    const owner = changers[n % changers.length]!;
    const id = owner.keyIds.pop();
    const roll = n % 2 === 1;
    const init = {
      method: "POST",
      headers: {
        ...stack.gateway("198.51.100.2"),
        Authorization: `Bearer ${owner.token}`,
        "Content-Type": "application/json",
      },
      ...(roll ? { body: '{"grace_period_seconds":0}' } : {}),
    };
    const outcome = id === undefined
      ? "no key left"
      : await status(`${base}/${id}/${roll ? "roll" : "revoke"}`, init).then(
        String,
        () => "failed",
      );
    statuses[outcome] = (statuses[outcome] ?? 0) + 1;
  };
  let i = 0;
  const timer = setInterval(() => {
    const p = change(i++).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 1000 / perSecond);
  let stopped: Promise<ChurnResult> | undefined;
  return () =>
    stopped ??= (async () => {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(inFlight);
      const ok = (statuses["200"] ?? 0) + (statuses["201"] ?? 0);
      return { seconds, perSecond: ok / seconds, statuses };
    })();
}
