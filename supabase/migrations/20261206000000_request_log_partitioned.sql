-- The request log at millions of requests a day (issue 27): partitioned by day, retention drops
-- whole partitions (no DELETE, no dead tuples, no vacuum), rows of about 100 bytes instead of 240,
-- and an operator's setting for how much of the raw log to keep. The hourly aggregates
-- (api_usage_hourly) and the refusal counters are written from every request as before, so the
-- usage API and webhooks stay exact whatever the raw log keeps.
--
-- A row keeps what the owner's view and abuse investigation need, once:
--   - method, route (the path with its ids replaced by `{id}`), code, mode and user agent are one
--     "shape", a row of api_request_shapes named by a 64-bit hash of its text; a client sends the
--     same few shapes all day, so the text is stored once, not per request;
--   - the API key's id is its ULID's 128 bits as a uuid (16 bytes, not 27 of text);
--   - user_id only when no key was used (a key's owner is the key's).
-- Each existing row is migrated into that form below; the usage aggregates are untouched.

-- Settings ---------------------------------------------------------------------------------------

-- One row. raw_log: 'all' requests, only 'failed' ones (status 400 and above: refusals and
-- errors), or 'none'. The writer sends every request either way (the aggregates need them) and
-- this table decides in the same statement, so a change applies at once to every function.
-- partitions_ahead: days of partitions the maintenance keeps created beyond today.
create table public.request_log_settings (
  id boolean primary key default true check (id),
  raw_log text not null default 'all' check (raw_log in ('all', 'failed', 'none')),
  partitions_ahead integer not null default 3 check (partitions_ahead between 1 and 60)
);
alter table public.request_log_settings enable row level security;
revoke all on public.request_log_settings from anon, authenticated;
insert into public.request_log_settings default values;

-- Four days: at 10 million requests a day (about 1 GB a day at the measured 100 bytes a request,
-- README "Capacity") the log holds at most five days' partitions, 5 GB of Supabase Pro's 8 GB.
-- Only a keep still at the old default changes; an operator's own choice stays.
update public.retention_settings set keep = interval '4 days'
  where relation = 'api_request_log' and keep = interval '30 days';

-- Identifiers ------------------------------------------------------------------------------------

-- An API key's ULID (26 characters of Crockford's base32, 128 bits) as the uuid of the same bits,
-- and back. The writer converts in TypeScript (_shared/ulid_uuid.ts); these serve SQL readers.
create or replace function public.key_uuid(p_id text) returns uuid
language sql immutable strict parallel safe
set search_path = ''
as $$
  select pg_catalog.string_agg(pg_catalog.to_hex(
      pg_catalog.substring(b.bits, 3 + 4 * i, 4)::bit(4)::integer), '' order by i)::uuid
  from (
    select pg_catalog.string_agg((pg_catalog.strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ',
        pg_catalog.substr(pg_catalog.upper(p_id), j, 1)) - 1)::bit(5)::text, '' order by j)::varbit
      as bits
    from pg_catalog.generate_series(1, 26) j
  ) b, pg_catalog.generate_series(0, 31) i
$$;

create or replace function public.key_ulid(p_id uuid) returns text
language sql immutable strict parallel safe
set search_path = ''
as $$
  select pg_catalog.string_agg(pg_catalog.substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ',
      pg_catalog.substring(b.bits, 1 + 5 * j, 5)::bit(5)::integer + 1, 1), '' order by j)
  from (
    select (B'00' || ('x' || pg_catalog.replace(p_id::text, '-', ''))::bit(128))::varbit as bits
  ) b, pg_catalog.generate_series(0, 25) j
$$;

-- The shape of a request: the hash naming its row of api_request_shapes (the first 64 bits of
-- the SHA-256 of its fields, one per line; none of them can hold a line break).
create or replace function public.request_shape_id(p_method text, p_route text, p_code text,
  p_mode text, p_user_agent text) returns bigint
language sql immutable parallel safe
set search_path = ''
as $$
  select ('x' || pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
    pg_catalog.concat_ws(e'\n', p_method, p_route, coalesce(p_code, ''), coalesce(p_mode, ''),
      coalesce(p_user_agent, '')), 'UTF8')), 'hex'), 16))::bit(64)::bigint
$$;

-- Tables -----------------------------------------------------------------------------------------

