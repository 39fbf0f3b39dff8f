/**
 * A small pool of pipelined RESP2 connections to one redis-server (sessions, see session.ts).
 *
 * - A batch of commands handed to {@link RedisPool.pipeline} is written as one contiguous chunk
 *   on one connection. That is what makes `MULTI ... EXEC` safe: nothing can be interleaved.
 * - A dead session's slot is refilled by a fresh session on the next call.
 * - Calls made in the same event-loop turn go to the same connection, so they share one write
 *   and one reply read: per-call syscalls and wake-ups cost more than Redis itself. The first
 *   call of a turn picks: an idle connection first, else a new one in a free slot, else the
 *   least busy. A call that may block (BLPOP, ...) ends the turn's sharing, so nothing made
 *   later waits behind it on a connection it holds.
 *
 * @module
 */

import type { RespReply } from "./resp.ts";
import { type Endpoint, RedisUnavailableError, Session } from "./session.ts";

export { RedisUnavailableError } from "./session.ts";

/** Options for {@link RedisPool}. */
export interface RedisPoolOptions {
  /** `redis://[[user]:password@]host[:port][/db]`; default `redis://127.0.0.1:6379`. */
  url?: string | undefined;
  /** Number of TCP connections; default 4. */
  size?: number | undefined;
  /** Deadline per call (connect included), in milliseconds; default 2000. */
  commandTimeoutMs?: number | undefined;
}

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

/** Commands that can hold a connection for a while (BLPOP ..., XREAD ... BLOCK, WAIT). */
const BLOCKING = new Set(
  ("BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP XREAD XREADGROUP WAIT " +
    "WAITAOF").split(" "),
);

function mayBlock(commands: readonly (readonly (string | Uint8Array)[])[]): boolean {
  for (const [name] of commands) {
    if (typeof name !== "string") continue;
    // Cheap pre-filter on the first letter (b, x or w, any case) before the set lookup.
    const first = name.charCodeAt(0) | 0x20;
    const candidate = first === 0x62 || first === 0x78 || first === 0x77;
    if (candidate && BLOCKING.has(name.toUpperCase())) return true;
  }
  return false;
}

/** Pool of pipelined Redis connections; see the module docs for the guarantees. */
export class RedisPool {
  readonly #endpoint: Endpoint;
  readonly #slots: (Session | undefined)[];
  readonly #timeoutMs: number;
  readonly #running = new Set<Promise<void>>();
  /** The connection picked in the current event-loop turn. */
  #current: Session | undefined;
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
    // Calls of one event-loop turn join one connection (see the module docs).
    let session = this.#current;
    if (!session?.batching) session = this.#current = this.#pick();
    const deadline = performance.now() + this.#timeoutMs;
    const done = new Promise<RespReply[]>((resolve, reject) => {
      session.enqueue(commands, { count: commands.length, deadline, replies: [], resolve, reject });
    });
    // Later calls must not queue up behind a command that may block the connection.
    if (mayBlock(commands)) this.#current = undefined;
    return done;
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
    const session = new Session(this.#endpoint, this.#timeoutMs);
    this.#slots[free] = session;
    this.#running.add(session.closed);
    void session.closed.then(() => this.#running.delete(session.closed));
    return session;
  }
}
