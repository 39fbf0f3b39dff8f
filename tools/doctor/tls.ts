/**
 * TLS to the database for the doctor: why a handshake failed, in words and with the fix, and the
 * certificate chain the server presents, printed with openssl (Deno's TLS gives no access to a
 * peer's certificates, least of all to those of a handshake it refused).
 *
 * @module
 */

/** A cause and its fix. */
export interface Diagnosis {
  cause: string;
  fix: string;
}

const ROOT_FIX = "give the functions the root certificate the chain ends at: Supabase's, from " +
  "Dashboard → Database → Settings → SSL configuration, with " +
  '`supabase secrets set TORVUS_DB_CA_CERT="$(cat prod-ca-2021.crt)"` (the root itself, not ' +
  "the server's certificate), and the same in this shell";

/**
 * The cause of a failed connection of `_shared/db/socket.ts` (its `code` and message, which
 * carries rustls's reason), for a server `host`, with `roots` certificates configured.
 */
export function diagnoseTls(
  error: { code?: string; message: string },
  host: string,
  roots: number,
): Diagnosis {
  const m = error.message;
  const configured = roots === 0
    ? "TORVUS_DB_CA_CERT is not set, so only the runtime's public roots are trusted"
    : `TORVUS_DB_CA_CERT holds ${roots} certificate(s), none of which the chain ends at`;
  if (error.code === "TLS_REFUSED") {
    return {
      cause: "the server does not accept TLS (it answered the SSLRequest with N)",
      fix: "use Supabase's pooler URL (its servers all speak TLS), or a loopback host for a " +
        "local database without TLS",
    };
  }
  if (/UnknownIssuer|unknown ?ca|self[- ]signed/i.test(m)) {
    return { cause: `the chain does not end at a trusted root: ${configured}`, fix: ROOT_FIX };
  }
  if (/NotValidForName|CertNotValidForName|not valid for|hostname mismatch/i.test(m)) {
    return {
      cause: `the server's certificate is not issued for ${host}`,
      fix: "connect with the host name in Supabase's connection string (not an IP address or " +
        "another alias)",
    };
  }
  if (/Expired|NotValidYet/i.test(m)) {
    return {
      cause: "a certificate of the chain is expired or not yet valid (or this clock is wrong)",
      fix: "check this machine's clock; otherwise the server's certificate must be renewed",
    };
  }
  if (/UnsupportedCertVersion/i.test(m)) {
    return {
      cause: "a certificate of the chain is X.509 version 1, which Deno's TLS (rustls) refuses",
      fix: "the server needs version 3 certificates (denodrivers/postgres#376); with Supabase, " +
        "report it to their support",
    };
  }
  if (error.code === "CONNECT_TIMEOUT") {
    return {
      cause: `no TLS session with ${host} in time (${m})`,
      fix: "check the host and port, and that outbound TCP to it is allowed",
    };
  }
  if (/refused/i.test(m)) {
    return {
      cause: `nothing listens at ${host}: connection refused`,
      fix: "check the URL's host and port (the transaction pooler listens on 6543)",
    };
  }
  return { cause: `TLS with ${host} failed: ${m}`, fix: ROOT_FIX };
}

/** Runs openssl with `stdin`; undefined when openssl is not installed. */
async function openssl(args: string[], stdin: string, timeoutMs: number) {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("openssl", {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch {
    return undefined;
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin)).catch(() => {});
  await writer.close().catch(() => {});
  const out = await child.output();
  clearTimeout(timer);
  return new TextDecoder().decode(out.stdout);
}

/** Splits a text into its PEM certificates. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Subject, issuer and expiry of a PEM certificate, one line each. */
async function describe(pem: string): Promise<string[]> {
  const text = await openssl(
    ["x509", "-noout", "-subject", "-issuer", "-enddate", "-nameopt", "oneline"],
    pem,
    5000,
  );
  return (text ?? "").split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

/**
 * The chain `host:port` presents after PostgreSQL's SSLRequest, and the configured roots, as
 * lines to print: each certificate's subject, issuer and expiry.
 */
export async function chainLines(
  host: string,
  port: number,
  roots: readonly string[],
): Promise<string[]> {
  const shown = await openssl(
    [
      "s_client",
      "-connect",
      `${host.includes(":") ? `[${host}]` : host}:${port}`,
      "-starttls",
      "postgres",
      "-servername",
      host,
      "-showcerts",
    ],
    "",
    10_000,
  );
  if (shown === undefined) {
    return ["(openssl is not installed, so the chain cannot be shown: apt-get install openssl)"];
  }
  const chain = pemBlocks(shown);
  const lines = [`chain presented by ${host}:${port} (${chain.length} certificate(s)):`];
  for (const [i, pem] of chain.entries()) {
    lines.push(...(await describe(pem)).map((l, j) => `${j === 0 ? `  ${i}` : "   "} ${l}`));
  }
  if (chain.length === 0) lines.push("  (none: no TLS session could be opened)");
  lines.push(`trusted roots from TORVUS_DB_CA_CERT (${roots.length}):`);
  for (const pem of roots) lines.push(...(await describe(pem)).map((l) => `    ${l}`));
  return lines;
}
