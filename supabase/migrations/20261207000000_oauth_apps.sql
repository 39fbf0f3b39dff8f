-- Third-party apps (issue 25): apps that developers register as Supabase Auth OAuth clients, the
-- grants users give them, and the rules that hold an app's token to its grant, here in the
-- database, so the same token sent straight to PostgREST can do no more than the API allows.
--
-- Supabase Auth issues an app's access token as the user's own JWT (role `authenticated`, `sub`)
-- plus `client_id` and `scope` (identity scopes only: `openid email profile ...`). Without these
-- rules such a token has all of its user's power. With them:
--   - a request is an app's when its claims carry a non-empty `client_id` (request_client_id());
--     user tokens and the API's API-key requests (claims without client_id) are unaffected;
--   - an app's request may do what the scopes of its user's active grant to that app allow,
--     intersected with the scopes the app asks for (request_app_scopes()); no active grant
--     (never granted, revoked, another user's, another app's): nothing at all;
--   - every table the API roles can reach gets RESTRICTIVE policies named "app tokens ...",
--     which are ANDed with the permissive ones: vaults by scope, account tables never (api keys,
--     webhooks, usage and the request log, accounts, apps, grants); SECURITY DEFINER functions
--     callable by `authenticated` check the same themselves. tests/db_app_tokens_test.ts finds
--     the tables and functions in the catalogue, so one added later without a rule fails it.
--
-- The policies read the claims and the grant once per statement: each call is wrapped in
-- `(select ...)`, which the planner runs once as an InitPlan, as the existing policies do.

-- The request's app --------------------------------------------------------------------------

-- The app a request acts for: the `client_id` claim, or null for a user's own token and for the
-- API's API-key requests. An empty or JSON-null claim counts as none (a plain session may carry
-- the field empty).
--
-- This function and request_allows() have no SET clause on purpose, so the planner inlines them
-- into the policies' InitPlans (every name in them is qualified): a SQL function with one is
-- parsed and planned again at each statement, 11 µs against 2 measured for this one, and 110 µs
-- for request_allows() as first written.
create or replace function public.request_client_id() returns text
language sql stable
as $$
  select nullif(auth.jwt() ->> 'client_id', '')
$$;

-- Scopes ----------------------------------------------------------------------------------------

-- The API scopes an app may ask for and a user may grant (a closed set).
create or replace function public.app_scope_names() returns text[]
language sql immutable
set search_path = ''
as $$
  select array['vaults:read', 'vaults:write', 'vaults:delete', 'profile:read']
$$;

-- A valid set of API scopes: one-dimensional, not empty, known names, no duplicates, and
-- vaults:write or vaults:delete only with vaults:read. Writing implies reading at the database
-- (an update finds its row by id and returns it, so the row must pass the SELECT policies), so a
-- grant states it: what the user sees granted is exactly what the token can do.
create or replace function public.app_scopes_valid(p_scopes text[]) returns boolean
language sql immutable
set search_path = ''
as $$
  select coalesce(
    pg_catalog.array_ndims(p_scopes) = 1
      and pg_catalog.array_position(p_scopes, null) is null
      and p_scopes <@ public.app_scope_names()
      and (select pg_catalog.count(distinct s) from pg_catalog.unnest(p_scopes) s)
        = pg_catalog.cardinality(p_scopes)
      and ('vaults:read' = any (p_scopes)
        or not p_scopes && array['vaults:write', 'vaults:delete']),
    false)
$$;

-- The shard of a user's grants in the grant-state epoch (see oauth_grants.epoch_shard): the first
-- 12 bits of the SHA-256 of the user id's 16 bytes, so the API computes it from the token's `sub`
-- alone (as keys' shards come from the key's hash).
create or replace function public.grant_epoch_shard(p_user uuid) returns smallint
language sql immutable strict parallel safe
set search_path = ''
as $$
  select ((pg_catalog.get_byte(pg_catalog.sha256(pg_catalog.uuid_send(p_user)), 0) << 4)
    | (pg_catalog.get_byte(pg_catalog.sha256(pg_catalog.uuid_send(p_user)), 1) >> 4))::smallint
$$;

-- Apps ------------------------------------------------------------------------------------------

