/**
 * A throwaway PostgreSQL server for tests that stop and start their database (the fault suite):
 * a new data directory made by `initdb` in a temporary folder, a server on a private port as a
 * child process, migrated from the repository's current files, and deleted at the end. Nothing
 * outlives the test, so no earlier run's state can ever stand in for the repository's.
 *
 * As root (CI), the server runs as the `postgres` user, which `setpriv` switches to without a
 * forked shell in between (PostgreSQL refuses to run as root); otherwise as the current user.
 *
 * @module
 */
import { migrateDatabase } from "../../tools/stack/postgres.ts";
import { isAlive, run, StackError, waitUntil } from "../../tools/stack/process.ts";

/** A private server: its URL and how to stop, restart and remove it. */
export interface PrivatePostgres extends AsyncDisposable {
  port: number;
  /** `postgresql://postgres@127.0.0.1:<port>/<database>?sslmode=disable` */
  url: string;
  /** Fast shutdown (SIGINT), waiting for the server to exit. */
  stop(): Promise<void>;
  /** Starts the server again on the same data directory and port. */
  start(): Promise<void>;
  /** Stops the server and deletes its data directory (also at the end of an `await using`). */
  destroy(): Promise<void>;
  /** The root certificate (PEM) the server's TLS certificate chains to, when it serves TLS. */
  certificate: string | undefined;
}

/** The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<v>/bin). */
function binDir(): string {
  const versions: number[] = [];
  try {
    for (const entry of Deno.readDirSync("/usr/lib/postgresql")) {
      if (entry.isDirectory && /^\d+$/.test(entry.name)) versions.push(Number(entry.name));
    }
  } catch {
    // none
  }
  const version = versions.sort((a, b) => b - a)[0];
  if (version === undefined) {
    throw new StackError("PostgreSQL is not installed: run `deno task stack up` first");
  }
  return `/usr/lib/postgresql/${version}/bin`;
}

/** Runs a command as the server's owner. */
function asOwner(cmd: string, args: string[]): [string, string[]] {
  if (Deno.uid() !== 0) return [cmd, args];
  return ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", cmd, ...args]];
}

/**
 * Creates, starts and migrates a private server (`supabase db reset` over bootstrap.sql, as the
 * test profile does). `log` receives one line per step.
 */
