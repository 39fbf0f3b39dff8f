/**
 * The grant store over `public.verify_oauth_grant`: one round trip returns a user's active grant
 * to an app with its effective scopes and the app's tier limits, through a SECURITY DEFINER
 * function callable by the service role only.
 *
 * @module
 */
import type { GrantStore } from "../auth/app_grant.ts";
import type { AppScope } from "../auth/principal.ts";
import { onConnection, type Sql } from "./client.ts";

interface Row {
  grant_id: string;
  app_id: string;
  scopes: AppScope[];
  tier_id: string;
  tier_name: string;
  requests_per_minute: number;
  requests_per_day: number;
}

/** A {@link GrantStore} backed by PostgreSQL. */
export function createSqlGrantStore(sql: Sql): GrantStore {
  return {
    async find(userId, clientId) {
      const rows = await onConnection(
        sql,
        (c) =>
          c<Row[]>`select grant_id, app_id, scopes, tier_id, tier_name, requests_per_minute,
            requests_per_day from public.verify_oauth_grant(${userId}, ${clientId})`,
      );
      const row = rows[0];
      if (!row) return null;
      return {
        clientId,
        grantId: row.grant_id,
        appId: row.app_id,
        scopes: row.scopes,
        tierId: row.tier_id,
        tierName: row.tier_name,
        limits: { perMinute: row.requests_per_minute, perDay: row.requests_per_day },
      };
    },
  };
}