-- An app: its Supabase Auth OAuth client, its owner, the API scopes it asks for and its tier
-- (rate limits as keys have them: per user of the app, and the API's ceiling across its users).
-- The OAuth client itself (secret, redirect URIs that count) lives in Supabase Auth; the
-- redirect URIs here are a copy for listing without a call to Auth's admin API.
--
-- Rows are created only by the apps function over its service connection, right after Supabase
-- Auth's admin API created the client: the client id must be one Auth issued to this developer,
-- which only that function knows (client ids are public, they travel in authorization URLs, so
-- a user inserting rows could claim another developer's client and receive its grant events).
-- Owners read, change (name, website, logo, redirect URIs, scopes) and delete their own apps.
create table public.oauth_apps (
  id text primary key default public.ulid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  client_id text not null unique check (client_id ~ '^[A-Za-z0-9._~-]{1,255}$'),
  client_type text not null check (client_type in ('public', 'confidential')),
  name text not null check (char_length(name) between 1 and 100),
  website text check (char_length(website) <= 2048 and website ~ '^https?://[^\s]+$'),
  -- Shown on the consent page, which is served over https: a plain-http logo would be blocked.
  logo_uri text check (char_length(logo_uri) <= 2048 and logo_uri ~ '^https://[^\s]+$'),
  redirect_uris text[] not null check (pg_catalog.array_ndims(redirect_uris) = 1
    and cardinality(redirect_uris) between 1 and 10
    and pg_catalog.array_position(redirect_uris, null) is null),
  scopes text[] not null check (public.app_scopes_valid(scopes)),
  -- Filled from the owner's account when not given (an operator may set another).
  tier_id text not null references public.tiers (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index oauth_apps_owner_idx on public.oauth_apps (owner_id, created_at desc);
create index oauth_apps_tier_idx on public.oauth_apps (tier_id);

alter table public.oauth_apps enable row level security;
revoke all on public.oauth_apps from anon, authenticated;
grant select on public.oauth_apps to authenticated;
grant update (name, website, logo_uri, redirect_uris, scopes) on public.oauth_apps
  to authenticated;
grant delete on public.oauth_apps to authenticated;

create policy "owners read their own apps" on public.oauth_apps
  for select to authenticated using (owner_id = (select auth.uid()));
create policy "owners change their own apps" on public.oauth_apps
  for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy "owners delete their own apps" on public.oauth_apps
  for delete to authenticated using (owner_id = (select auth.uid()));

create or replace function public.oauth_apps_guard() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    if new.tier_id is null then
      select a.tier_id into new.tier_id from public.accounts a where a.user_id = new.owner_id;
      if new.tier_id is null then
        raise exception 'account not found' using errcode = 'TV404';
      end if;
    end if;
    new.created_at := now();
  end if;
  new.updated_at := now();
  return new;
end
$$;

create trigger oauth_apps_guard
  before insert or update on public.oauth_apps
  for each row execute function public.oauth_apps_guard();

-- Grants ----------------------------------------------------------------------------------------

-- A user's grant to an app: the scopes the user chose at consent (a subset of the app's), when,
-- and, once revoked, when. At most one active grant per user and app; a new consent supersedes
-- the active one (revoked by the guard, in the same statement). Revoked rows stay as history.
--
-- epoch_shard names the grant-state epoch counter in Redis that the API bumps whenever grants of
-- this user change, exactly as keys have api_keys.epoch_shard (20261130000000_key_epoch_shard):
-- the API caches admissions of app tokens per isolate, keyed by (sub, client_id), and trusts a
-- cached one only while `<prefix>:grants:epoch` and `<prefix>:grants:epoch:<shard>` read back
-- unchanged, in the same Redis round trip as the rate limits; a miss reads the epoch first, then
-- verify_oauth_grant(). So a revocation through the API is refused on the very next request on
-- every instance. Changes that touch many users' grants (an app deleted, its scopes narrowed, its
-- tier changed) bump the global counter. A change made around the API (PostgREST, SQL) is seen
-- by the API within its cache lifetime; the database itself applies it at once (the policies
-- below read the grant at every statement).
create table public.oauth_grants (
  id text primary key default public.ulid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  client_id text not null references public.oauth_apps (client_id) on delete cascade,
  scopes text[] not null check (public.app_scopes_valid(scopes)),
  granted_at timestamptz not null default now(),
  revoked_at timestamptz,
  -- Moved by the request log's writer, at most once a minute per grant (as keys' last_used_at).
  last_used_at timestamptz,
  epoch_shard smallint not null generated always as (public.grant_epoch_shard(user_id)) stored,
  constraint oauth_grants_revoked_after_granted check (revoked_at >= granted_at)
);
-- The lookup of every app request (verify_oauth_grant, request_app_scopes) and the rule.
create unique index oauth_grants_active_key on public.oauth_grants (user_id, client_id)
  where revoked_at is null;
create index oauth_grants_user_idx on public.oauth_grants (user_id, granted_at desc);
-- An app's users (its owner's counts), and the cascade when an app is deleted.
create index oauth_grants_client_idx on public.oauth_grants (client_id);

