-- Webhooks (issue 15): endpoints, an outbox of events, and one delivery per event and endpoint.
--
-- Events are written by triggers in the transaction of the change that causes them (the outbox):
-- a vault or key changed through the API, PostgREST or an operator's SQL produces its event, and
-- no caller can write an event of their own. Events a change does not cause (rate limits, key
-- expiry found by the sweep, test events) go through webhook_enqueue, which only the service
-- connection and these definer functions may call. The dispatcher (TypeScript,
-- supabase/functions/_shared/webhooks/) claims due deliveries with a lease and records each
-- attempt; the sweep (webhook_sweep) finds expiring keys and gives up on deliveries that cannot
-- be sent.
--
-- Endpoints' secrets are never readable by the API roles: they are written once (create, rotate)
-- and read by the dispatcher over the service connection only.

-- An instant as the API shows it: ISO 8601 in UTC with milliseconds, as JavaScript's
-- Date.prototype.toISOString writes it (the event's data must equal the API's answers).
create or replace function public.webhook_iso(t timestamptz) returns text
language sql stable
set search_path = ''
as $$
  select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The event types endpoints may subscribe to (webhook.test is sent on request, to one endpoint).
create or replace function public.webhook_event_types() returns text[]
language sql immutable
set search_path = ''
as $$
  select array['api_key.created', 'api_key.revoked', 'api_key.rolled', 'api_key.expiring',
    'api_key.expired', 'vault.created', 'vault.updated', 'vault.deleted', 'rate_limit.exceeded']
$$;

-- Endpoints -------------------------------------------------------------------------------------

create table public.webhook_endpoints (
  id text primary key default public.ulid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  mode text not null default 'live' check (mode in ('live', 'test')),
  url text not null check (char_length(url) <= 2048 and url ~ '^https?://[^\s]+$'),
  description text check (char_length(description) <= 500),
  events text[] not null
    check (cardinality(events) between 1 and 20 and events <@ public.webhook_event_types()),
  status text not null default 'enabled' check (status in ('enabled', 'disabled')),
  disabled_reason text check (char_length(disabled_reason) <= 1000),
  disabled_at timestamptz,
  -- The first failed attempt since the last success: an endpoint failing for days is disabled.
  failing_since timestamptz,
  secret text not null check (secret ~ '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$'),
  -- After a rotation the old secret keeps signing (both signatures are sent) until it expires.
  previous_secret text check (previous_secret ~ '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$'),
  previous_secret_expires_at timestamptz,
  secret_rotated_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Live data only ever travels over TLS; test endpoints may be plain http (local receivers).
  constraint webhook_endpoints_live_https check (mode = 'test' or url ~ '^https://')
);
create index webhook_endpoints_owner_idx on public.webhook_endpoints (user_id, mode, created_at desc);

alter table public.webhook_endpoints enable row level security;
revoke all on public.webhook_endpoints from anon, authenticated;
-- Everything but the secrets.
grant select (id, user_id, mode, url, description, events, status, disabled_reason, disabled_at,
  failing_since, previous_secret_expires_at, secret_rotated_at, created_at, updated_at)
  on public.webhook_endpoints to authenticated;
grant insert (mode, url, description, events, secret) on public.webhook_endpoints to authenticated;
grant update (url, description, events, status) on public.webhook_endpoints to authenticated;
grant delete on public.webhook_endpoints to authenticated;

create policy "users read their own webhook endpoints" on public.webhook_endpoints
  for select to authenticated using (user_id = (select auth.uid()));
create policy "users create their own webhook endpoints" on public.webhook_endpoints
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "users change their own webhook endpoints" on public.webhook_endpoints
  for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "users delete their own webhook endpoints" on public.webhook_endpoints
  for delete to authenticated using (user_id = (select auth.uid()));

-- Enabling an endpoint clears why it was disabled and its failure streak; disabling it without a
-- reason (its owner did) says so.
create or replace function public.webhook_endpoints_guard() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and new.status is distinct from old.status then
    if new.status = 'enabled' then
      new.disabled_reason := null;
      new.disabled_at := null;
      new.failing_since := null;
    else
      new.disabled_reason := coalesce(new.disabled_reason, 'Disabled by its owner');
      new.disabled_at := now();
    end if;
  end if;
  if tg_op = 'INSERT' then
    new.created_at := now();
  end if;
  new.updated_at := now();
  return new;