-- What requests looked like, stored once. last_day: the latest UTC day a kept row used it; the
-- maintenance deletes shapes no kept partition can use (a handful of rows a day).
create table public.api_request_shapes (
  id bigint primary key,
  method text not null,
  route text not null,
  code text,
  mode text check (mode in ('live', 'test')),
  user_agent text,
  last_day date not null
);
alter table public.api_request_shapes enable row level security;
revoke all on public.api_request_shapes from anon, authenticated;

alter table public.api_request_log rename to api_request_log_unpartitioned;
alter index public.api_request_log_user_idx rename to api_request_log_unpartitioned_user_idx;
alter index public.api_request_log_key_idx rename to api_request_log_unpartitioned_key_idx;
alter index public.api_request_log_created_brin rename to api_request_log_unpartitioned_brin;

-- Columns in the order that packs them without padding: 85 bytes of tuple for an IPv4 client.
-- No surrogate key and no unique index: a retried batch is recognised by its id
-- (api_log_batches), so a request id is written once without an index enforcing it.
create table public.api_request_log (
  created_at timestamptz not null default now(),
  request_id uuid not null,
  shape bigint not null,
  key_id uuid,
  user_id uuid,
  latency_ms real not null,
  status smallint not null,
  ip inet
) partition by range (created_at);

-- Rows no partition takes (the maintenance stopped for days, a clock far off) land here instead
-- of failing the batch; the maintenance moves them when it creates their partition.
create table public.api_request_log_default partition of public.api_request_log default;

-- Indexes, each for a query that reads the log (README "Capacity", with their plans). Single
-- columns on purpose: B-tree deduplication stores a key's thousands of rows a day as one entry
-- and a list of 6-byte row pointers, where (key_id, created_at) would store every pair in full.
create index api_request_log_key_idx on public.api_request_log (key_id) where key_id is not null;
create index api_request_log_user_idx on public.api_request_log (user_id)
  where user_id is not null;
create index api_request_log_refused_ip_idx on public.api_request_log (ip) where status >= 400;
create index api_request_log_created_brin on public.api_request_log using brin (created_at);

alter table public.api_request_log enable row level security;
alter table public.api_request_log_default enable row level security;
revoke all on public.api_request_log, public.api_request_log_default from anon, authenticated;
grant select on public.api_request_log to authenticated;
-- Rows of the caller's keys or of the caller's user: the keys' ids are computed once per query
-- (an InitPlan), so both partial indexes serve it.
create policy "users read their own request log" on public.api_request_log
  for select to authenticated using (
    user_id = (select auth.uid())
    or key_id = any (array(select public.key_uuid(k.id) from public.api_keys k
      where k.user_id = (select auth.uid())))
  );

-- Partitions -------------------------------------------------------------------------------------

-- The log's partitions and their bounds (the default partition aside), read from the catalogue so
-- that partitions of any width (a test's, an operator's) are respected.
create or replace function public.request_log_partitions()
returns table (name text, lower timestamptz, upper timestamptz)
language sql stable
set search_path = ''
set timezone to 'UTC'
as $$
  select c.relname::text,
    (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
      'FROM \(''([^'']+)''\)'))[1]::timestamptz,
    (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
      'TO \(''([^'']+)''\)'))[1]::timestamptz
  from pg_catalog.pg_inherits i
  join pg_catalog.pg_class c on c.oid = i.inhrelid
  where i.inhparent = 'public.api_request_log'::regclass
    and pg_catalog.pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
  order by 2
$$;

-- Creates the partition [p_from, p_to) and returns its name. Rows the default partition holds for
-- that range move into it first. ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on the parent,
-- so the writers' inserts go on meanwhile. Partitions are reachable by name, so each gets RLS
-- and no privileges for the API roles, as the default partition.
create or replace function public.request_log_add_partition(p_from timestamptz, p_to timestamptz)
returns text
language plpgsql
set search_path = ''
set timezone to 'UTC'
as $$
declare
  name text := 'api_request_log_p' || pg_catalog.to_char(p_from, 'YYYYMMDD"_"HH24MI');
begin
  execute format('create table public.%I (like public.api_request_log including defaults '
    'including constraints)', name);
  execute format('alter table public.%I enable row level security', name);
  execute format('revoke all on public.%I from anon, authenticated', name);
  execute format('with moved as (delete from public.api_request_log_default where created_at >= $1 '
    'and created_at < $2 returning *) insert into public.%I select * from moved', name)
    using p_from, p_to;
  execute format('alter table public.api_request_log attach partition public.%I '
    'for values from (%L) to (%L)', name, p_from, p_to);
  return name;