alter table public.oauth_grants enable row level security;
revoke all on public.oauth_grants from anon, authenticated;
grant select on public.oauth_grants to authenticated;
grant insert (client_id, scopes) on public.oauth_grants to authenticated;
-- Revoking is the one change a user makes.
grant update (revoked_at) on public.oauth_grants to authenticated;

create policy "users read their own grants" on public.oauth_grants
  for select to authenticated using (user_id = (select auth.uid()));
create policy "users grant apps for themselves" on public.oauth_grants
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "users revoke their own grants" on public.oauth_grants
  for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- The scopes an app asks for, by client id, for the grants guard (users cannot read others'
-- apps). Nothing for an app's own token.
create or replace function public.oauth_app_requested_scopes(p_client_id text) returns text[]
language sql stable security definer
set search_path = ''
as $$
  select a.scopes from public.oauth_apps a
  where a.client_id = p_client_id and public.request_client_id() is null
$$;

-- Rules for writes made by users (operators, the service connection, are not bound by them): a
-- grant names an app that exists and only scopes it asks for (TV404, TV400); it starts now and
-- active, superseding the user's active grant to the same app; a revocation takes the time of
-- the database and is final (TV409).
create or replace function public.oauth_grants_guard() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  requested text[];
begin
  if current_user not in ('authenticated', 'anon') then
    return new;
  end if;
  if tg_op = 'INSERT' then
    requested := public.oauth_app_requested_scopes(new.client_id);
    if requested is null then
      raise exception 'app not found' using errcode = 'TV404';
    end if;
    if not new.scopes <@ requested then
      raise exception 'scopes not requested by the app' using errcode = 'TV400';
    end if;
    update public.oauth_grants set revoked_at = now()
      where user_id = new.user_id and client_id = new.client_id and revoked_at is null;
    new.granted_at := now();
    new.revoked_at := null;
    new.last_used_at := null;
  elsif new.revoked_at is distinct from old.revoked_at then
    if old.revoked_at is not null or new.revoked_at is null then
      raise exception 'a revoked grant stays revoked' using errcode = 'TV409';
    end if;
    new.revoked_at := now();
  end if;
  return new;
end
$$;

create trigger oauth_grants_guard
  before insert or update on public.oauth_grants
  for each row execute function public.oauth_grants_guard();

-- The claims' app and its power ------------------------------------------------------------------

