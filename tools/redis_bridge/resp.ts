/**
 * Minimal RESP2 codec: encodes commands as arrays of bulk strings and incrementally parses
 * replies (simple strings, errors, integers, bulk strings, arrays, including null and nested
 * forms). Independent of any socket so it can be unit-tested with arbitrary chunking.
 *
 * @module
 */

/** A Redis simple-string ("status") reply such as `+OK`. Kept distinct from bulk strings
 * because the Upstash protocol leaves a top-level `"OK"` un-encoded in base64 mode. */
export class RespStatus {
  /** @param value the status text without the leading `+` */
  constructor(readonly value: string) {}
}

/** A Redis error reply such as `-ERR unknown command`. Replies are values, not thrown. */
export class RespError {
  /** @param message the full error text, e.g. `NOSCRIPT No matching script...` */
  constructor(readonly message: string) {}
}

/**
 * Any decoded RESP2 reply. Bulk strings stay raw bytes (`Uint8Array`) so binary values survive
 * until the caller decides how to render them; integers outside the safe JS range are `bigint`.
 */
export type RespReply =
  | RespStatus
  | RespError
  | number
  | bigint
  | Uint8Array
  | null
  | RespReply[];

/** Returned by {@link RespParser.next} when the buffer does not yet hold a whole reply. */
export const INCOMPLETE: unique symbol = Symbol("incomplete");

/** Thrown when the byte stream is not valid RESP2; the connection must be discarded. */
export class RespProtocolError extends Error {
  override name = "RespProtocolError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = encoder.encode("\r\n");

/**
 * Encodes one command as a RESP array of bulk strings. Strings are sent as UTF-8 bytes.
 * Several encoded commands can simply be concatenated for pipelining.
 */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? encoder.encode(arg) : arg;
    parts.push(encoder.encode(`$${bytes.length}\r\n`), bytes, CRLF);
  }
  return concatBytes(parts);
}

/** Concatenates byte chunks into one buffer (used to coalesce writes into a single syscall). */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * Incremental RESP2 parser. Feed it whatever the socket returned, then call {@link next}
 * until it yields {@link INCOMPLETE}. Handles replies split across reads and many replies per
 * read. A partial reply is re-parsed from its start on the next feed; that is cheap for the
 * small replies a REST bridge sees and keeps the parser stateless between replies.
 */
export class RespParser {
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #pos = 0;

  /** Appends received bytes to the internal buffer. */
  feed(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const needed = live + chunk.length;
      // Compact in place when there is room, otherwise grow geometrically.
      if (needed <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(Math.max(needed, this.#buf.length * 2));
        grown.set(this.#buf.subarray(this.#start, this.#end), 0);
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** Returns the next complete reply, or {@link INCOMPLETE} if more bytes are needed. */
  next(): RespReply | typeof INCOMPLETE {
    this.#pos = this.#start;
    const value = this.#parse();
    if (value === INCOMPLETE) return INCOMPLETE;
    this.#start = this.#pos;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return value;
  }

  /** Number of buffered bytes not yet consumed (useful for tests and desync detection). */
  get pending(): number {
    return this.#end - this.#start;
  }

  #readLine(): string | typeof INCOMPLETE {
    const idx = this.#buf.subarray(this.#pos, this.#end).indexOf(13);
    if (idx === -1) return INCOMPLETE;
    const cr = this.#pos + idx;
    if (cr + 1 >= this.#end) return INCOMPLETE;
    if (this.#buf[cr + 1] !== 10) throw new RespProtocolError("expected CRLF in RESP stream");
    const line = decoder.decode(this.#buf.subarray(this.#pos, cr));
    this.#pos = cr + 2;
    return line;
  }

  #parse(): RespReply | typeof INCOMPLETE {
    if (this.#pos >= this.#end) return INCOMPLETE;
    const type = this.#buf[this.#pos++];
    const line = this.#readLine();
    if (line === INCOMPLETE) return INCOMPLETE;
    switch (type) {
      case 0x2b: // '+'
        return new RespStatus(line);
      case 0x2d: // '-'
        return new RespError(line);
      case 0x3a: // ':'
        return parseInteger(line);
      case 0x24: { // '$'
        const len = parseLength(line);
        if (len < 0) return null;
        if (this.#pos + len + 2 > this.#end) return INCOMPLETE;
        // Copy: the internal buffer is reused for later reads.
        const bytes = this.#buf.slice(this.#pos, this.#pos + len);
        this.#pos += len + 2;
        return bytes;
      }
      case 0x2a: { // '*'
        const count = parseLength(line);
        if (count < 0) return null;
        const items: RespReply[] = [];
        for (let i = 0; i < count; i++) {
          const item = this.#parse();
          if (item === INCOMPLETE) return INCOMPLETE;
          items.push(item);
        }
        return items;
      }
      default:
        throw new RespProtocolError(`unexpected RESP type byte 0x${(type ?? 0).toString(16)}`);
    }
  }
}

function parseLength(line: string): number {
  const n = Number(line);
  if (!Number.isInteger(n) || n < -1) throw new RespProtocolError(`bad RESP length "${line}"`);
  return n;
}

function parseInteger(line: string): number | bigint {
  if (!/^-?\d+$/.test(line)) throw new RespProtocolError(`bad RESP integer "${line}"`);
  const n = Number(line);
  return Number.isSafeInteger(n) ? n : BigInt(line);
}
