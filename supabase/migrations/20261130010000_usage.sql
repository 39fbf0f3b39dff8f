-- Usage that owners can see, refusals counted instead of stored one by one, and retention.
--
-- The request log's writer (supabase/functions/_shared/audit.ts) sends each batch as one
-- statement: the batch's id, its full rows, and its aggregated refusals. The same statement
-- keeps the hourly usage of each key (api_usage_hourly) and the refusal counters
-- (api_refusals), so usage is read from rollups, never from scans of the raw log, and a batch
-- retried after a lost answer changes nothing twice (api_log_batches).

-- Batches already written: a retried batch finds its id and writes nothing.
create table public.api_log_batches (
  id uuid primary key,
  written_at timestamptz not null default now()
);
alter table public.api_log_batches enable row level security;
revoke all on public.api_log_batches from anon, authenticated;

-- Refusals beyond the first few of a subject (an API key, a user or an address) in a minute: one
-- row per subject, code and minute with a count. The full rows plus these counts add up to
-- every request answered.
create table public.api_refusals (
  subject text not null,
  code text not null,
  minute timestamptz not null,
  status smallint not null,
  count integer not null check (count > 0),
  first_seen timestamptz not null,
  last_seen timestamptz not null,
  key_id text,
  user_id uuid,
  mode text check (mode in ('live', 'test')),
  ip inet,
  primary key (subject, code, minute)
);
create index api_refusals_minute_idx on public.api_refusals using brin (minute);
create index api_refusals_user_idx on public.api_refusals (user_id, minute desc)
  where user_id is not null;
alter table public.api_refusals enable row level security;
revoke all on public.api_refusals from anon, authenticated;
grant select on public.api_refusals to authenticated;
create policy "users read their own refusals" on public.api_refusals
  for select to authenticated using (user_id = (select auth.uid()));

-- Requests per API key and hour (UTC), by outcome. No foreign key: a row written after its key's
-- owner was deleted must not fail the batch it came with; retention removes it.
create table public.api_usage_hourly (
  key_id text not null,
  hour timestamptz not null,
  user_id uuid not null,
  mode text not null check (mode in ('live', 'test')),
  requests integer not null default 0,
  success integer not null default 0,
  rate_limited integer not null default 0,
  client_errors integer not null default 0,
  server_errors integer not null default 0,
  primary key (key_id, hour)
);
create index api_usage_hourly_user_idx on public.api_usage_hourly (user_id, hour);
alter table public.api_usage_hourly enable row level security;
revoke all on public.api_usage_hourly from anon, authenticated;
grant select on public.api_usage_hourly to authenticated;
create policy "users read their own usage" on public.api_usage_hourly
  for select to authenticated using (user_id = (select auth.uid()));

-- Retention ----------------------------------------------------------------------------------

-- How long each table keeps its rows; operators change the interval here.
create table public.retention_settings (
  relation text primary key
    check (relation in ('api_request_log', 'api_refusals', 'api_usage_hourly', 'api_log_batches')),
  keep interval not null check (keep >= interval '1 day')
);
alter table public.retention_settings enable row level security;
revoke all on public.retention_settings from anon, authenticated;
insert into public.retention_settings (relation, keep) values
  ('api_request_log', interval '30 days'),
  ('api_refusals', interval '13 months'),
  ('api_usage_hourly', interval '13 months'),
  ('api_log_batches', interval '2 days');

-- Retention scans by time: BRIN indexes are tiny and cost the append-only log nearly nothing.
create index api_request_log_created_brin on public.api_request_log using brin (created_at);
create index api_log_batches_written_brin on public.api_log_batches using brin (written_at);

-- Deletes what each table keeps no longer, in batches of `batch_size` rows, committing after
-- each batch: no lock is held for long and no transaction grows with the backlog. Returns the
-- number of rows deleted. Call it outside a transaction block: `call public.purge_expired();`
-- (No `set search_path` clause: a procedure with one may not commit. Every name is qualified,
-- and the procedure runs with its caller's rights.)
create or replace procedure public.purge_expired(inout deleted bigint default 0,
  batch_size integer default 5000)
language plpgsql
as $$
declare
  setting record;
  column_name text;
  cutoff timestamptz;
  n bigint;
begin
  deleted := 0;
  for setting in select s.relation, s.keep from public.retention_settings s order by s.relation loop
    column_name := case setting.relation
      when 'api_request_log' then 'created_at'
      when 'api_refusals' then 'minute'
      when 'api_usage_hourly' then 'hour'
      when 'api_log_batches' then 'written_at'
    end;
    cutoff := pg_catalog.now() - setting.keep;
    loop
      execute format(
        'delete from public.%I where ctid = any(array(select ctid from public.%I where %I < $1 limit $2))',
        setting.relation, setting.relation, column_name)
        using cutoff, batch_size;
      get diagnostics n = row_count;
      deleted := deleted + n;
      commit;
      exit when n < batch_size;
    end loop;
  end loop;
end
$$;
revoke all on procedure public.purge_expired(bigint, integer) from public, anon, authenticated;
grant execute on procedure public.purge_expired(bigint, integer) to service_role;

-- Daily at 03:17 UTC where pg_cron is available (hosted Supabase: enable it under Database →
-- Extensions first, or this migration enables it). Elsewhere nothing is scheduled here: the
-- local stack's dev server runs the same call (docs/DEPLOY.md).
do $$
begin
  create extension if not exists pg_cron;
  perform cron.schedule('torvus-purge-expired', '17 3 * * *', 'call public.purge_expired()');
exception when others then
  raise notice 'pg_cron is not available (%); schedule `call public.purge_expired()` daily', sqlerrm;
end
$$;
