/**
 * Certificates for TLS tests: a root CA and a server certificate it signs, made with openssl in a
 * temporary folder that is removed at once. Never imported by a function.
 *
 * @module
 */

/** PEM texts of a test CA, and of a certificate (with its key) the CA signs. */
export interface TestCertificates {
  ca: string;
  cert: string;
  key: string;
}

/** A CA and a certificate for `subjectAltName` (e.g. `DNS:hooks.test` or `IP:127.0.0.1`). */
export async function testCertificates(subjectAltName: string): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "torvus-test-tls-" });
  // Each command is its words, then one last argument that may hold spaces (a subject).
  const run = async (words: string, ...last: string[]) => {
    const args = [...words.split(" "), ...last];
    const out = await new Deno.Command("openssl", { args, cwd: dir, stderr: "piped" }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  };
  const newKey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  try {
    await run(`req -x509 ${newKey} -keyout ca.key -out ca.crt -days 1 -subj`, "/CN=torvus test CA");
    await run(`req ${newKey} -keyout server.key -out server.csr -subj`, "/CN=torvus test server");
    await Deno.writeTextFile(`${dir}/ext.cnf`, `subjectAltName=${subjectAltName}\n`);
    await run(
      "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 " +
        "-extfile ext.cnf",
    );
    const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
    return {
      ca: await read("ca.crt"),
      cert: await read("server.crt"),
      key: await read("server.key"),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
