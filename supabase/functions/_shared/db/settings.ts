/**
 * The database connection's settings: what the client needs, declared beside it. `config.ts`
 * parses them from the environment (`parseConfig`, `parseDbConfig`), so the client depends on
 * this shape alone and not on the whole configuration.
 *
 * @module
 */

/** The database connection. */
export interface DbConfig {
  url: string;
  poolMax: number;
  prepare: boolean;
  timeoutMs: number;
  /**
   * Behind a transaction pooler (Supavisor on 6543, PgBouncer): no prepared statements and no
   * startup parameters beyond the application name; settings go in each transaction.
   */
  transactionPooler: boolean;
  /**
   * TLS, from the URL's `sslmode` (none on loopback unless asked for). Whatever the mode, the
   * certificate chain and host name are verified (see socket.ts).
   */
  ssl: false | "require" | "verify-ca" | "verify-full";
  /** Root certificates trusted besides the runtime's (TORVUS_DB_CA_CERT). */
  caCerts: readonly string[];
}