-- What an app's request may do: the scopes of its user's active grant to its app that the app
-- still asks for; '{}' when there is no such grant. Null when the request is no app's (no
-- limit from here). SECURITY DEFINER: an app's token cannot read grants or apps itself.
-- PL/pgSQL, so its query's plan is kept for the session, and a request that is no app's returns
-- before any query.
create or replace function public.request_app_scopes() returns text[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  client text := public.request_client_id();
  granted text[];
begin
  if client is null then
    return null;
  end if;
  select array(select s from unnest(g.scopes) with ordinality u (s, i)
      where s = any (a.scopes) order by i)
    into granted
    from public.oauth_grants g
    join public.oauth_apps a on a.client_id = g.client_id
    where g.user_id = auth.uid() and g.client_id = client and g.revoked_at is null;
  return coalesce(granted, '{}');
end
$$;

-- Whether the request may use `p_scope`: always for a request that is no app's; for an app's,
-- only when its grant has the scope. (A null scope: only requests that are no app's.) Inlined
-- (see request_client_id()): for a user's token it costs the reading of one claim.
create or replace function public.request_allows(p_scope text) returns boolean
language sql stable
as $$
  select case when public.request_client_id() is null then true
    else coalesce(p_scope = any (public.request_app_scopes()), false) end
$$;

revoke all on function public.request_app_scopes() from public;
grant execute on function public.request_app_scopes() to anon, authenticated, service_role;
revoke all on function public.oauth_app_requested_scopes(text) from public, anon;
grant execute on function public.oauth_app_requested_scopes(text) to authenticated, service_role;

-- The one way the API admits an app's token: the active grant of (user, client id) with its
-- scopes (those the app still asks for), the shard of its epoch and the app's tier limits (as
-- keys': each user's budget with the app, and the base of the app's ceiling across its users), in
-- one round trip. No row: no active grant, refuse the token (401/403 as the API documents). Called
-- by the service connection only, after the JWT's signature and claims were checked; see
-- oauth_grants.epoch_shard for the cache and the epoch around it.
create or replace function public.verify_oauth_grant(p_user uuid, p_client_id text)
returns table (
  grant_id text,
  app_id text,
  owner_id uuid,
  scopes text[],
  granted_at timestamptz,
  epoch_shard smallint,
  tier_id text,
  tier_name text,
  requests_per_minute integer,
  requests_per_day integer
)
language sql stable security definer
set search_path = ''
as $$
  select g.id, a.id, a.owner_id,
    array(select s from unnest(g.scopes) with ordinality u (s, i)
      where s = any (a.scopes) order by i),
    g.granted_at, g.epoch_shard, t.id, t.name, t.requests_per_minute, t.requests_per_day
  from public.oauth_grants g
  join public.oauth_apps a on a.client_id = g.client_id
  join public.tiers t on t.id = a.tier_id
  where g.user_id = p_user and g.client_id = p_client_id and g.revoked_at is null
$$;
revoke all on function public.verify_oauth_grant(uuid, text) from public, anon, authenticated;
grant execute on function public.verify_oauth_grant(uuid, text) to service_role;

-- App tokens: vaults by scope ---------------------------------------------------------------------

create policy "app tokens read vaults with vaults:read" on public.vaults
  as restrictive for select to authenticated
  using ((select public.request_allows('vaults:read')));
create policy "app tokens create vaults with vaults:write" on public.vaults
  as restrictive for insert to authenticated
  with check ((select public.request_allows('vaults:write')));
-- Which of the two an update needs depends on what it changes: the guard below decides.
create policy "app tokens change vaults with vaults:write or vaults:delete" on public.vaults
  as restrictive for update to authenticated
  using ((select public.request_allows('vaults:write'))
    or (select public.request_allows('vaults:delete')))
  with check ((select public.request_allows('vaults:write'))
    or (select public.request_allows('vaults:delete')));
create policy "app tokens delete vaults with vaults:delete" on public.vaults
  as restrictive for delete to authenticated
  using ((select public.request_allows('vaults:delete')));

-- The API's delete of a vault is an update (status active -> inactive): for an app's request,
-- deactivating needs vaults:delete, any other change (fields, reactivation) vaults:write.
create or replace function public.vaults_app_scope_guard() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if public.request_client_id() is null then
    return new;
  end if;
  if ((new.name, new.description, new.tags) is distinct from (old.name, old.description, old.tags)
      or (old.status = 'inactive' and new.status = 'active'))
    and not public.request_allows('vaults:write')
  then
    raise exception 'the grant lacks vaults:write' using errcode = 'TV403';
  end if;
  if old.status = 'active' and new.status = 'inactive' and not public.request_allows('vaults:delete')
  then
    raise exception 'the grant lacks vaults:delete' using errcode = 'TV403';
  end if;
  return new;
end
$$;

create trigger vaults_app_scope_guard
  before update on public.vaults
  for each row execute function public.vaults_app_scope_guard();

-- App tokens: account tables never -----------------------------------------------------------------

-- Keys, webhooks, usage and the request log, the account, apps and grants are the user's own
-- business, never an app's, whatever it was granted.
do $$
declare
  t text;
begin
  foreach t in array array['accounts', 'api_keys', 'api_request_log', 'api_refusals',
    'api_usage_hourly', 'webhook_endpoints', 'webhook_events', 'webhook_deliveries',
    'oauth_apps', 'oauth_grants']
  loop
    execute format('create policy "app tokens never reach account tables" on public.%I '
      'as restrictive for all to authenticated '
      'using ((select public.request_client_id()) is null) '
      'with check ((select public.request_client_id()) is null)', t);
  end loop;
end
$$;

-- SECURITY DEFINER functions bypass RLS: each one callable by `authenticated` checks the request
-- itself. The profile needs profile:read; the account functions answer an app as if nothing
-- were there (no row, false, null).

create or replace function public.current_user_profile()
returns table (id uuid, email text, created_at timestamptz)
language sql stable security definer
set search_path = ''
as $$
  select u.id, u.email::text, u.created_at
  from auth.users u
  where u.id = auth.uid() and u.deleted_at is null
    and (select public.request_allows('profile:read'))
$$;

create or replace function public.webhook_rotate_secret(p_id text, p_secret text, p_grace integer)
returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  if public.request_client_id() is not null then
    return false;
  end if;
  update public.webhook_endpoints
    set previous_secret = case when p_grace > 0 then secret end,
      previous_secret_expires_at = case when p_grace > 0 then now() + make_interval(secs => p_grace) end,
      secret = p_secret,
      secret_rotated_at = now()
    where id = p_id and user_id = (select auth.uid());
  return found;
end
$$;

create or replace function public.webhook_send_test(p_endpoint text) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  ep public.webhook_endpoints;
begin
  if public.request_client_id() is not null then
    return null;
  end if;
  select * into ep from public.webhook_endpoints
    where id = p_endpoint and user_id = (select auth.uid()) and status = 'enabled';
  if not found then
    return null;
  end if;
  return public.webhook_enqueue(ep.user_id, ep.mode, 'webhook.test',
    jsonb_build_object('endpoint_id', ep.id, 'message', 'A test event from Torvus'), ep.id);
end
$$;

create or replace function public.webhook_retry_delivery(
  p_endpoint text,
  p_delivery text,
  p_retry_for interval
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  d public.webhook_deliveries;
begin
  if public.request_client_id() is not null then
    return null;
  end if;
  select * into d from public.webhook_deliveries
    where id = p_delivery and endpoint_id = p_endpoint and user_id = (select auth.uid())
    for update;
  if not found then
    return null;
  end if;
  if d.status = 'pending' and d.lease_id is not null and d.next_attempt_at > now() then
    return 'in_flight';
  end if;
  update public.webhook_deliveries
    set status = 'pending', next_attempt_at = now(), lease_id = null, completed_at = null,
      not_after = now() + p_retry_for
    where id = d.id;
  return d.status;
end
$$;

-- Events to the app's owner ----------------------------------------------------------------------

-- app_grant.created and app_grant.revoked go to the owner's live endpoints, with the user's id
-- and the scopes (and which app, and when): nothing else of the user.
create or replace function public.webhook_event_types() returns text[]
language sql immutable
set search_path = ''
as $$
  select array['api_key.created', 'api_key.revoked', 'api_key.rolled', 'api_key.expiring',
    'api_key.expired', 'vault.created', 'vault.updated', 'vault.deleted', 'rate_limit.exceeded',
    'app_grant.created', 'app_grant.revoked']
$$;

create or replace function public.oauth_grants_webhook_events() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  owner uuid;
  app text;
begin
  select a.owner_id, a.id into owner, app from public.oauth_apps a
    where a.client_id = new.client_id;
  if owner is null then
    return null;
  end if;
  if tg_op = 'INSERT' and new.revoked_at is null then
    perform public.webhook_enqueue(owner, 'live', 'app_grant.created', jsonb_build_object(
      'app_id', app, 'client_id', new.client_id, 'user_id', new.user_id,
      'scopes', to_jsonb(new.scopes), 'granted_at', public.webhook_iso(new.granted_at)));
  elsif tg_op = 'UPDATE' and old.revoked_at is null and new.revoked_at is not null then
    perform public.webhook_enqueue(owner, 'live', 'app_grant.revoked', jsonb_build_object(
      'app_id', app, 'client_id', new.client_id, 'user_id', new.user_id,
      'scopes', to_jsonb(new.scopes), 'granted_at', public.webhook_iso(new.granted_at),
      'revoked_at', public.webhook_iso(new.revoked_at)));
  end if;
  return null;
end
$$;

create trigger oauth_grants_webhook_events
  after insert or update of revoked_at on public.oauth_grants
  for each row execute function public.oauth_grants_webhook_events();

-- Usage and the request log ----------------------------------------------------------------------

-- The request log carries the app in the shape, not in the row: a row stays as it is (0 bytes
-- more; a 9th column would cost 8 bytes a row, its null bitmap pushing the header from 24 to
-- 32 bytes), and an app's few request shapes are stored once each. Shapes without an app keep
-- their ids (the client id joins the hashed text only when there is one).
alter table public.api_request_shapes add column client_id text
  check (client_id ~ '^[A-Za-z0-9._~-]{1,255}$');

drop function public.request_shape_id(text, text, text, text, text);
create or replace function public.request_shape_id(p_method text, p_route text, p_code text,
  p_mode text, p_user_agent text, p_client_id text default null) returns bigint
language sql immutable parallel safe
set search_path = ''
as $$
  select ('x' || pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
    pg_catalog.concat_ws(e'\n', p_method, p_route, coalesce(p_code, ''), coalesce(p_mode, ''),
      coalesce(p_user_agent, ''), p_client_id), 'UTF8')), 'hex'), 16))::bit(64)::bigint
