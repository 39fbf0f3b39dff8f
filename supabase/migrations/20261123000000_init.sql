-- Torvus API schema: tiers, accounts, API keys, vaults and the request log.
--
-- Every table has RLS enabled. The API roles (anon, authenticated) get only the columns and
-- rows their policies allow; the functions run user queries as `authenticated` with the
-- caller's claims, so these policies are the isolation boundary, not application code.
-- Writes a user must not make (tier, status back to active, key hash reads) are refused by
-- column grants and guard triggers, which also protects direct PostgREST access.

create extension if not exists pgcrypto with schema extensions;

-- ULID (Crockford base32: 48-bit millisecond time + 80 random bits), the id format the API
-- documents for keys and tiers.
create or replace function public.ulid() returns text
language plpgsql volatile
set search_path = ''
as $$
declare
  alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  ts bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
  rnd bytea := extensions.gen_random_bytes(10);
  result text := '';
  acc bigint := 0;
  bits int := 0;
begin
  for i in reverse 9..0 loop
    result := result || substr(alphabet, ((ts >> (i * 5)) & 31)::int + 1, 1);
  end loop;
  for i in 0..9 loop
    acc := (acc << 8) | get_byte(rnd, i);
    bits := bits + 8;
    while bits >= 5 loop
      bits := bits - 5;
      result := result || substr(alphabet, ((acc >> bits) & 31)::int + 1, 1);
    end loop;
    acc := acc & ((1::bigint << bits) - 1);
  end loop;
  return result;
end
$$;

-- The mode (live/test) of the current request: API-key requests carry `key_mode` in the claims
-- the function sets; a user's own Supabase JWT has none and sees live data.
create or replace function public.request_mode() returns text
language sql stable
set search_path = ''
as $$
  select coalesce(auth.jwt() ->> 'key_mode', 'live')
$$;

-- Tiers -----------------------------------------------------------------------------------------

