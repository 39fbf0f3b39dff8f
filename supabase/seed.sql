-- Local seed data, applied by `supabase db reset` after the migrations (never in production).
-- Tiers are reference data and live in the migration; users, keys and vaults are made with
-- `deno task admin`, so that no fixed credential ever exists.
select 1;
