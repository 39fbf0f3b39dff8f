/**
 * A small pool of pipelined RESP2 connections to one redis-server, built on `Deno.connect`.
 *
 * - Each connection ("session") writes requests in FIFO order and matches replies in the same
 *   order, so many HTTP requests can share one socket without waiting for each other.
 * - A batch of commands handed to {@link RedisPool.pipeline} is written as one contiguous chunk
 *   on one connection. That is what makes `MULTI ... EXEC` safe: nothing can be interleaved.
 * - A session lives exactly as long as its socket. When the socket fails, every command still
 *   waiting on it is rejected and the slot is refilled by a fresh session on the next call.
 * - Every call has a deadline; on expiry the whole session is torn down, because its reply
 *   stream can no longer be trusted to line up with the queue.
 *
 * @module
 */

import {
  concatBytes,
  encodeCommand,
  INCOMPLETE,
  RespError,
  RespParser,
  type RespReply,
} from "./resp.ts";

/** Redis could not be reached, the connection dropped, or a command timed out. */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/** Options for {@link RedisPool}. */
export interface RedisPoolOptions {
  /** `redis://[[user]:password@]host[:port][/db]`; default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Number of TCP connections; default 4. */
  size?: number;
  /** Deadline per call (connect included), in milliseconds; default 2000. */
  commandTimeoutMs?: number;
}

interface Endpoint {
  hostname: string;
  port: number;
  /** AUTH / SELECT commands sent first on every new connection. */
  setup: string[][];
}

interface Pending {
  count: number;
  replies: RespReply[];
  resolve(replies: RespReply[]): void;
  reject(error: Error): void;
}

const errorText = (e: unknown): string => e instanceof Error ? e.message : String(e);

/** Parses a `redis://` URL into host, port and the AUTH/SELECT commands it implies. */
export function parseRedisUrl(url: string): Endpoint {
  const u = new URL(url);
  if (u.protocol !== "redis:") throw new Error(`unsupported Redis URL scheme "${u.protocol}"`);
  const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = u.port ? Number(u.port) : 6379;
  const setup: string[][] = [];
  if (u.password) {
    const password = decodeURIComponent(u.password);
    setup.push(
      u.username ? ["AUTH", decodeURIComponent(u.username), password] : ["AUTH", password],
    );
  }
  const db = u.pathname.replace(/^\//, "");
  if (db && db !== "0") {
    if (!/^\d+$/.test(db)) throw new Error(`invalid Redis database "${db}" in URL`);
    setup.push(["SELECT", db]);
  }
  return { hostname, port, setup };
}

/** One socket's lifetime: connect, pipelined writes, in-order reply matching, teardown. */
class Session {
  readonly closed: Promise<void>;
  readonly #pending: Pending[] = [];
  readonly #parser = new RespParser();
  readonly #abort = new AbortController();
  #outbox: Uint8Array[] = [];
  #conn: Deno.TcpConn | null = null;
  #writing = false;
  #error: Error | null = null;

  constructor(endpoint: Endpoint) {
    if (endpoint.setup.length > 0) {
      // Queued before any caller's command, so it is the first thing written on the socket.
      const setupFailed = (e: Error) => this.destroy(e);
      this.enqueue({
        count: endpoint.setup.length,
        replies: [],
        resolve: (replies) => {
          const bad = replies.find((r) => r instanceof RespError);
          if (bad) {
            setupFailed(new RedisUnavailableError(`connection setup failed: ${bad.message}`));
          }
        },
        reject: () => {},
      }, concatBytes(endpoint.setup.map(encodeCommand)));
    }
    this.closed = this.#run(endpoint);
  }

  get alive(): boolean {
    return this.#error === null;
  }

  /** Commands written but not yet answered (used to pick the least busy connection). */
  get load(): number {
    return this.#pending.length;
  }

  enqueue(pending: Pending, payload: Uint8Array): void {
    if (this.#error) return pending.reject(this.#error);
    this.#pending.push(pending);
    this.#outbox.push(payload);
    void this.#flush();
  }

  /** Closes the socket and fails everything still queued on it. Idempotent. */
  destroy(error: Error): void {
    if (this.#error) return;
    this.#error = error;
    this.#abort.abort(error);
    try {
      this.#conn?.close();
    } catch { /* already closed by the abort signal or the peer */ }
    this.#conn = null;
    this.#outbox = [];
    for (const p of this.#pending.splice(0)) p.reject(error);
  }

  async #run({ hostname, port }: Endpoint): Promise<void> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname, port, signal: this.#abort.signal });
    } catch (e) {
      this.destroy(
        new RedisUnavailableError(`cannot connect to ${hostname}:${port}: ${errorText(e)}`),
      );
      return;
    }
    if (this.#error) {
      conn.close();
      return;
    }
    conn.setNoDelay(true);
    this.#conn = conn;
    void this.#flush();
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) throw new RedisUnavailableError("connection closed by Redis");
        this.#parser.feed(buf.subarray(0, n));
        for (let r = this.#parser.next(); r !== INCOMPLETE; r = this.#parser.next()) {
          this.#deliver(r);
        }
      }
    } catch (e) {
      this.destroy(
        e instanceof RedisUnavailableError
          ? e
          : new RedisUnavailableError(`connection lost: ${errorText(e)}`),
      );
    }
  }

  #deliver(reply: RespReply): void {
    const head = this.#pending[0];
    if (!head) throw new RedisUnavailableError("protocol desync: reply without a request");
    head.replies.push(reply);
    if (head.replies.length === head.count) {
      this.#pending.shift();
      head.resolve(head.replies);
    }
  }

  /** Single writer per socket; whatever queued up meanwhile is coalesced into one write. */
  async #flush(): Promise<void> {
    const conn = this.#conn;
    if (this.#writing || !conn) return;
    this.#writing = true;
    try {
      while (this.#outbox.length > 0 && !this.#error) {
        let chunk = concatBytes(this.#outbox.splice(0));
        while (chunk.length > 0) chunk = chunk.subarray(await conn.write(chunk));
      }
    } catch (e) {
      this.destroy(new RedisUnavailableError(`write failed: ${errorText(e)}`));
    } finally {
      this.#writing = false;
    }
  }
}

