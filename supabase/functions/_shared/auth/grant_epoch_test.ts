import assert from "node:assert/strict";
import postgres from "postgres";
import { createGrantEpoch, grantShardOf } from "./grant_epoch.ts";
import { createRedis } from "../redis.ts";

Deno.test("grantShardOf: the database's grant_epoch_shard(uuid), for any user id", async () => {
  const url = Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres@127.0.0.1:5432/postgres";
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const ids = Array.from({ length: 200 }, () => crypto.randomUUID());
    ids.push("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff");
    // The function's body, inline: this test needs no migrated database.
    const rows = await sql<{ id: string; shard: number }[]>`
      select id::text, ((get_byte(sha256(uuid_send(id)), 0) << 4)
        | (get_byte(sha256(uuid_send(id)), 1) >> 4))::int as shard
      from unnest(${ids}::uuid[]) as id`;
    for (const row of rows) assert.equal(grantShardOf(row.id), row.shard, row.id);
    assert.ok(new Set(rows.map((r) => r.shard)).size > 150, "shards spread");
  } finally {
    await sql.end();
  }
  // The keys a deployed system counts in: renaming them would lose every announced change.
  const id = "00000000-0000-0000-0000-000000000000";
  const { redis } = createRedis({ url: "http://127.0.0.1:9", token: "unused", timeoutMs: 1 });
  assert.deepEqual(createGrantEpoch(redis, "torvus").keysOf(id), [
    "torvus:grants:epoch",
    `torvus:grants:epoch:${grantShardOf(id)}`,
  ]);
  assert.throws(() => grantShardOf("not-a-uuid"), TypeError);
});
