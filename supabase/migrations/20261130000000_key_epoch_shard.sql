-- The key-state epoch is sharded (supabase/functions/_shared/auth/key_epoch.ts): a change to a
-- key bumps the counter of its shard, the first 12 bits of its SHA-256, so that only cached
-- lookups of that shard are re-read. The API announces changes made under RLS as the key's
-- owner, who may read the shard (12 bits of a hash of 256 random bits), never the hash.
alter table public.api_keys add column epoch_shard smallint
  generated always as ((get_byte(key_hash, 0) << 4) | (get_byte(key_hash, 1) >> 4)) stored;
grant select (epoch_shard) on public.api_keys to authenticated;