/** Pool of pipelined Redis connections; see the module docs for the guarantees. */
export class RedisPool {
  readonly #endpoint: Endpoint;
  readonly #slots: (Session | undefined)[];
  readonly #timeoutMs: number;
  readonly #running = new Set<Promise<void>>();
  #closed = false;

  constructor(options: RedisPoolOptions = {}) {
    this.#endpoint = parseRedisUrl(options.url ?? "redis://127.0.0.1:6379");
    const size = options.size ?? 4;
    if (!Number.isInteger(size) || size < 1) throw new Error("pool size must be >= 1");
    this.#slots = new Array<Session | undefined>(size).fill(undefined);
    this.#timeoutMs = options.commandTimeoutMs ?? 2000;
  }

  /** Runs one command; a Redis error reply is returned as a {@link RespError} value. */
  async command(args: readonly (string | Uint8Array)[]): Promise<RespReply> {
    const [reply] = await this.pipeline([args]);
    return reply ?? null;
  }

  /**
   * Writes all commands in one contiguous chunk on one connection and resolves with one reply
   * per command, in order. Rejects with {@link RedisUnavailableError} on connection failure or
   * timeout (then none of the replies are known).
   */
  pipeline(commands: readonly (readonly (string | Uint8Array)[])[]): Promise<RespReply[]> {
    if (this.#closed) return Promise.reject(new RedisUnavailableError("pool is closed"));
    if (commands.length === 0) return Promise.resolve([]);
    const payload = concatBytes(commands.map(encodeCommand));
    const session = this.#pick();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        session.destroy(new RedisUnavailableError(`command timed out after ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      session.enqueue({
        count: commands.length,
        replies: [],
        resolve: (replies) => {
          clearTimeout(timer);
          resolve(replies);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      }, payload);
    });
  }

  /** Closes every connection and waits until their sockets are released. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#slots) s?.destroy(new RedisUnavailableError("pool is closed"));
    await Promise.all([...this.#running]);
  }

  /** Idle live connection first; else open a new one in a free slot; else the least busy. */
  #pick(): Session {
    let best: Session | undefined;
    let free = -1;
    for (let i = 0; i < this.#slots.length; i++) {
      const s = this.#slots[i];
      if (!s || !s.alive) {
        if (free < 0) free = i;
      } else if (!best || s.load < best.load) {
        best = s;
      }
    }
    if (best && (best.load === 0 || free < 0)) return best;
    const session = new Session(this.#endpoint);
    this.#slots[free] = session;
    this.#running.add(session.closed);
    void session.closed.then(() => this.#running.delete(session.closed));
    return session;
  }
}
