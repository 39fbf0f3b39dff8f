-- A rolled key keeps the tier of the key it replaces.
--
-- The guard trigger gave every key a user creates the account's tier, so rolling a key an
-- operator had moved to another tier (`deno task admin key tier`) silently changed its limits.
-- The IP-allowlist check still uses the account's tier.

create or replace function public.api_keys_guard() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  tier_name text;
  rolled_tier text;
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
    -- A rolled key keeps the tier of the key it replaces (an operator may have set it).
    if new.rolled_from is not null then
      select k.tier_id into rolled_tier
        from public.api_keys k
        where k.id = new.rolled_from and k.user_id = new.user_id;
      if rolled_tier is null then
        raise exception 'rolled_from key not found' using errcode = 'TV404';
      end if;
      new.tier_id := rolled_tier;
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