end
$$;

create trigger webhook_endpoints_guard
  before insert or update on public.webhook_endpoints
  for each row execute function public.webhook_endpoints_guard();

-- A new secret for one of the caller's endpoints; the current one keeps signing for p_grace
-- seconds (0: stops now). False when the caller has no such endpoint.
create or replace function public.webhook_rotate_secret(p_id text, p_secret text, p_grace integer)
returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.webhook_endpoints
    set previous_secret = case when p_grace > 0 then secret end,
      previous_secret_expires_at = case when p_grace > 0 then now() + make_interval(secs => p_grace) end,
      secret = p_secret,
      secret_rotated_at = now()
    where id = p_id and user_id = (select auth.uid());
  return found;
end
$$;
revoke all on function public.webhook_rotate_secret(text, text, integer) from public, anon;
grant execute on function public.webhook_rotate_secret(text, text, integer) to authenticated;

-- Events (the outbox) and deliveries -----------------------------------------------------------

create table public.webhook_events (
  id text primary key default public.ulid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  mode text not null check (mode in ('live', 'test')),
  type text not null,
  -- The body every delivery sends: {"type", "timestamp", "data"}.
  payload jsonb not null,
  created_at timestamptz not null default now()
);
create index webhook_events_created_idx on public.webhook_events (created_at);

alter table public.webhook_events enable row level security;
revoke all on public.webhook_events from anon, authenticated;
grant select on public.webhook_events to authenticated;
create policy "users read their own webhook events" on public.webhook_events
  for select to authenticated using (user_id = (select auth.uid()));

create table public.webhook_deliveries (
  id text primary key default public.ulid(),
  event_id text not null references public.webhook_events (id) on delete cascade,
  endpoint_id text not null references public.webhook_endpoints (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
  attempts integer not null default 0,
  -- When it is due; while an attempt is in flight, when its lease ends (a dispatcher that died
  -- mid-attempt leaves it to be claimed again then: at least once).
  next_attempt_at timestamptz not null default now(),
  -- The lease of the attempt in flight: only its holder records the outcome.
  lease_id uuid,
  -- Retries stop after this; null: the creation time plus the retry period.
  not_after timestamptz,
  last_attempt_at timestamptz,
  response_status smallint,
  response_body text check (char_length(response_body) <= 1024),
  last_error text check (char_length(last_error) <= 1000),
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  unique (event_id, endpoint_id)
);
create index webhook_deliveries_due_idx on public.webhook_deliveries (next_attempt_at)
  where status = 'pending';
create index webhook_deliveries_endpoint_idx on public.webhook_deliveries
  (endpoint_id, created_at desc, id desc);

alter table public.webhook_deliveries enable row level security;
revoke all on public.webhook_deliveries from anon, authenticated;
grant select (id, event_id, endpoint_id, user_id, status, attempts, next_attempt_at,
  last_attempt_at, response_status, response_body, last_error, completed_at, created_at)
  on public.webhook_deliveries to authenticated;
create policy "users read their own webhook deliveries" on public.webhook_deliveries
  for select to authenticated using (user_id = (select auth.uid()));

-- Writes an event of a user and mode, with a delivery to each enabled endpoint subscribed to its
-- type (or to p_endpoint alone, for webhook.test). No endpoint, no event: returns null.
create or replace function public.webhook_enqueue(
  p_user uuid,
  p_mode text,
  p_type text,
  p_data jsonb,
  p_endpoint text default null
) returns text
language sql security definer
set search_path = ''
as $$
  with targets as (
    select e.id from public.webhook_endpoints e
    where e.user_id = p_user and e.mode = p_mode and e.status = 'enabled'
      and (case when p_endpoint is null then p_type = any (e.events) else e.id = p_endpoint end)
  ), event as (
    insert into public.webhook_events (user_id, mode, type, payload)
      select p_user, p_mode, p_type,
        jsonb_build_object('type', p_type, 'timestamp', public.webhook_iso(now()), 'data', p_data)
      where exists (select 1 from targets)
      returning id
  ), deliveries as (
    insert into public.webhook_deliveries (event_id, endpoint_id, user_id)
      select event.id, targets.id, p_user from event, targets
  )
  select id from event
$$;
revoke all on function public.webhook_enqueue(uuid, text, text, jsonb, text)
  from public, anon, authenticated;

-- A webhook.test event to one of the caller's endpoints; null when the caller has no such
-- enabled endpoint.
create or replace function public.webhook_send_test(p_endpoint text) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  ep public.webhook_endpoints;
begin
  select * into ep from public.webhook_endpoints
    where id = p_endpoint and user_id = (select auth.uid()) and status = 'enabled';
  if not found then
    return null;
  end if;
  return public.webhook_enqueue(ep.user_id, ep.mode, 'webhook.test',
    jsonb_build_object('endpoint_id', ep.id, 'message', 'A test event from Torvus'), ep.id);
end
$$;
revoke all on function public.webhook_send_test(text) from public, anon;
grant execute on function public.webhook_send_test(text) to authenticated;

-- Makes one of the caller's deliveries due now. Returns its status before ('in_flight' while an
-- attempt holds its lease), or null when the caller has no such delivery on that endpoint.
-- A retried delivery may be retried for p_retry_for more.
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
revoke all on function public.webhook_retry_delivery(text, text, interval) from public, anon;
grant execute on function public.webhook_retry_delivery(text, text, interval) to authenticated;