$$;

create or replace view public.api_request_log_entries with (security_invoker = true) as
select l.created_at, l.request_id, coalesce(k.id, public.key_ulid(l.key_id)) as key_id,
  coalesce(l.user_id, k.user_id) as user_id, s.mode, s.method, s.route, l.status, s.code,
  l.latency_ms, l.ip, s.user_agent, s.client_id
from public.api_request_log l
join public.api_request_shapes s on s.id = l.shape
left join public.api_keys k on public.key_uuid(k.id) = l.key_id;
revoke all on public.api_request_log_entries from anon, authenticated;

-- The owner's view gains the app that made each request (their token in an app's hands), and
-- answers an app's token nothing.
drop function public.my_request_log(timestamptz, timestamptz, integer);
create function public.my_request_log(p_from timestamptz, p_to timestamptz,
  p_limit integer default 100)
returns table (created_at timestamptz, request_id uuid, key_id text, mode text, method text,
  route text, status smallint, code text, latency_ms real, ip inet, user_agent text,
  client_id text)
language sql stable security definer
set search_path = ''
as $$
  select l.created_at, l.request_id, public.key_ulid(l.key_id), s.mode, s.method, s.route,
    l.status, s.code, l.latency_ms, l.ip, s.user_agent, s.client_id
  from public.api_request_log l
  join public.api_request_shapes s on s.id = l.shape
  where l.created_at >= greatest(p_from, p_to - interval '1 day') and l.created_at < p_to
    and (select public.request_client_id()) is null
    and (l.user_id = (select auth.uid())
      or l.key_id = any (array(select public.key_uuid(k.id) from public.api_keys k
        where k.user_id = (select auth.uid()))))
  order by l.created_at desc
  limit least(greatest(p_limit, 0), 1000)
