/**
 * The key store over `public.verify_api_key`: one round trip returns the key and its tier
 * limits, through a SECURITY DEFINER function, so the service needs no grant on the table.
 *
 * @module
 */
import type { KeyStore, StoredKey } from "../auth/api_key.ts";
import { onConnection, type Sql } from "./client.ts";

interface Row {
  id: string;
  user_id: string;
  name: string;
  mode: StoredKey["mode"];
  status: StoredKey["status"];
  scopes: StoredKey["scopes"];
  expires_at: Date | null;
  ip_allowlist: string[] | null;
  tier_id: string;
  tier_name: string;
  requests_per_minute: number;
  requests_per_day: number;
}

/** A {@link KeyStore} backed by PostgreSQL. */
export function createSqlKeyStore(sql: Sql): KeyStore {
  return {
    async findByHash(hash) {
      const rows = await onConnection(
        sql,
        (c) => c<Row[]>`select * from public.verify_api_key(${hash as never})`,
      );
      const row = rows[0];
      if (!row) return null;
      return {
        id: row.id,
        userId: row.user_id,
        name: row.name,
        mode: row.mode,
        status: row.status,
        scopes: row.scopes,
        expiresAt: row.expires_at,
        ipAllowlist: row.ip_allowlist,
        tierId: row.tier_id,
        tierName: row.tier_name,
        perMinute: row.requests_per_minute,
        perDay: row.requests_per_day,
      };
    },
  };
}
