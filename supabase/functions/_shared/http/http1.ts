/**
 * HTTP/1.1 over Deno's own sockets (`Deno.connect`, then `Deno.startTls` for https, verifying the
 * certificate against the URL's host name), for the two clients that cannot use `fetch`:
 *
 * - webhook deliveries (webhooks/http.ts): `fetch` resolves the host again itself, so a name could
 *   pass the address check and then connect somewhere else (DNS rebinding); a connection to the
 *   vetted address closes that gap;
 * - the Redis REST calls (redis.ts, {@link KeepAliveClient}): on Deno 2.1 a `fetch` costs its
 *   caller about 180 µs of CPU, a request on a kept-alive socket about 55 µs, and every batch of
 *   rate-limit commands is one such call.
 *
 * What is read is bounded (head size, body size) and framed exactly: `Content-Length`, `chunked`,
 * or the connection's end; anything else is a {@link ProtocolError}, never a guess.
 *
 * @module
 */

import { untilAborted } from "../deadline.ts";

/** Longest status line and headers accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** A response that does not follow HTTP/1.1 as this client speaks it. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  /** The connection ended before a single byte of answer. */
  readonly unanswered: boolean;
  constructor(message: string, options?: { unanswered: boolean }) {
    super(message);
    this.unanswered = options?.unanswered ?? false;
  }
}