$$;
revoke all on function public.my_request_log(timestamptz, timestamptz, integer) from public, anon;
grant execute on function public.my_request_log(timestamptz, timestamptz, integer)
  to authenticated;

-- Requests per app and hour (UTC), across its users, by outcome, as api_usage_hourly has them
-- per key: what GET /api/apps/{id}/usage reads. Kept by the request log's writer in the same
-- statement as the rest (a row per batch's apps and hours, upserted). No foreign key, as for
-- keys' usage: a row written after its app was deleted must not fail its batch.
create table public.api_app_usage_hourly (
  client_id text not null,
  hour timestamptz not null,
  requests integer not null default 0,
  success integer not null default 0,
  rate_limited integer not null default 0,
  client_errors integer not null default 0,
  server_errors integer not null default 0,
  primary key (client_id, hour)
);
alter table public.api_app_usage_hourly enable row level security;
revoke all on public.api_app_usage_hourly from anon, authenticated;
grant select on public.api_app_usage_hourly to authenticated;
create policy "owners read their apps' usage" on public.api_app_usage_hourly
  for select to authenticated using (client_id = any (array(
    select a.client_id from public.oauth_apps a where a.owner_id = (select auth.uid()))));
create policy "app tokens never reach account tables" on public.api_app_usage_hourly
  as restrictive for all to authenticated
  using ((select public.request_client_id()) is null)
  with check ((select public.request_client_id()) is null);
create index api_app_usage_hourly_hour_brin on public.api_app_usage_hourly using brin (hour);

-- Kept as long as keys' usage, by the same retention job.
alter table public.retention_settings drop constraint retention_settings_relation_check;
alter table public.retention_settings add constraint retention_settings_relation_check
  check (relation in ('api_request_log', 'api_refusals', 'api_usage_hourly', 'api_log_batches',
    'api_app_usage_hourly'));
insert into public.retention_settings (relation, keep)
  select 'api_app_usage_hourly', r.keep from public.retention_settings r
  where r.relation = 'api_usage_hourly';

create or replace procedure public.purge_expired(inout deleted bigint default 0,
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
      when 'api_app_usage_hourly' then 'hour'
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
