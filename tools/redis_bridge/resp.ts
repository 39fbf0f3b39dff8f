/**
 * Minimal RESP2 codec: encodes commands as arrays of bulk strings and incrementally parses
 * replies (simple strings, errors, integers, bulk strings, arrays, including null and nested
 * forms). Independent of any socket so it can be unit-tested with arbitrary chunking.
 *
 * Both directions work on bytes in place (they run for every relayed command): no strings for
 * lengths or integers, no per-argument buffers, no TextEncoder/TextDecoder call (a native
 * call each) for the ASCII that keys, SHAs, numbers, lengths and status lines are made of.
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

/** Longer strings (scripts, big values) go through the native encoder, which wins once its
 * call overhead is amortised; shorter ASCII ones are copied char by char. */
const INLINE_STRING_MAX = 256;
/** `$` + up to 20 digits + CRLF. */
const MAX_HEADER = 23;
const INITIAL_CAPACITY = 16 * 1024;
const SHRINK_ABOVE = 1024 * 1024;

/**
 * A growable byte buffer that commands are appended to as RESP. Appending a whole batch
 * synchronously makes it one contiguous byte range, which `MULTI ... EXEC` relies on.
 */
export class RespWriter {
  #buf: Uint8Array;
  #len = 0;

  /** @param capacity initial buffer size in bytes; the buffer grows as needed */
  constructor(capacity = INITIAL_CAPACITY) {
    this.#buf = new Uint8Array(capacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  /** A view of the bytes written so far (valid until the next append or {@link reset}). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Drops everything written after the first `length` bytes (undoes a partial batch). */
  truncate(length: number): void {
    if (length < this.#len) this.#len = length;
  }

  /** Forgets the content; gives back memory a huge command made the buffer grow to. */
  reset(): void {
    this.#len = 0;
    if (this.#buf.length > SHRINK_ABOVE) this.#buf = new Uint8Array(INITIAL_CAPACITY);
  }

  /** Appends one command as a RESP array of bulk strings; strings are sent as UTF-8. */
  command(args: readonly (string | Uint8Array)[]): void {
    for (const arg of args) {
      // Checked before writing anything: a half-written command would desync the stream.
      if (typeof arg !== "string" && !(arg instanceof Uint8Array)) {
        throw new TypeError(`RESP arguments must be strings or bytes, not ${typeof arg}`);
      }
    }
    this.#reserve(MAX_HEADER);
    this.#header(0x2a, args.length);
    for (const arg of args) {
      if (typeof arg !== "string") this.#bulk(arg);
      else if (arg.length > INLINE_STRING_MAX || !this.#ascii(arg)) {
        this.#bulk(encoder.encode(arg));
      }
    }
  }

  /** Writes `s` as a bulk string if it is all ASCII; else writes nothing and returns false. */
  #ascii(s: string): boolean {
    const n = s.length, start = this.#len;
    this.#reserve(MAX_HEADER + n + 2);
    this.#header(0x24, n);
    const buf = this.#buf;
    let p = this.#len;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        this.#len = start;
        return false;
      }
      buf[p++] = c;
    }
    buf[p++] = 13;
    buf[p++] = 10;
    this.#len = p;
    return true;
  }

  #bulk(bytes: Uint8Array): void {
    this.#reserve(MAX_HEADER + bytes.length + 2);
    this.#header(0x24, bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    this.#buf[this.#len++] = 13;
    this.#buf[this.#len++] = 10;
  }

  /** `<type><decimal n>\r\n`; the caller reserved MAX_HEADER bytes. */
  #header(type: number, n: number): void {
    const buf = this.#buf;
    buf[this.#len++] = type;
    let digits = 1;
    for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
    let p = this.#len + digits;
    for (let v = n, i = p - 1; i >= this.#len; i--, v = Math.floor(v / 10)) buf[i] = 48 + v % 10;
    buf[p++] = 13;
    buf[p++] = 10;
    this.#len = p;
  }

  #reserve(extra: number): void {
    const needed = this.#len + extra;
    if (needed <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buf.length * 2));
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }
}

/** One command as a RESP array of bulk strings (UTF-8); concatenate several to pipeline. */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Uint8Array {
  const writer = new RespWriter(256);
  writer.command(args);
  return writer.bytes();
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

  #parse(): RespReply | typeof INCOMPLETE {
    const buf = this.#buf;
    const from = this.#pos + 1; // first byte after the type byte
    let cr = from;
    while (cr < this.#end && buf[cr] !== 13) cr++;
    if (cr + 1 >= this.#end) return INCOMPLETE;
    if (buf[cr + 1] !== 10) throw new RespProtocolError("expected CRLF in RESP stream");
    const type = buf[this.#pos];
    this.#pos = cr + 2;
    switch (type) {
      case 0x2b: // '+'
        return new RespStatus(this.#text(from, cr));
      case 0x2d: // '-'
        return new RespError(this.#text(from, cr));
      case 0x3a: // ':'
        return this.#integer(from, cr);
      case 0x24: { // '$'
        const len = this.#length(from, cr);
        if (len < 0) return null;
        if (this.#pos + len + 2 > this.#end) return INCOMPLETE;
        // Copy: the internal buffer is reused for later reads.
        const bytes = buf.slice(this.#pos, this.#pos + len);
        this.#pos += len + 2;
        return bytes;
      }
      case 0x2a: { // '*'
        const count = this.#length(from, cr);
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

  /** UTF-8 text of `buf[from, to)`; short ASCII lines (OK, QUEUED, PONG) skip the decoder. */
  #text(from: number, to: number): string {
    const buf = this.#buf;
    if (to - from > 32) return decoder.decode(buf.subarray(from, to));
    let s = "";
    for (let i = from; i < to; i++) {
      const c = buf[i] as number;
      if (c > 0x7f) return decoder.decode(buf.subarray(from, to));
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** `-?[0-9]+` as a number, a bigint outside the safe integer range, or undefined. */
  #number(from: number, to: number): number | bigint | undefined {
    const buf = this.#buf;
    const first = buf[from] === 0x2d ? from + 1 : from;
    if (first === to) return undefined;
    let n = 0;
    for (let i = first; i < to; i++) {
      const d = (buf[i] as number) - 48;
      if (d < 0 || d > 9) return undefined;
      n = n * 10 + d;
    }
    // Up to 15 digits the accumulation is exact; longer ones may not be, so redo them exactly.
    if (to - first > 15) {
      const text = this.#text(from, to);
      const exact = Number(text);
      return Number.isSafeInteger(exact) ? exact : BigInt(text);
    }
    return first === from ? n : -n;
  }

  #integer(from: number, to: number): number | bigint {
    const n = this.#number(from, to);
    if (n !== undefined) return n;
    throw new RespProtocolError(`bad RESP integer "${this.#text(from, to)}"`);
  }

  /** A bulk or array length: a non-negative integer, or -1 for null. */
  #length(from: number, to: number): number {
    const n = this.#number(from, to);
    if (typeof n !== "number" || n < -1) {
      throw new RespProtocolError(`bad RESP length "${this.#text(from, to)}"`);
    }
    return n;
  }
}