/** Whether a request failed on a connection the server had closed, before any answer. */
function closedUnanswered(error: unknown): boolean {
  if (error instanceof ProtocolError) return error.unanswered;
  return error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted || error instanceof Deno.errors.NotConnected;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value: visible characters, spaces and tabs; never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** A request target: no whitespace or control characters. */
const TARGET = /^[\x21-\x7e]+$/;

/**
 * The bytes of a request: its line, headers (`Content-Length` added) and body. A method, target,
 * header name or value that would break the framing (CR, LF, a space in the target) is refused
 * with a TypeError before anything is written: a value from elsewhere (a webhook's custom
 * header, a token) can never add a header or a request of its own.
 */
export function requestBytes(
  method: string,
  url: URL,
  path: string,
  headers: Record<string, string>,
  body: string,
): Uint8Array {
  if (!TOKEN.test(method) || !TARGET.test(path)) {
    throw new TypeError("the request line holds characters HTTP/1.1 does not allow");
  }
  const payload = encoder.encode(body);
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`];
  for (const [k, v] of Object.entries(headers)) {
    if (!TOKEN.test(k) || !FIELD_VALUE.test(v)) {
      throw new TypeError(
        `header ${TOKEN.test(k) ? `"${k}"` : "name"} holds characters HTTP/1.1 does not allow`,
      );
    }
    lines.push(`${k}: ${v}`);
  }
  lines.push(`Content-Length: ${payload.length}`);
  const head = encoder.encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** Closes a connection that may already be closed. */
export function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // already closed
  }
}

/** Why a connection could not be made: no TCP connection, or no TLS session. */
export class ConnectError extends Error {
  override name = "ConnectError";
  constructor(readonly stage: "connect" | "tls", message: string) {
    super(message);
  }
}

/**
 * Connects to `address` (the URL's host by default) at the URL's port, with TLS for https;
 * bounded by `signal`.
 */
export async function connect(
  url: URL,
  signal: AbortSignal,
  options: { address?: string; caCerts?: readonly string[] | undefined } = {},
): Promise<Deno.Conn> {
  const https = url.protocol === "https:";
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const address = options.address ?? hostname;
  const port = Number(url.port || (https ? 443 : 80));
  let conn: Deno.Conn;
  try {
    conn = await untilAborted(Deno.connect({ hostname: address, port }), signal, closeQuietly);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    const what = error instanceof Error ? error.name : "error";
    throw new ConnectError("connect", `could not connect to ${address} port ${port}: ${what}`);
  }
  if (!https) return conn;
  try {
    const tlsOptions: Deno.StartTlsOptions = { hostname };
    if (options.caCerts) tlsOptions.caCerts = [...options.caCerts];
    const tls = await untilAborted(
      Deno.startTls(conn as Deno.TcpConn, tlsOptions),
      signal,
      closeQuietly,
    );
    conn = tls;
    await untilAborted(tls.handshake(), signal);
    return tls;
  } catch {
    closeQuietly(conn);
    if (signal.aborted) throw signal.reason;
    throw new ConnectError("tls", `the TLS handshake with ${hostname} failed`);
  }
}

/** Writes all of `bytes` (closing the connection ends a write in progress). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/**
 * Runs `exchange`, ended by `signal`: an abort calls `close` (closing the connection ends the
 * write or read in progress: one listener, not one per socket operation), and the exchange then
 * rejects with the signal's reason.
 */
export async function closingOnAbort<T>(
  signal: AbortSignal,
  close: () => void,
  exchange: () => Promise<T>,
): Promise<T> {
  if (signal.aborted) throw signal.reason;
  const abort = () => close();
  signal.addEventListener("abort", abort, { once: true });
  try {
    return await exchange();
  } catch (error) {
    throw signal.aborted ? signal.reason : error;
  } finally {
    signal.removeEventListener("abort", abort);
  }
}

function indexOfHeadEnd(data: Uint8Array, from: number): number {
  for (let i = Math.max(3, from); i < data.length; i++) {
    if (data[i] === 10 && data[i - 1] === 13 && data[i - 2] === 10 && data[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

/**
 * Reads a connection into a buffer: `data` holds what arrived and is not consumed yet. Closing the
 * connection ends a read in progress.
 */
export class Reader {
  #buffer = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  eof = false;
  constructor(private readonly conn: Deno.Conn) {}

  /** What arrived and is not consumed yet. */
  get data(): Uint8Array {
    return this.#buffer.subarray(this.#start, this.#end);
  }

  /** Consumes `n` bytes of {@link data}. */
  consume(n: number): void {
    this.#start += n;
  }

  /** Reads more; false at the connection's end. */
  async more(): Promise<boolean> {
    if (this.eof) return false;
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) {
      const grown = new Uint8Array(this.#buffer.length * 2);
      grown.set(this.#buffer);
      this.#buffer = grown;
    }
    const n = await this.conn.read(this.#buffer.subarray(this.#end));
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.#end += n;
    return true;
  }
}

/** A response's status line and headers (names in lower case). */
export interface Head {
  status: number;
  /** `HTTP/1.0` or `HTTP/1.1`. */
  version: string;
  headers: Map<string, string>;
}

/** The status and headers of the first final (non-1xx) answer; the reader is left at its body. */
export async function readHead(reader: Reader): Promise<Head> {
  while (true) {
    let end = indexOfHeadEnd(reader.data, 0);
    while (end < 0) {
      if (reader.data.length > MAX_HEAD_BYTES) {
        throw new ProtocolError("the response's headers are too large");
      }
      const scanned = reader.data.length;
      if (!(await reader.more())) {
        throw new ProtocolError(
          "the connection closed before a response",
          scanned === 0 ? { unanswered: true } : undefined,
        );
      }
      end = indexOfHeadEnd(reader.data, scanned - 3);
    }
    if (end > MAX_HEAD_BYTES) throw new ProtocolError("the response's headers are too large");
    const lines = decoder.decode(reader.data.subarray(0, end - 4)).split("\r\n");
    reader.consume(end);
    const status = /^(HTTP\/1\.[01]) (\d{3})(?: |$)/.exec(lines[0] ?? "");
    if (!status) throw new ProtocolError("the response is not HTTP/1.x");
    const code = Number(status[2]);
    if (code >= 100 && code < 200 && code !== 101) continue; // 100 Continue and friends
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const at = line.indexOf(":");
      if (at <= 0) continue; // not a header line: ignored
      const name = line.slice(0, at).trim().toLowerCase();
      const value = line.slice(at + 1).trim();
      const seen = headers.get(name);
      headers.set(name, seen === undefined ? value : `${seen}, ${value}`);
    }
    return { status: code, version: status[1]!, headers };
  }
}

/** Reads until `data` holds `n` bytes; a {@link ProtocolError} if the connection ends first. */
async function need(reader: Reader, n: number): Promise<void> {
  while (reader.data.length < n) {
    if (!(await reader.more())) throw new ProtocolError("the connection closed mid-response");
  }
}

/** Where the next CR LF starts in `data` at or after `from`, or -1. */
function crlfAt(data: Uint8Array, from: number): number {
  for (let i = from; i + 1 < data.length; i++) if (data[i] === 13 && data[i + 1] === 10) return i;
  return -1;
}

/** What {@link dechunk} made of the bytes of a chunked body that have arrived. */
export interface Dechunked {
  /** The payload so far (at most `maxBytes`; a chunk that arrived in part, in part). */
  payload: Uint8Array;
  /** The last chunk and the trailers arrived: the body is whole. */
  done: boolean;
  /** Bytes of `data` the whole body took (when done). */
  consumed: number;
  /** Why the bytes are not a chunked body (or one over `maxBytes`); the payload is what came before. */
  error?: string;
}

/**
 * Decodes the chunked body at the start of `data`, as far as it has arrived: the one decoder of
 * both clients. The Redis client needs the body whole and exact ({@link readBody}); a webhook
 * delivery keeps the first bytes of whatever arrived by its deadline (webhooks/http.ts).
 */
export function dechunk(data: Uint8Array, maxBytes: number): Dechunked {
  const parts: Uint8Array[] = [];
  let total = 0;
  let at = 0;
  const payload = () => {
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) (out.set(p, o), o += p.length);
    return out;
  };
  const stop = (error?: string): Dechunked =>
    error === undefined
      ? { payload: payload(), done: false, consumed: 0 }
      : { payload: payload(), done: false, consumed: 0, error };
  while (true) {
    const end = crlfAt(data, at);
    if (end < 0) {
      return stop(data.length - at > MAX_HEAD_BYTES ? "a chunk line is too long" : undefined);
    }
    const size = /^([0-9a-fA-F]{1,8})(?:;.*)?$/.exec(decoder.decode(data.subarray(at, end)));
    if (!size) return stop("a chunk size is not hexadecimal");
    const n = parseInt(size[1]!, 16);
    const start = end + 2;
    if (n === 0) {
      // Trailers (not used), up to the empty line that ends the body.
      for (let t = start;;) {
        const e = crlfAt(data, t);
        if (e < 0) {
          return stop(data.length - t > MAX_HEAD_BYTES ? "a trailer is too long" : undefined);
        }
        if (e === t) return { payload: payload(), done: true, consumed: e + 2 };
        t = e + 2;
      }
    }
    const over = total + n > maxBytes;
    const take = Math.max(0, Math.min(over ? maxBytes - total : n, data.length - start));
    if (take > 0) (parts.push(data.subarray(start, start + take)), total += take);
    if (over) return stop(`the response is larger than ${maxBytes} bytes`);
    if (data.length < start + n + 2) return stop();
    if (data[start + n] !== 13 || data[start + n + 1] !== 10) {
      return stop("a chunk is not terminated");
    }
    at = start + n + 2;
  }
}

/** A chunked body's payload, read exactly (trailers skipped), at most `maxBytes`. */
async function readChunked(reader: Reader, maxBytes: number): Promise<Uint8Array> {
  while (true) {
    const d = dechunk(reader.data, maxBytes);
    if (d.error !== undefined) throw new ProtocolError(d.error);
    if (d.done) {
      reader.consume(d.consumed);
      return d.payload;
    }
    if (!(await reader.more())) throw new ProtocolError("the connection closed mid-response");
  }
}

/** A whole body and whether the connection may carry another request. */
export interface Body {
  bytes: Uint8Array;
  reusable: boolean;
}

/** The whole body of a response to a POST, framed exactly, at most `maxBytes`. */
export async function readBody(reader: Reader, head: Head, maxBytes: number): Promise<Body> {
  const connection = head.headers.get("connection")?.toLowerCase() ?? "";
  const keepAlive = head.version === "HTTP/1.1"
    ? !/\bclose\b/.test(connection)
    : /\bkeep-alive\b/.test(connection);
  if (head.status === 204 || head.status === 304) {
    return { bytes: new Uint8Array(0), reusable: keepAlive };
  }
  const coding = head.headers.get("transfer-encoding");
  if (coding !== undefined) {
    if (coding.toLowerCase() !== "chunked") {
      throw new ProtocolError(`unsupported transfer-encoding: ${coding.slice(0, 40)}`);
    }
    return { bytes: await readChunked(reader, maxBytes), reusable: keepAlive };
  }
  const length = head.headers.get("content-length");
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) throw new ProtocolError("the content-length is not a number");
    const n = Number(length);
    if (n > maxBytes) throw new ProtocolError(`the response is larger than ${maxBytes} bytes`);
    await need(reader, n);
    const bytes = reader.data.slice(0, n);
    reader.consume(n);
    return { bytes, reusable: keepAlive };
  }
  // Neither: the body ends with the connection.
  while (await reader.more()) {
    if (reader.data.length > maxBytes) {
      throw new ProtocolError(`the response is larger than ${maxBytes} bytes`);
    }
  }
  const bytes = reader.data.slice();
  reader.consume(bytes.length);
  return { bytes, reusable: false };
}

/** A response as the keep-alive client returns it. */
export interface Http1Response {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Options of {@link KeepAliveClient}. */
export interface KeepAliveOptions {
  /** A connection idle longer than this is not reused (servers close idle ones), in ms. */
  idleMs?: number;
  /** The largest response body accepted. */
  maxBodyBytes?: number;
  caCerts?: readonly string[] | undefined;
  /**
   * Bound of opening a connection (TCP, then TLS for https), in ms. It is the connection's own,
   * not any request's: see {@link KeepAliveClient}.
   */
  connectTimeoutMs?: number;
  /**
   * How long an answer is awaited once its request left, in ms, whether or not its caller still
   * waits (default: `connectTimeoutMs`). Past it the connection is closed and another opened.
   */
  answerTimeoutMs?: number;
}

/** Options of one {@link KeepAliveClient.post}. */
export interface PostOptions {
  /**
   * Whether the request may be sent twice. Only then does a request that a reused connection
   * failed before any byte of answer go once more: the server may have run it before closing,
   * and a request that writes (a rate-limit script) must never be applied twice.
   */
  idempotent?: boolean;
  /**
   * Called when the request is handed to the connection (some of it may have reached the
   * server): after that, a failure leaves its outcome unknown.
   */
  onSent?: () => void;
}

/**
 * One kept-alive connection to one origin, carrying one POST at a time; `busy` while it does.
 *
 * Opening a connection is not part of any request: {@link warm} starts it (at an isolate's
 * start-up, and again whenever a connection is lost), bounded by `connectTimeoutMs` alone, and a
 * request waits for it only as long as its own signal allows. A request that gives up never
 * abandons the attempt, so a connection that takes longer to open than one request may wait
 * (DNS, TCP and TLS to a far region: three round trips) is still there for the next request.
 *
 * Any failure of a request (protocol, abort, a connection lost) closes the connection and starts
 * opening the next. A request goes a second time only if the caller says it is idempotent and a
 * kept-alive connection turns out closed by the server before any byte of answer (its idle
 * timeout, a restart); any other failure is the caller's to give up or retry.
 */
export class KeepAliveClient {
  readonly #url: URL;
  readonly #idleMs: number;
  readonly #maxBodyBytes: number;
  readonly #caCerts: readonly string[] | undefined;
  readonly #connectTimeoutMs: number;
  readonly #answerTimeoutMs: number;
  #conn: Deno.Conn | undefined;
  /** The connection's reader, kept with it: its buffer is allocated once per connection. */
  #reader: Reader | undefined;
  /** The connection being opened, if one is. */
  #opening: Promise<void> | undefined;
  #lastUsed = 0;
  #busy = false;
  /** Settles when the last exchange asked for has ended: the next one waits for it. */
  #tail: Promise<void> = Promise.resolve();
  #closed = false;
  /** Connections opened, for tests and diagnostics. */
  connections = 0;
  /** Requests handed to a connection (whether or not answered), for callers that must know. */
  sent = 0;

  constructor(url: string | URL, options: KeepAliveOptions = {}) {
    this.#url = new URL(url);
    if (this.#url.protocol !== "http:" && this.#url.protocol !== "https:") {
      throw new TypeError(`not an http(s) URL: ${this.#url.protocol}`);
    }
    this.#idleMs = options.idleMs ?? 4_000;
    this.#maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024;
    this.#caCerts = options.caCerts;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.#answerTimeoutMs = options.answerTimeoutMs ?? this.#connectTimeoutMs;
  }

  /** Whether an exchange is in progress (its caller may have given up on it). */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Starts opening a connection unless one is open or opening; settles when that attempt does
   * (bounded by `connectTimeoutMs`). Nothing that waits for it can cut it short.
   */
  warm(): Promise<void> {
    if (this.#conn) return Promise.resolve();
    this.#opening ??= this.#open().finally(() => this.#opening = undefined);
    return this.#opening;
  }

  async #open(): Promise<void> {
    this.#closed = false;
    const signal = AbortSignal.timeout(this.#connectTimeoutMs);
    let conn: Deno.Conn;
    try {
      conn = await connect(this.#url, signal, { caCerts: this.#caCerts });
    } catch (error) {
      if (!signal.aborted) throw error;
      throw new ConnectError(
        "connect",
        `no connection to ${this.#url.host} within ${this.#connectTimeoutMs} ms`,
      );
    }
    if (this.#closed) return closeQuietly(conn);
    // Each request leaves in one write and waits for its answer: nothing to gain from Nagle.
    (conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
    this.#conn = conn;
    this.#reader = new Reader(conn);
    this.#lastUsed = performance.now();
    this.connections++;
  }

  /**
   * POSTs `body` to `path` (with its query) and reads the whole answer, or rejects when `signal`
   * aborts. Requests go one at a time, in order: each waits (as long as its signal allows) for
   * the exchange before it. A caller that gives up after its request left does not end the
   * exchange: the answer is still read to its end, within `answerTimeoutMs`, so the
   * connection stays open for the next request instead of being closed and opened again (at a
   * round trip close to the deadline, that would cost every other call). A request whose caller
   * gave up before it left is never sent.
   */
  async post(
    path: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
    options: PostOptions = {},
  ): Promise<Http1Response> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => release = resolve);
    try {
      await untilAborted(previous, signal);
    } catch (error) {
      void previous.then(release);
      throw error;
    }
    this.#busy = true;
    const exchange = this.#attempt(path, headers, body, signal, options);
    void exchange.then(() => {}, () => {}).finally(() => {
      this.#busy = false;
      release();
    });
    return await untilAborted(exchange, signal);
  }

  /** One request, sent once more if {@link PostOptions.idempotent} allows. */
  async #attempt(
    path: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
    options: PostOptions,
  ): Promise<Http1Response> {
    if (this.#conn && performance.now() - this.#lastUsed > this.#idleMs) this.#drop();
    const request = requestBytes("POST", this.#url, path, headers, body);
    const reused = this.#conn !== undefined;
    try {
      return await this.#exchange(request, signal, options.onSent);
    } catch (error) {
      this.#lose();
      // A kept-alive connection the server had already closed (its idle timeout, a restart)
      // fails before a single byte of answer. Whether the server read the request first cannot
      // be told, so only an idempotent request goes once more.
      if (!options.idempotent || !reused || signal.aborted || !closedUnanswered(error)) {
        throw error;
      }
      try {
        return await this.#exchange(request, signal, options.onSent);
      } catch (again) {
        this.#lose();
        throw again;
      }
    }
  }

  /** One request on the connection (waiting for one to open) and its whole answer. */
  async #exchange(
    request: Uint8Array,
    signal: AbortSignal,
    onSent?: () => void,
  ): Promise<Http1Response> {
    if (!this.#conn) await untilAborted(this.warm(), signal);
    // Its caller gave up before it left: it is not sent late.
    if (signal.aborted) throw signal.reason;
    const conn = this.#conn;
    const reader = this.#reader;
    if (!conn || !reader) throw new ConnectError("connect", "the connection was closed");
    this.sent++;
    onSent?.();
    // Its caller may give up sooner; the answer is still awaited this long.
    const answered = AbortSignal.timeout(this.#answerTimeoutMs);
    return await closingOnAbort(answered, () => this.#lose(), async () => {
      await writeAll(conn, request);
      const head = await readHead(reader);
      const { bytes, reusable } = await readBody(reader, head, this.#maxBodyBytes);
      // Bytes beyond the answer were never asked for: the connection is not trusted further.
      if (!reusable || reader.data.length > 0) this.#lose();
      this.#lastUsed = performance.now();
      return { status: head.status, headers: head.headers, body: decoder.decode(bytes) };
    });
  }

  /** Closes a connection that can serve no more requests, and starts opening the next. */
  #lose(): void {
    this.#drop();
    if (!this.#closed) this.warm().catch(() => {});
  }

  #drop(): void {
    closeQuietly(this.#conn);
    this.#conn = undefined;
    this.#reader = undefined;
  }

  /** Closes the connection, and one being opened once it opens (the next request opens another). */
  close(): void {
    this.#closed = true;
    this.#drop();
  }
}