export async function startPrivatePostgres(
  options: {
    port: number;
    database: string;
    log: (line: string) => void;
    /**
     * Serve TLS: a certificate for localhost and 127.0.0.1 from an intermediate CA, which a
     * private root signs (the root is `certificate`).
     */
    tls?: boolean;
    /** Apply bootstrap.sql and the migrations (default true). */
    migrate?: boolean;
  },
): Promise<PrivatePostgres> {
  const { port, database, log } = options;
  const bin = binDir();
  const dir = Deno.makeTempDirSync({ prefix: "torvus-pg-" });
  const data = `${dir}/data`;
  if (Deno.uid() === 0) {
    const chown = await run("chown", ["postgres:postgres", dir]);
    if (!chown.success) throw new StackError(`chown postgres ${dir} failed: ${chown.stderr}`);
  }
  const [initCmd, initArgs] = asOwner(`${bin}/initdb`, [
    "-D",
    data,
    "-U",
    "postgres",
    "-A",
    "trust",
    "--no-sync",
    "-E",
    "UTF8",
  ]);
  const init = await run(initCmd, initArgs, { timeoutMs: 60_000 });
  if (!init.success) throw new StackError(`initdb failed: ${init.stderr.trim()}`);
  log(`private PostgreSQL: initdb ${data}`);
  const tlsArgs: string[] = [];
  if (options.tls) {
    // A root CA of its own, an intermediate it signs and a server certificate the intermediate
    // signs; the server presents its certificate and the intermediate, as Supabase's pooler does.
    const caExt =
      "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";
    const serverExt = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n";
    const steps: string[][] = [
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        .concat(["-subj", "/CN=Torvus Test Root CA"])
        .concat(["-keyout", `${data}/ca.key`, "-out", `${data}/ca.crt`]),
      ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Torvus Test Intermediate CA"]
        .concat(["-keyout", `${data}/intermediate.key`, "-out", `${data}/intermediate.csr`]),
      ["x509", "-req", "-in", `${data}/intermediate.csr`, "-CA", `${data}/ca.crt`]
        .concat(["-CAkey", `${data}/ca.key`, "-CAcreateserial", "-days", "1"])
        .concat(["-out", `${data}/intermediate.crt`, "-extfile", `${data}/ca.cnf`]),
      ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"]
        .concat(["-keyout", `${data}/server.key`, "-out", `${data}/server.csr`]),
      ["x509", "-req", "-in", `${data}/server.csr`, "-CA", `${data}/intermediate.crt`]
        .concat(["-CAkey", `${data}/intermediate.key`, "-CAcreateserial", "-days", "1"])
        .concat(["-out", `${data}/leaf.crt`, "-extfile", `${data}/san.cnf`]),
    ];
    Deno.writeTextFileSync(`${dir}/san.cnf`, serverExt);
    Deno.writeTextFileSync(`${dir}/ca.cnf`, caExt);
    for (const file of ["san.cnf", "ca.cnf"]) {
      const [cp, cpArgs] = asOwner("cp", [`${dir}/${file}`, `${data}/${file}`]);
      await run(cp, cpArgs);
    }
    for (const step of steps) {
      const [cmd, args] = asOwner("openssl", step);
      const made = await run(cmd, args, { timeoutMs: 60_000 });
      if (!made.success) throw new StackError(`openssl failed: ${made.stderr.trim()}`);
    }
    // The chain the server sends: its own certificate, then the intermediate.
    const [sh, shArgs] = asOwner("sh", [
      "-c",
      `cat "${data}/leaf.crt" "${data}/intermediate.crt" > "${data}/server.crt"`,
    ]);
    const chained = await run(sh, shArgs);
    if (!chained.success) throw new StackError(`server.crt: ${chained.stderr.trim()}`);
    tlsArgs.push("-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key");
  }

  let child: Deno.ChildProcess | undefined;
  const ready = async () =>
    (await run(`${bin}/pg_isready`, ["-q", "-h", "127.0.0.1", "-p", String(port), "-t", "1"]))
      .success;

  const start = async () => {
    const [cmd, args] = asOwner(`${bin}/postgres`, [
      "-D",
      data,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      // A throwaway server: durability is not what its tests measure.
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      `logging_collector=off`,
      ...tlsArgs,
    ]);
    const logFile = await Deno.open(`${dir}/server.log`, {
      create: true,
      append: true,
      write: true,
    });
    child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Both streams into one file; the pipes are drained so the server never blocks on them.
    void Promise.all(
      [child.stdout, child.stderr].map((s) =>
        s.pipeTo(logFile.writable, { preventClose: true }).catch(() => {})
      ),
    ).finally(() => logFile.close());
    if (!(await waitUntil(ready, 30_000, 100))) {
      throw new StackError(`private PostgreSQL did not start on ${port} (log ${dir}/server.log)`);
    }
  };

  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || !isAlive(running.pid)) return;
    // SIGINT is PostgreSQL's fast shutdown: clients are disconnected, no wait for them.
    running.kill("SIGINT");
    const exited = await Promise.race([
      running.status.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 15_000)),
    ]);
    if (!exited) {
      running.kill("SIGKILL");
      await running.status;
    }
  };

  await start();
  const url = `postgresql://postgres@127.0.0.1:${port}/${database}?sslmode=disable`;
  const admin = `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`;
  const create = await run("psql", [
    "-X",
    "-q",
    "-d",
    admin,
    "-c",
    `create database "${database}"`,
  ]);
  if (!create.success) throw new StackError(`create database failed: ${create.stderr.trim()}`);
  if (options.migrate ?? true) {
    await migrateDatabase(url, "reset", log);
    log(`private PostgreSQL: ${database} on ${port} migrated from the working tree`);
  }

  const destroy = async () => {
    await stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    port,
    url,
    certificate: options.tls ? Deno.readTextFileSync(`${data}/ca.crt`) : undefined,
    stop,
    start,
    destroy,
    [Symbol.asyncDispose]: destroy,
  };
}