create table public.tiers (
  id text primary key default public.ulid() check (id ~ '^[0-9A-HJKMNP-TV-Z]{26}$'),
  name text not null unique check (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
  requests_per_minute integer not null check (requests_per_minute > 0),
  requests_per_day integer not null check (requests_per_day > 0),
  test_requests_per_minute integer not null check (test_requests_per_minute > 0),
  test_requests_per_day integer not null check (test_requests_per_day > 0),
  created_at timestamptz not null default now()
);
comment on table public.tiers is
  'Subscription tiers and their API-key rate limits. Test keys use the test_* limits.';

-- Fixed ids so that every environment names the standard tiers the same way.
insert into public.tiers
  (id, name, requests_per_minute, requests_per_day, test_requests_per_minute, test_requests_per_day)
values
  ('01JBG7XKQM9F3Y8W2Z5N4P1R6A', 'free', 10, 1000, 20, 2000),
  ('01JBG7XKQM9F3Y8W2Z5N4P1R6B', 'professional', 60, 10000, 120, 20000),
  ('01JBG7XKQM9F3Y8W2Z5N4P1R6C', 'enterprise', 300, 100000, 600, 200000);

alter table public.tiers enable row level security;
revoke all on public.tiers from anon, authenticated;
grant select on public.tiers to anon, authenticated;
create policy "tiers are public" on public.tiers for select to anon, authenticated using (true);

-- Accounts --------------------------------------------------------------------------------------

create table public.accounts (
  user_id uuid primary key references auth.users (id) on delete cascade,
  tier_id text not null default '01JBG7XKQM9F3Y8W2Z5N4P1R6A' references public.tiers (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

alter table public.accounts enable row level security;
revoke all on public.accounts from anon, authenticated;
grant select on public.accounts to authenticated;
create policy "users read their own account" on public.accounts
  for select to authenticated using (user_id = (select auth.uid()));

create or replace function public.handle_new_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into public.accounts (user_id) values (new.id) on conflict (user_id) do nothing;
  return new;
end
$$;
revoke all on function public.handle_new_user() from public, anon, authenticated;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.handle_new_user();

-- API keys --------------------------------------------------------------------------------------

create table public.api_keys (
  id text primary key default public.ulid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 100),
  mode text not null check (mode in ('live', 'test')),
  start text not null check (char_length(start) between 8 and 20),
  key_hash bytea not null unique check (octet_length(key_hash) = 32),
  scopes text[] not null default '{read}'
    check (scopes <@ array['read', 'write', 'delete'] and cardinality(scopes) > 0),
  status text not null default 'active'
    check (status in ('active', 'revoked', 'suspended', 'expired')),
  tier_id text not null references public.tiers (id),
  expires_at timestamptz,
  last_used_at timestamptz,
  ip_allowlist cidr[],
  rolled_from text references public.api_keys (id) on delete set null,
  revoked_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index api_keys_user_id_idx on public.api_keys (user_id, created_at desc);

alter table public.api_keys enable row level security;
revoke all on public.api_keys from anon, authenticated;
-- Everything but the hash: nobody reads a hash back, not even its owner.
grant select (id, user_id, name, mode, start, scopes, status, tier_id, expires_at, last_used_at,
  ip_allowlist, rolled_from, revoked_at, created_at, updated_at) on public.api_keys to authenticated;
grant insert (user_id, name, mode, start, key_hash, scopes, expires_at, ip_allowlist, rolled_from)
  on public.api_keys to authenticated;
grant update (name, status, expires_at) on public.api_keys to authenticated;

create policy "users read their own keys" on public.api_keys
  for select to authenticated using (user_id = (select auth.uid()));
create policy "users create their own keys" on public.api_keys
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "users change their own keys" on public.api_keys
  for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- Rules for writes made by users themselves (operators connect as postgres or service_role and
-- are not bound by them): a new key takes the account's tier and starts active; a user may
-- revoke a key or bring its expiry closer, never reactivate it or extend it; an IP allowlist
-- needs the enterprise tier. Errors carry SQLSTATE TV4xx so the API can map them to codes.
create or replace function public.api_keys_guard() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  tier_name text;
begin
  if current_user not in ('authenticated', 'anon') then
    new.updated_at := now();
    return new;
  end if;
  if tg_op = 'INSERT' then
    select a.tier_id, t.name into new.tier_id, tier_name
      from public.accounts a join public.tiers t on t.id = a.tier_id
      where a.user_id = new.user_id;
    if new.tier_id is null then
      raise exception 'account not found' using errcode = 'TV404';
    end if;
    if new.ip_allowlist is not null and tier_name <> 'enterprise' then
      raise exception 'ip allowlist requires the enterprise tier' using errcode = 'TV403';
    end if;
    -- Checked here, under RLS, because the foreign key alone would accept another user's key.
    if new.rolled_from is not null and not exists (
      select 1 from public.api_keys k where k.id = new.rolled_from and k.user_id = new.user_id
    ) then
      raise exception 'rolled_from key not found' using errcode = 'TV404';
    end if;
    new.status := 'active';
    new.last_used_at := null;
    new.revoked_at := null;
    new.created_at := now();
  else
    if new.status is distinct from old.status then
      if new.status <> 'revoked' or old.status in ('revoked', 'expired') then
        raise exception 'status change not allowed' using errcode = 'TV409';
      end if;
      new.revoked_at := now();
    end if;
    if new.expires_at is distinct from old.expires_at
      and (new.expires_at is null or (old.expires_at is not null and new.expires_at > old.expires_at))
    then
      raise exception 'expiry can only be brought closer' using errcode = 'TV409';
    end if;
  end if;
  new.updated_at := now();
  return new;
end
$$;

create trigger api_keys_guard
  before insert or update on public.api_keys
  for each row execute function public.api_keys_guard();

-- The one way to verify a key: by its SHA-256, with its tier limits, in one round trip.
-- SECURITY DEFINER so that the verifier needs no table grants; callable by service roles only.
create or replace function public.verify_api_key(p_key_hash bytea)
returns table (
  id text,
  user_id uuid,
  name text,
  mode text,
  status text,
  scopes text[],
  expires_at timestamptz,
  ip_allowlist cidr[],
  tier_id text,
  tier_name text,
  requests_per_minute integer,
  requests_per_day integer
)
language sql stable security definer
set search_path = ''
as $$
  select k.id, k.user_id, k.name, k.mode, k.status, k.scopes, k.expires_at, k.ip_allowlist,
    t.id, t.name,
    case when k.mode = 'test' then t.test_requests_per_minute else t.requests_per_minute end,
    case when k.mode = 'test' then t.test_requests_per_day else t.requests_per_day end
  from public.api_keys k
  join public.tiers t on t.id = k.tier_id
  where k.key_hash = p_key_hash
$$;
revoke all on function public.verify_api_key(bytea) from public, anon, authenticated;
grant execute on function public.verify_api_key(bytea) to service_role;

-- Vaults ----------------------------------------------------------------------------------------

create table public.vaults (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  mode text not null default public.request_mode() check (mode in ('live', 'test')),
  -- Names and descriptions arrive encrypted by the client; the server stores what it is given.
  name text not null check (char_length(name) between 1 and 10000),
  description text check (char_length(description) <= 100000),
  tags text[] not null default '{}' check (cardinality(tags) <= 50),
  status text not null default 'active' check (status in ('active', 'inactive')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index vaults_owner_idx on public.vaults (user_id, mode, created_at desc, id);

alter table public.vaults enable row level security;
revoke all on public.vaults from anon, authenticated;
grant select on public.vaults to authenticated;
grant insert (name, description, tags) on public.vaults to authenticated;
grant update (name, description, tags, status) on public.vaults to authenticated;

create policy "users read their own vaults in the request's mode" on public.vaults
  for select to authenticated
  using (user_id = (select auth.uid()) and mode = (select public.request_mode()));
create policy "users create vaults in the request's mode" on public.vaults
  for insert to authenticated
  with check (user_id = (select auth.uid()) and mode = (select public.request_mode()));
create policy "users change their own vaults in the request's mode" on public.vaults
  for update to authenticated
  using (user_id = (select auth.uid()) and mode = (select public.request_mode()))
  with check (user_id = (select auth.uid()) and mode = (select public.request_mode()));

create or replace function public.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create trigger vaults_touch_updated_at
  before update on public.vaults
  for each row execute function public.touch_updated_at();

-- Request log -----------------------------------------------------------------------------------

create table public.api_request_log (
  id bigint generated always as identity primary key,
  request_id uuid not null,
  key_id text,
  user_id uuid,
  mode text check (mode in ('live', 'test')),
  method text not null,
  path text not null,
  status smallint not null,
  code text,
  latency_ms real not null,
  ip inet,
  user_agent text,
  created_at timestamptz not null default now()
);
create index api_request_log_user_idx on public.api_request_log (user_id, created_at desc);
create index api_request_log_key_idx on public.api_request_log (key_id, created_at desc);

alter table public.api_request_log enable row level security;
revoke all on public.api_request_log from anon, authenticated;
-- Default privileges granted the identity sequence too; setval() from a user would break logging.
revoke all on sequence public.api_request_log_id_seq from anon, authenticated;
grant select on public.api_request_log to authenticated;
create policy "users read their own request log" on public.api_request_log
  for select to authenticated using (user_id = (select auth.uid()));

-- Profile ---------------------------------------------------------------------------------------

-- The caller's own profile. auth.users is not readable by API roles, so this SECURITY DEFINER
-- function returns exactly one row: the one whose id is the caller's `sub`.
create or replace function public.current_user_profile()
returns table (id uuid, email text, created_at timestamptz)
language sql stable security definer
set search_path = ''
as $$
  select u.id, u.email::text, u.created_at
  from auth.users u
  where u.id = auth.uid() and u.deleted_at is null
$$;
revoke all on function public.current_user_profile() from public, anon;
grant execute on function public.current_user_profile() to authenticated;
