/**
 * Connections to PostgreSQL on Deno's own sockets, for postgres.js's `socket` option: plain TCP,
 * or TLS with Deno's own TLS.
 *
 * Plain TCP goes through the same socket, so the local stack and the tests (no TLS on loopback)
 * exercise the code production runs (TLS to the pooler); measured against postgres.js's default
 * `node:net` socket, the CPU per transaction is the same within noise.
 *
 * PostgreSQL starts TLS inside its protocol: the client opens plain TCP, sends an SSLRequest,
 * reads one byte ('S') and only then starts the handshake. postgres.js does that upgrade with
 * `node:tls`, which on Deno 2.1 (the Edge Runtime's version) never completes for a socket that
 * has already been read from (denoland/deno#30417, fixed in later releases): every connection
 * would time out. Here the exchange runs on `Deno.connect` and `Deno.startTls`, which work on
 * every Deno 2, and the resulting connection is handed to postgres.js as the small Node-style
 * socket it expects.
 *
 * The server's certificate and host name are always verified: against the configured root
 * certificates (Supabase's own CA, from the dashboard) in addition to the runtime's trusted roots.
 * Deno offers no way to skip verification, so `sslmode=require` is verified too.
 *
 * @module
 */
import { EventEmitter } from "node:events";
import { Buffer } from "node:buffer";
import { withTimeout } from "../deadline.ts";

/** PostgreSQL's SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/** Options of {@link denoSocketFactory}. */
export interface SocketOptions {
  /** TLS after PostgreSQL's SSLRequest (required beyond loopback), or plain TCP. */
  tls: boolean;
  /** Extra root certificates (PEM). */
  caCerts?: readonly string[] | undefined;
  /** Bound on connecting, the SSLRequest and the handshake, in ms. */
  timeoutMs: number;
}

/** A connected socket as postgres.js uses one. */
class DenoSocket extends EventEmitter {
  readyState: "open" | "closed" = "open";
  #writing: Promise<unknown> = Promise.resolve();
  #paused: { resume: () => void; wait: Promise<void> } | undefined;

  constructor(readonly conn: Deno.Conn) {
    super();
    void this.#read();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (this.readyState === "open") {
        if (this.#paused) await this.#paused.wait;
        const n = await this.conn.read(buffer);
        if (n === null) break;
        // postgres.js keeps references to the chunks it is given: each gets its own copy.
        this.emit("data", Buffer.from(buffer.subarray(0, n)));
      }
    } catch (error) {
      if (this.readyState === "open") {
        this.emit("error", error);
        return this.#close(true);
      }
    }
    this.#close();
  }

  write(chunk: Uint8Array, callback?: (error?: Error) => void): boolean {
    const data = chunk.slice();
    this.#writing = this.#writing.then(async () => {
      try {
        let written = 0;
        while (written < data.length) written += await this.conn.write(data.subarray(written));
        callback?.();
      } catch (error) {
        callback?.(error as Error);
        if (this.readyState === "open") this.emit("error", error);
        this.#close(true);
      }
    });
    // Writes are queued without a bound; postgres.js already bounds its pipeline.
    return true;
  }

  end(chunk?: Uint8Array): void {
    if (chunk) this.write(chunk);
    void this.#writing.then(() => this.#close());
  }

  destroy(): void {
    this.#close();
  }

  pause(): void {
    if (this.#paused) return;
    let resume!: () => void;
    const wait = new Promise<void>((resolve) => (resume = resolve));
    this.#paused = { resume, wait };
  }

  resume(): void {
    const paused = this.#paused;
    this.#paused = undefined;
    paused?.resume();
  }

  setKeepAlive(): void {
    // The pooler and PostgreSQL close idle connections themselves (idle_timeout is shorter).
  }

  #close(hadError = false): void {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    this.resume();
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    this.emit("close", hadError);
  }
}

/**
 * A connection that could not be made, as `node:net` reports one: an `error`, then a `close`
 * with `hadError`, after postgres.js has attached its listeners. So postgres.js takes its usual
 * path (the waiting queries fail, the connection goes back to its pool and is made again by a
 * later query) instead of holding a connection that never connects.
 */
class FailedSocket extends EventEmitter {
  readyState = "closed" as const;

  constructor(error: unknown) {
    super();
    setTimeout(() => {
      this.emit("error", error);
      this.emit("close", true);
    }, 0);
  }

  write(_chunk: Uint8Array, callback?: (error?: Error) => void): boolean {
    callback?.(new Error("the connection to the database was not made"));
    return false;
  }
  end(): void {}
  destroy(): void {}
  pause(): void {}
  resume(): void {}
  setKeepAlive(): void {}
}

/** Reads exactly one byte. */
async function readByte(conn: Deno.Conn): Promise<number | undefined> {
  const one = new Uint8Array(1);
  const n = await conn.read(one);
  return n === 1 ? one[0] : undefined;
}

/**
 * postgres.js's `socket` option: connects to the first host and, with `tls`, asks for TLS and
 * completes the handshake, so postgres.js (told `ssl: false`) speaks to a ready socket.
 */
export function denoSocketFactory(
  options: SocketOptions,
): (pg: { host: string[]; port: number[] }) => Promise<DenoSocket | FailedSocket> {
  const caCerts = options.caCerts && options.caCerts.length > 0 ? [...options.caCerts] : undefined;
  return async (pg) => {
    const hostname = pg.host[0] ?? "localhost";
    const port = pg.port[0] ?? 5432;
    let conn: Deno.Conn | undefined;
    const upgrade = async (): Promise<Deno.Conn> => {
      conn = await Deno.connect({ hostname, port });
      if (!options.tls) return conn;
      let written = 0;
      while (written < SSL_REQUEST.length) {
        written += await conn.write(SSL_REQUEST.subarray(written));
      }
      const answer = await readByte(conn);
      if (answer !== 0x53) {
        const error = new Error("the database server does not accept TLS, which is required");
        (error as { code?: string }).code = "TLS_REFUSED";
        throw error;
      }
      const tls = await Deno.startTls(conn as Deno.TcpConn, {
        hostname,
        ...(caCerts ? { caCerts } : {}),
      });
      try {
        await tls.handshake();
      } catch (cause) {
        tls.close();
        const error = new Error(
          `TLS handshake with the database failed (is its root certificate in ` +
            `TORVUS_DB_CA_CERT?): ${cause instanceof Error ? cause.message : String(cause)}`,
        );
        (error as { code?: string }).code = "TLS_HANDSHAKE_FAILED";
        throw error;
      }
      return tls;
    };
    try {
      const ms = options.timeoutMs;
      const upgraded = await withTimeout(upgrade(), ms, "connect to the database", () => {
        conn?.close();
        const error = new Error(`connect to the database timed out after ${ms} ms`);
        return Object.assign(error, { code: "CONNECT_TIMEOUT" });
      });
      return new DenoSocket(upgraded);
    } catch (error) {
      try {
        conn?.close();
      } catch {
        // already closed
      }
      return new FailedSocket(error);
    }
  };
}

/** Splits a PEM bundle into its certificates. */
export function pemCertificates(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