end
$$;

-- The log's upkeep, as of `p_now` (a test passes its own clock): creates a partition for each UTC
-- day from today's to `partitions_ahead` days ahead where none covers it yet, drops partitions
-- that end at or before `p_now - keep` (retention_settings), removes strays of the default
-- partition older than that, and shapes no kept row can use. A partition it cannot lock within
-- 5 s is left for the next run (reported), so a long reader never queues the writers behind it.
-- Returns {"created": [...], "dropped": [...], "skipped": [...]}.
create or replace function public.request_log_maintain(p_now timestamptz default now())
returns jsonb
language plpgsql
set search_path = ''
set timezone to 'UTC'
set lock_timeout to '5s'
as $$
declare
  ahead integer;
  keep interval;
  cutoff timestamptz;
  day timestamptz;
  upto timestamptz;
  covered timestamptz;
  next timestamptz;
  p record;
  created text[] := '{}';
  dropped text[] := '{}';
  skipped text[] := '{}';
begin
  -- One run at a time (pg_cron and an operator's call would race to create the same partition).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('public.request_log_maintain'));
  select s.partitions_ahead into ahead from public.request_log_settings s;
  select r.keep into keep from public.retention_settings r where r.relation = 'api_request_log';
  cutoff := p_now - coalesce(keep, interval '4 days');
  day := pg_catalog.date_trunc('day', p_now);
  upto := day + pg_catalog.make_interval(days => coalesce(ahead, 3) + 1);
  while day < upto loop
    select max(t.upper) into covered from public.request_log_partitions() t
      where t.lower <= day and t.upper > day;
    if covered is not null then
      day := covered;
      continue;
    end if;
    select least(day + interval '1 day', min(t.lower)) into next
      from public.request_log_partitions() t where t.lower > day;
    begin
      created := created || public.request_log_add_partition(day, next);
    exception when lock_not_available then
      skipped := skipped || ('create ' || day::text);
    end;
    day := next;
  end loop;
  for p in select * from public.request_log_partitions() t where t.upper <= cutoff loop
    begin
      execute format('drop table public.%I', p.name);
      dropped := dropped || p.name;
    exception when lock_not_available then
      skipped := skipped || ('drop ' || p.name);
    end;
  end loop;
  delete from public.api_request_log_default where created_at < cutoff;
  delete from public.api_request_shapes
    where last_day < (select least(min(t.lower), cutoff) from public.request_log_partitions() t
      where t.upper > cutoff)::date;
  return jsonb_build_object('created', created, 'dropped', dropped, 'skipped', skipped);
end
$$;
revoke all on function public.request_log_partitions() from public, anon, authenticated;
revoke all on function public.request_log_add_partition(timestamptz, timestamptz)
  from public, anon, authenticated;
revoke all on function public.request_log_maintain(timestamptz) from public, anon, authenticated;
grant execute on function public.request_log_maintain(timestamptz) to service_role;

-- Existing rows ----------------------------------------------------------------------------------

-- A path as a route: each segment that is an id (a ULID, a UUID, a number) becomes `{id}`. The
-- writer does the same in TypeScript (_shared/audit_rows.ts).
create or replace function public.request_route(p_path text) returns text
language sql immutable strict parallel safe
set search_path = ''
as $$
  select pg_catalog.regexp_replace(p_path,
    '/([0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-' ||
    '[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9]+)(?=/|$)', '/{id}', 'g')
$$;

-- Partitions for the days the kept rows cover, then the rows in their new form. Rows older than
-- the log keeps would be dropped by the first maintenance anyway and are not copied.
select public.request_log_maintain();
do $$
declare
  keep interval := (select r.keep from public.retention_settings r
    where r.relation = 'api_request_log');
  day timestamptz;
  first timestamptz;
begin
  set local timezone to 'UTC';
  select pg_catalog.date_trunc('day', min(created_at)) into first
    from public.api_request_log_unpartitioned where created_at >= now() - keep;
  day := first;
  while day < pg_catalog.date_trunc('day', now()) loop
    if not exists (select 1 from public.request_log_partitions() t where t.lower = day) then
      perform public.request_log_add_partition(day, day + interval '1 day');
    end if;
    day := day + interval '1 day';
  end loop;
end
$$;

with old as (
  select o.*, public.request_route(o.path) as route
  from public.api_request_log_unpartitioned o
  where o.created_at >= now() - (select r.keep from public.retention_settings r
    where r.relation = 'api_request_log')
), shaped as (
  select old.*, public.request_shape_id(old.method, old.route, old.code, old.mode,
    old.user_agent) as shape
  from old
), shapes as (
  insert into public.api_request_shapes (id, method, route, code, mode, user_agent, last_day)
  select distinct on (shape) shape, method, route, code, mode, user_agent,
    (max(created_at) over (partition by shape) at time zone 'UTC')::date
  from shaped
  order by shape
  on conflict (id) do nothing
)
insert into public.api_request_log (created_at, request_id, shape, key_id, user_id, latency_ms,
  status, ip)
select created_at, request_id, shape, public.key_uuid(key_id),
  case when key_id is null then user_id end, latency_ms, status, ip
from shaped;

drop table public.api_request_log_unpartitioned;

-- Retention --------------------------------------------------------------------------------------

-- As before for the other tables (batched DELETEs by retention_settings, `deleted` their rows);
-- the request log is kept by request_log_maintain() instead: partitions dropped, never rows
-- deleted. `maintained` reports what it did. Scheduled as before (pg_cron daily, the dev server's
-- scheduler locally), so partitions are created days ahead by the same job.
drop procedure public.purge_expired(bigint, integer);
create procedure public.purge_expired(inout deleted bigint default 0,
  batch_size integer default 5000, inout maintained jsonb default null)
language plpgsql
as $$
declare
  setting record;
  column_name text;
  cutoff timestamptz;
  n bigint;
begin
  deleted := 0;
  maintained := public.request_log_maintain(pg_catalog.now());
  commit;
  for setting in select s.relation, s.keep from public.retention_settings s
    where s.relation <> 'api_request_log' order by s.relation loop
    column_name := case setting.relation
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
revoke all on procedure public.purge_expired(bigint, integer, jsonb)
  from public, anon, authenticated;
grant execute on procedure public.purge_expired(bigint, integer, jsonb) to service_role;

-- Reading ----------------------------------------------------------------------------------------

-- The log as it was written, for operators (the service role and the SQL editor): the key's id
-- as text, the shape's fields, the owner of a key's rows. security_invoker: the caller's rights
-- and RLS apply; the API roles have no privileges on it.
create view public.api_request_log_entries with (security_invoker = true) as
select l.created_at, l.request_id, coalesce(k.id, public.key_ulid(l.key_id)) as key_id,
  coalesce(l.user_id, k.user_id) as user_id, s.mode, s.method, s.route, l.status, s.code,
  l.latency_ms, l.ip, s.user_agent
from public.api_request_log l
join public.api_request_shapes s on s.id = l.shape
left join public.api_keys k on public.key_uuid(k.id) = l.key_id;
revoke all on public.api_request_log_entries from anon, authenticated;

-- The owner's view: the caller's requests (their user's and their keys') in [p_from, p_to), newest
-- first, as written, at most the last day of the range and 1,000 rows (a busy key's week would be
-- millions of rows to sort). SECURITY DEFINER because shapes are shared by all users and not
-- readable by them; it filters by auth.uid() itself, exactly as the log's policy does, and reads
-- only the partitions of the range.
create or replace function public.my_request_log(p_from timestamptz, p_to timestamptz,
  p_limit integer default 100)
returns table (created_at timestamptz, request_id uuid, key_id text, mode text, method text,
  route text, status smallint, code text, latency_ms real, ip inet, user_agent text)
language sql stable security definer
set search_path = ''
as $$
  select l.created_at, l.request_id, public.key_ulid(l.key_id), s.mode, s.method, s.route,
    l.status, s.code, l.latency_ms, l.ip, s.user_agent
  from public.api_request_log l
  join public.api_request_shapes s on s.id = l.shape
  where l.created_at >= greatest(p_from, p_to - interval '1 day') and l.created_at < p_to
    and (l.user_id = (select auth.uid())
      or l.key_id = any (array(select public.key_uuid(k.id) from public.api_keys k
        where k.user_id = (select auth.uid()))))
  order by l.created_at desc
  limit least(greatest(p_limit, 0), 1000)
$$;
revoke all on function public.my_request_log(timestamptz, timestamptz, integer) from public, anon;
grant execute on function public.my_request_log(timestamptz, timestamptz, integer)
  to authenticated;
