/**
 * HTTP/1.1 over Deno's own sockets (`Deno.connect`, then `Deno.startTls` for https, verifying the
 * certificate against the URL's host name), for webhook deliveries alone (webhooks/http.ts):
 * `fetch` resolves the host again itself, so a name could pass the address check and then connect
 * somewhere else (DNS rebinding); a connection to the vetted address closes that gap.
 *
 * Redis's REST calls go through `fetch` (redis.ts): a kept-alive client built here for them saved
 * no function CPU worth owning when measured against `fetch` in paired benchmark runs.
 *
 * What is read is bounded: a head over {@link MAX_HEAD_BYTES}, or one that is not HTTP/1.x, is a
 * {@link ProtocolError}; of the body, a delivery keeps the first bytes of what arrived by its
 * deadline (webhooks/http.ts), a chunked one decoded by {@link dechunk}.
 *
 * @module
 */

import { untilAborted } from "../deadline.ts";

/** Longest status line and headers accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** A response that does not follow HTTP/1.1 as this client speaks it. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
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
        throw new ProtocolError("the connection closed before a response");
      }
      end = indexOfHeadEnd(reader.data, scanned - 3);
    }
    if (end > MAX_HEAD_BYTES) throw new ProtocolError("the response's headers are too large");
    const lines = decoder.decode(reader.data.subarray(0, end - 4)).split("\r\n");
    reader.consume(end);
    const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
    if (!status) throw new ProtocolError("the response is not HTTP/1.x");
    const code = Number(status[1]);
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
    return { status: code, headers };
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
 * Decodes the chunked body at the start of `data`, as far as it has arrived: a webhook delivery
 * keeps the first bytes of whatever arrived by its deadline (webhooks/http.ts).
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