-- Resources as the API shows them ---------------------------------------------------------------
-- The same fields, formats and derived status as the handlers' present() (vaults/handler.ts,
-- api-keys/handler.ts); tests/webhooks_test.ts holds events against the API's answers.

create or replace function public.webhook_vault_json(v public.vaults) returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', v.id, 'name', v.name, 'description', v.description, 'tags', to_jsonb(v.tags),
    'status', v.status, 'mode', v.mode,
    'created_at', public.webhook_iso(v.created_at), 'updated_at', public.webhook_iso(v.updated_at))
$$;

create or replace function public.webhook_api_key_json(k public.api_keys) returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', k.id, 'name', k.name, 'mode', k.mode, 'start', k.start, 'scopes', to_jsonb(k.scopes),
    'status', case when k.status = 'active' and k.expires_at <= now() then 'expired'
      else k.status end,
    'tier_id', k.tier_id,
    'ip_allowlist', to_jsonb(k.ip_allowlist::text[]),
    'created_at', public.webhook_iso(k.created_at),
    'expires_at', public.webhook_iso(k.expires_at),
    'last_used_at', public.webhook_iso(k.last_used_at),
    'revoked_at', public.webhook_iso(k.revoked_at),
    'rolled_from', k.rolled_from)
$$;

-- The outbox's writers ---------------------------------------------------------------------------

create or replace function public.vaults_webhook_events() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  kind text;
begin
  if tg_op = 'INSERT' then
    kind := 'vault.created';
  elsif old.status = 'active' and new.status = 'inactive' then
    kind := 'vault.deleted';
  elsif (old.name, old.description, old.tags, old.status)
    is distinct from (new.name, new.description, new.tags, new.status) then
    kind := 'vault.updated';
  else
    return null;
  end if;
  perform public.webhook_enqueue(new.user_id, new.mode, kind, public.webhook_vault_json(new));
  return null;
end
$$;

create trigger vaults_webhook_events
  after insert or update on public.vaults
  for each row execute function public.vaults_webhook_events();

create or replace function public.api_keys_webhook_events() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' and new.rolled_from is null then
    perform public.webhook_enqueue(new.user_id, new.mode, 'api_key.created',
      public.webhook_api_key_json(new));
  elsif tg_op = 'UPDATE' and new.status = 'revoked' and old.status <> 'revoked' then
    perform public.webhook_enqueue(new.user_id, new.mode, 'api_key.revoked',
      public.webhook_api_key_json(new));
  end if;
  return null;
end
$$;

create trigger api_keys_webhook_events
  after insert or update of status on public.api_keys
  for each row execute function public.api_keys_webhook_events();

