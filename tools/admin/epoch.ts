/**
 * Announces key-state changes made by operators to every running instance of the API, by
 * bumping the key-state epoch in Redis (see supabase/functions/_shared/auth/api_key.ts).
 *
 * The Redis settings come from the same environment as the API's (`UPSTASH_REDIS_REST_URL`,
 * `UPSTASH_REDIS_REST_TOKEN`, `TORVUS_REDIS_PREFIX`). Without them the change still lands in
 * the database, and instances notice it within their cache lifetime (30 s); a hint says so.
 *
 * @module
 */
import { createRedis } from "../../supabase/functions/_shared/redis.ts";
import { createRedisKeyEpoch } from "../../supabase/functions/_shared/auth/key_epoch.ts";
import { KEY_CACHE_TTL_MS } from "../../supabase/functions/_shared/auth/api_key.ts";

/**
 * Bumps the epoch of these shards (`api_keys.epoch_shard` of the changed keys), or the global one
 * without; returns false (after a hint on stderr) when it could not.
 */
export async function announceKeyChange(shards?: readonly number[]): Promise<boolean> {
  const url = Deno.env.get("UPSTASH_REDIS_REST_URL");
  const token = Deno.env.get("UPSTASH_REDIS_REST_TOKEN");
  const prefix = Deno.env.get("TORVUS_REDIS_PREFIX") ?? "torvus";
  const later = `running instances will see the change within ${KEY_CACHE_TTL_MS / 1000} s`;
  if (!url || !token) {
    console.error(`admin: Redis is not configured; ${later}`);
    return false;
  }
  try {
    const { redis } = createRedis({ url, token, timeoutMs: 2000 });
    await createRedisKeyEpoch(redis, prefix).bump(shards);
    return true;
  } catch {
    console.error(`admin: could not reach Redis; ${later}`);
    return false;
  }
}
