/**
 * TLS to the database as the functions connect beyond loopback, on Deno 2.1 (the Edge Runtime's
 * version, whose `node:tls` cannot upgrade PostgreSQL's connection): a private PostgreSQL serving
 * TLS with a self-signed certificate, reached with the functions' own pool (`createSql`, through
 * db/socket.ts). The session is encrypted when the certificate's root is given
 * (TORVUS_DB_CA_CERT), and refused, as unavailable, when it is not trusted.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startPrivatePostgres } from "./_support/private_postgres.ts";
import { EDGE_DENO, EDGE_DENO_ENV } from "../tools/runtime/edge_deno.ts";

const PORT = 5491;
const CLIENT = new URL("../supabase/functions/_shared/db/client.ts", import.meta.url).href;

/** Runs a query through `createSql` on Deno 2.1; returns what the child printed last. */
async function probe(url: string, caCerts: string[]): Promise<Record<string, unknown>> {
  const file = Deno.makeTempFileSync({ suffix: ".ts" });
  Deno.writeTextFileSync(
    file,
    `import { createSql, isDatabaseUnavailable } from ${JSON.stringify(CLIENT)};
    const sql = createSql({
      url: ${JSON.stringify(url)}, poolMax: 1, prepare: false, timeoutMs: 3000,
      transactionPooler: true, ssl: "require", caCerts: ${JSON.stringify(caCerts)},
    });
    try {
      const [row] = await sql\`select ssl, version from pg_stat_ssl where pid = pg_backend_pid()\`;
      console.log(JSON.stringify(row));
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, unavailable: isDatabaseUnavailable(error) }));
    }
    await sql.end({ timeout: 1 });`,
  );
  try {
    const out = await new Deno.Command(EDGE_DENO, {
      args: [
        "run",
        "--no-lock",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        "-A",
        file,
      ],
      env: EDGE_DENO_ENV,
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(stdout.split("\n").pop()!);
  } finally {
    Deno.removeSync(file);
  }
}

Deno.test({
  name: "the functions' pool speaks TLS to PostgreSQL on Deno 2.1, and verifies the server",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using pg = await startPrivatePostgres({
      port: PORT,
      database: "tls",
      log: () => {},
      tls: true,
      migrate: false,
    });
    const url = pg.url.replace("sslmode=disable", "sslmode=require");
    const encrypted = await probe(url, [pg.certificate!]);
    assert.equal(encrypted.ssl, true, JSON.stringify(encrypted));
    assert.match(String(encrypted.version), /^TLSv1\.[23]$/);
    // A server whose certificate chains to no trusted root is not spoken to.
    const untrusted = await probe(url, []);
    assert.deepEqual(untrusted, { code: "TLS_HANDSHAKE_FAILED", unavailable: true });
  },
});