-- A roll inserts the new key, then shortens the old one's expiry: the event is written at commit,
-- when both rows are final, with the old key as `previous_key` (as the roll's answer has it).
create or replace function public.api_keys_webhook_rolled() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  created public.api_keys;
  previous public.api_keys;
begin
  select * into created from public.api_keys where id = new.id;
  select * into previous from public.api_keys where id = new.rolled_from;
  if created.id is null or previous.id is null then
    return null;
  end if;
  perform public.webhook_enqueue(created.user_id, created.mode, 'api_key.rolled',
    public.webhook_api_key_json(created)
      || jsonb_build_object('previous_key', public.webhook_api_key_json(previous)));
  return null;
end
$$;

create constraint trigger api_keys_webhook_rolled
  after insert on public.api_keys
  deferrable initially deferred
  for each row when (new.rolled_from is not null)
  execute function public.api_keys_webhook_rolled();

-- The sweep ---------------------------------------------------------------------------------------

-- Which expiring and expired keys have had their event (so each is announced once).
create table public.webhook_key_notices (
  key_id text not null references public.api_keys (id) on delete cascade,
  kind text not null check (kind in ('expiring', 'expired')),
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  primary key (key_id, kind, expires_at)
);
alter table public.webhook_key_notices enable row level security;
revoke all on public.webhook_key_notices from anon, authenticated;

create index api_keys_expires_at_idx on public.api_keys (expires_at) where expires_at is not null;

-- The scheduled part of delivery, run by the webhooks function's sweep before it sends what is
-- due: keys expiring within 7 days and keys that expired (within the last 7 days) are announced
-- once each; deliveries that cannot be sent (their endpoint is disabled) are given up after
-- their retry period; events older than 30 days with nothing left to send are deleted.
create or replace function public.webhook_sweep(p_retry_for interval) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  expiring integer;
  expired integer;
  abandoned integer;
  removed integer;
begin
  with due as (
    select k as key from public.api_keys k
    where k.status = 'active' and k.expires_at > now() and k.expires_at <= now() + interval '7 days'
      and not exists (select 1 from public.webhook_key_notices n
        where n.key_id = k.id and n.kind = 'expiring' and n.expires_at = k.expires_at)
    order by k.expires_at
    limit 500
  ), noted as (
    insert into public.webhook_key_notices (key_id, kind, expires_at)
      select (key).id, 'expiring', (key).expires_at from due
      on conflict do nothing
      returning key_id
  )
  select count(public.webhook_enqueue((d.key).user_id, (d.key).mode, 'api_key.expiring',
      public.webhook_api_key_json(d.key)))
    into expiring
    from due d join noted n on n.key_id = (d.key).id;

  -- Expired by its date, or set to expired by an operator (then it may have no date).
  with due as (
    select k as key from public.api_keys k
    where (
        (k.status = 'active' and k.expires_at <= now() and k.expires_at > now() - interval '7 days')
        or (k.status = 'expired' and k.updated_at > now() - interval '7 days')
      )
      and not exists (select 1 from public.webhook_key_notices n
        where n.key_id = k.id and n.kind = 'expired')
    limit 500
  ), noted as (
    insert into public.webhook_key_notices (key_id, kind, expires_at)
      select (key).id, 'expired', coalesce((key).expires_at, 'infinity') from due
      on conflict do nothing
      returning key_id
  )
  select count(public.webhook_enqueue((d.key).user_id, (d.key).mode, 'api_key.expired',
      public.webhook_api_key_json(d.key)))
    into expired
    from due d join noted n on n.key_id = (d.key).id;

  update public.webhook_deliveries d
    set status = 'failed', completed_at = now(), lease_id = null,
      last_error = 'Not sent: the endpoint is disabled'
    where d.status = 'pending' and d.next_attempt_at <= now()
      and coalesce(d.not_after, d.created_at + p_retry_for) < now()
      and not exists (select 1 from public.webhook_endpoints e
        where e.id = d.endpoint_id and e.status = 'enabled');
  get diagnostics abandoned = row_count;

  delete from public.webhook_events ev
    where ev.id in (
      select e.id from public.webhook_events e
      where e.created_at < now() - interval '30 days'
        and not exists (select 1 from public.webhook_deliveries d
          where d.event_id = e.id and d.status = 'pending')
      order by e.created_at
      limit 1000
    );
  get diagnostics removed = row_count;

  return jsonb_build_object('expiring', expiring, 'expired', expired, 'abandoned', abandoned,
    'removed', removed);
end
$$;
revoke all on function public.webhook_sweep(interval) from public, anon, authenticated;
