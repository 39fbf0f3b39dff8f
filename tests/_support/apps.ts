/**
 * Third-party apps for the end-to-end suites, made directly in SQL over the operator connection
 * (no apps or grants API in the way): an app with its tier, a user's grant to it, a revocation
 * announced through the grant epoch as the grants API announces one, and the app's access token
 * for a user as Supabase Auth's OAuth server issues it (the user's JWT plus `client_id`, `scope`
 * and the `oauth_provider/authorization_code` amr).
 *
 * @module
 */
import { createRedis } from "../../supabase/functions/_shared/redis.ts";
import { createGrantEpoch } from "../../supabase/functions/_shared/auth/grant_epoch.ts";
import type { AppScope } from "../../supabase/functions/_shared/auth/principal.ts";
import { mintAppAccessToken } from "../../tools/local_auth.ts";
import { db, newUser, type TestUser } from "../_fixtures.ts";

/** Every API scope an app can hold. */
export const ALL_APP_SCOPES: readonly AppScope[] = [
  "vaults:read",
  "vaults:write",
  "vaults:delete",
  "profile:read",
];

/** A registered app. */
export interface TestApp {
  appId: string;
  clientId: string;
  owner: TestUser;
}

/** Registers an app asking for `scopes`, on the tier named `tier` (the owner's by default). */
export async function newApp(
  options: { scopes?: readonly AppScope[]; tier?: string } = {},
): Promise<TestApp> {
  const owner = await newUser();
  const clientId = crypto.randomUUID();
  const scopes = [...(options.scopes ?? ALL_APP_SCOPES)];
  const [row] = await db()<{ id: string }[]>`insert into public.oauth_apps
      (owner_id, client_id, client_type, name, redirect_uris, scopes, tier_id)
    values (${owner.userId}, ${clientId}, 'public', 'test app', ${["https://127.0.0.1:9/cb"]},
      ${scopes}, (select id from public.tiers where name = ${options.tier ?? null}))
    returning id`;
  return { appId: row!.id, clientId, owner };
}

/** Records `user`'s grant of `scopes` to the app; returns the grant's id. */
export async function grantApp(
  user: { userId: string },
  app: TestApp,
  scopes: readonly AppScope[] = ALL_APP_SCOPES,
): Promise<string> {
  const [row] = await db()<{ id: string }[]>`insert into public.oauth_grants
      (user_id, client_id, scopes)
    values (${user.userId}, ${app.clientId}, ${[...scopes]}) returning id`;
  await grantEpoch().bump([user.userId]);
  return row!.id;
}

/** Revokes `user`'s grant to the app and announces it, as the grants API does. */
export async function revokeApp(user: { userId: string }, app: TestApp): Promise<void> {
  await db()`update public.oauth_grants set revoked_at = now()
    where user_id = ${user.userId} and client_id = ${app.clientId} and revoked_at is null`;
  await grantEpoch().bump([user.userId]);
}

/** The app's access token for `user`, as Supabase Auth's OAuth server mints it. */
export async function appToken(
  user: { userId: string; email: string },
  clientId: string,
  ttlSeconds = 3600,
): Promise<string> {
  return await mintAppAccessToken({ userId: user.userId, email: user.email, ttlSeconds, clientId });
}

let epoch: ReturnType<typeof createGrantEpoch> | undefined;

/** The grant epoch the API's caches are checked against (same Redis, same prefix). */
export function grantEpoch(): ReturnType<typeof createGrantEpoch> {
  const url = Deno.env.get("UPSTASH_REDIS_REST_URL");
  const token = Deno.env.get("UPSTASH_REDIS_REST_TOKEN");
  if (!url || !token) throw new Error("UPSTASH_REDIS_REST_URL/TOKEN are not set");
  const prefix = Deno.env.get("TORVUS_REDIS_PREFIX") ?? "torvus";
  epoch ??= createGrantEpoch(createRedis({ url, token, timeoutMs: 2000 }).redis, prefix);
  return epoch;
}
