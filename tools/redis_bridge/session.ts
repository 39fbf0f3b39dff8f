/**
 * One pipelined RESP2 connection to redis-server ("session"), built on `Deno.connect`; the
 * pool (pool.ts) owns a few of them.
 *
 * - Requests are written in FIFO order and replies matched in the same order, so many HTTP
 *   requests share one socket without waiting for each other.
 * - A session lives exactly as long as its socket. When the socket fails, every command still
 *   waiting on it is rejected.
 * - Every call has a deadline; on expiry the whole session is torn down, because its reply
 *   stream can no longer be trusted to line up with the queue. All calls share one timeout
 *   and replies come in order, so the oldest call always expires first: one timer per
 *   session, aimed at the oldest call's deadline, does the work of one timer per call.
 * - Commands are encoded straight into an output buffer and written once per event-loop turn
 *   (`setImmediate`), so the calls of one turn share one write (and Redis answers them in one
 *   read). What queues up while a write is in flight goes in the next one.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { INCOMPLETE, RespError, RespParser, type RespReply, RespWriter } from "./resp.ts";

/** Redis could not be reached, the connection dropped, or a command timed out. */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/** Where a session connects to, and what it sends first. */
export interface Endpoint {
  hostname: string;
  port: number;
  /** AUTH / SELECT commands sent first on every new connection. */
  setup: string[][];
}

/** One call: `count` replies expected, collected into `replies`. */
export interface Pending {
  count: number;
  /** `performance.now()` after which the session is torn down if this is still unanswered. */
  deadline: number;
  replies: RespReply[];
  resolve(replies: RespReply[]): void;
  reject(error: Error): void;
}

const errorText = (e: unknown): string => e instanceof Error ? e.message : String(e);

/** One socket's lifetime: connect, pipelined writes, in-order reply matching, teardown. */
export class Session {
  /** Settles once the socket is gone (never rejects). */
  readonly closed: Promise<void>;
  readonly #pending: Pending[] = [];
  readonly #parser = new RespParser();
  readonly #abort = new AbortController();
  readonly #timeoutMs: number;
  /** Commands not yet handed to the socket; swapped with #spare while a write is in flight. */
  #outbox = new RespWriter();
  #spare = new RespWriter();
  #conn: Deno.TcpConn | null = null;
  #writing = false;
  #flushQueued = false;
  #error: Error | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Starts connecting at once; calls can be enqueued right away. */
  constructor(endpoint: Endpoint, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    if (endpoint.setup.length > 0) {
      // Queued before any caller's command, so it is the first thing written on the socket.
      const setupFailed = (e: Error) => this.destroy(e);
      this.enqueue(endpoint.setup, {
        count: endpoint.setup.length,
        deadline: performance.now() + timeoutMs,
        replies: [],
        resolve: (replies) => {
          const bad = replies.find((r) => r instanceof RespError);
          if (bad) {
            setupFailed(new RedisUnavailableError(`connection setup failed: ${bad.message}`));
          }
        },
        reject: () => {},
      });
    }
    this.closed = this.#run(endpoint);
  }

  /** False once the socket failed or the session was destroyed. */
  get alive(): boolean {
    return this.#error === null;
  }

  /** Whether commands enqueued now still go out in the write already scheduled. */
  get batching(): boolean {
    return this.#flushQueued && this.#error === null;
  }

  /** Commands written but not yet answered (used to pick the least busy connection). */
  get load(): number {
    return this.#pending.length;
  }

  /**
   * Encodes `commands` as one contiguous chunk and sends it as soon as the socket allows.
   * Throws, queuing none of them, if an argument is neither a string nor bytes.
   */
  enqueue(commands: readonly (readonly (string | Uint8Array)[])[], pending: Pending): void {
    if (this.#error) return pending.reject(this.#error);
    const mark = this.#outbox.length;
    try {
      for (const args of commands) this.#outbox.command(args);
    } catch (e) {
      this.#outbox.truncate(mark); // all of the batch or none of it
      throw e;
    }
    this.#pending.push(pending);
    if (this.#timer === undefined) this.#armTimer();
    // Flush once the event loop has run everything that became ready in this turn: requests
    // handled in the same turn then share one write (and Redis answers them in one read).
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => {
        this.#flushQueued = false;
        void this.#flush();
      });
    }
  }

  /** Closes the socket and fails everything still queued on it. Idempotent. */
  destroy(error: Error): void {
    if (this.#error) return;
    this.#error = error;
    clearTimeout(this.#timer);
    this.#abort.abort(error);
    try {
      this.#conn?.close();
    } catch { /* already closed by the abort signal or the peer */ }
    this.#conn = null;
    this.#outbox.reset();
    for (const p of this.#pending.splice(0)) p.reject(error);
  }

  /** Aims the timer at the oldest call's deadline; on expiry either tears down or re-aims. */
  #armTimer(): void {
    const head = this.#pending[0];
    if (!head) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const oldest = this.#pending[0];
      if (oldest && oldest.deadline <= performance.now()) {
        this.destroy(new RedisUnavailableError(`command timed out after ${this.#timeoutMs} ms`));
      } else {
        this.#armTimer();
      }
    }, Math.max(0, head.deadline - performance.now()));
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
      if (this.#pending.length === 0) {
        // Nothing left to time out: an idle session holds no timer.
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
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
        // Commands enqueued during the write land in the other buffer.
        const sending = this.#outbox;
        this.#outbox = this.#spare;
        this.#spare = sending;
        let chunk = sending.bytes();
        while (chunk.length > 0) chunk = chunk.subarray(await conn.write(chunk));
        sending.reset();
      }
    } catch (e) {
      this.destroy(new RedisUnavailableError(`write failed: ${errorText(e)}`));
    } finally {
      this.#writing = false;
    }
  }
}
