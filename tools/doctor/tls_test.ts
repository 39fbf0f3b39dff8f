import assert from "node:assert/strict";
import { diagnoseTls, pemBlocks } from "./tls.ts";

const failed = (reason: string) => ({
  code: "TLS_HANDSHAKE_FAILED",
  message: `TLS handshake with the database failed (is its root certificate in ` +
    `TORVUS_DB_CA_CERT?): invalid peer certificate: ${reason}`,
});

Deno.test("each reason rustls gives for a refused chain has its own cause and fix", () => {
  const unknown = diagnoseTls(failed("UnknownIssuer"), "db.example", 1);
  assert.match(unknown.cause, /does not end at a trusted root: TORVUS_DB_CA_CERT holds 1/);
  assert.match(unknown.fix, /TORVUS_DB_CA_CERT/);
  assert.match(diagnoseTls(failed("UnknownIssuer"), "h", 0).cause, /TORVUS_DB_CA_CERT is not set/);
  assert.match(
    diagnoseTls(failed("NotValidForName"), "db.example", 1).cause,
    /not issued for db.example/,
  );
  assert.match(diagnoseTls(failed("Expired"), "h", 1).cause, /expired/);
  assert.match(diagnoseTls(failed("UnsupportedCertVersion"), "h", 1).cause, /version 1/);
  assert.match(
    diagnoseTls({ code: "TLS_REFUSED", message: "no TLS" }, "h", 1).cause,
    /does not accept TLS/,
  );
  assert.match(
    diagnoseTls({ code: "CONNECT_TIMEOUT", message: "timed out after 5000 ms" }, "h", 1).cause,
    /in time/,
  );
  assert.match(
    diagnoseTls({ message: "Connection refused (os error 111)" }, "h", 1).cause,
    /connection refused/,
  );
});

Deno.test("PEM blocks are split out of openssl's output", () => {
  const pem = (n: number) => `-----BEGIN CERTIFICATE-----\nAAA${n}\n-----END CERTIFICATE-----`;
  const text = `CONNECTED\n 0 s:CN = x\n${pem(1)}\n 1 s:CN = y\n${pem(2)}\n---\nDone`;
  assert.deepEqual(pemBlocks(text), [pem(1), pem(2)]);
  assert.deepEqual(pemBlocks("no certificates"), []);
});
