/**
 * One webhook request: an HTTP/1.1 POST over a connection to an address the caller has already
 * vetted, on Deno's own sockets (`Deno.connect`, then `Deno.startTls` for https, verifying the
 * certificate against the URL's host name).
 *
 * Why not `fetch`: it resolves the host again itself, so a name could pass the address check and
 * then connect somewhere else (DNS rebinding), and the Edge Runtime has no `Deno.createHttpClient`
 * to pin an address. Connecting to the checked address closes that gap; it is what Deno 2.1
 * allows without unstable APIs. It also makes the other rules plain: redirects are never
 * followed (a 3xx is an answer like any other), everything is bounded by one deadline, and at
 * most {@link MAX_RESPONSE_BYTES} of the answer's body are read.
 *
 * @module
 */

/** How much of a response body is read (and kept, as the delivery's `response_body`). */
export const MAX_RESPONSE_BYTES = 1024;
/** Longest status line and headers accepted. */
const MAX_HEAD_BYTES = 16 * 1024;

/** What a request is made of. */
export interface WebhookRequest {
  url: URL;
  /** The address to connect to (already checked); the URL's host names it for Host and TLS. */
  address: string;
  headers: Record<string, string>;
  body: string;
  /** Rejects the request when it aborts (the deadline). */
  signal: AbortSignal;
  /** Extra root certificates (PEM) for TLS. */
  caCerts?: readonly string[] | undefined;
}

/** An answer: its status and the first bytes of its body. */
export interface WebhookResponse {
  status: number;
  body: string;
}

/** Why a request got no answer, with a code to branch on. */
export class DeliveryError extends Error {
  override name = "DeliveryError";
  constructor(readonly code: "timeout" | "connect" | "tls" | "protocol", message: string) {
    super(message);
  }
}

const encoder = new TextEncoder();

/** The request's bytes: no keep-alive, the body's length stated. */
function requestBytes(r: WebhookRequest): Uint8Array {
  const body = encoder.encode(r.body);
  const lines = [
    `POST ${r.url.pathname}${r.url.search} HTTP/1.1`,
    `Host: ${r.url.host}`,
    "User-Agent: Torvus-Webhooks/1",
    "Accept: */*",
    "Content-Type: application/json",
    `Content-Length: ${body.length}`,
    "Connection: close",
    ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`),
  ];
  const head = encoder.encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** Settles with `work`, or rejects when `signal` aborts (then `cleanup` gets what comes late). */
function bounded<T>(
  work: Promise<T>,
  signal: AbortSignal,
  cleanup?: (value: T) => void,
): Promise<T> {
  if (signal.aborted) {
    void work.then((v) => cleanup?.(v), () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      void work.then((v) => cleanup?.(v), () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    work.then(
      (v) => (signal.removeEventListener("abort", abort), resolve(v)),
      (e) => (signal.removeEventListener("abort", abort), reject(e)),
    );
  });
}

function indexOfHeadEnd(data: Uint8Array): number {
  for (let i = 3; i < data.length; i++) {
    if (data[i] === 10 && data[i - 1] === 13 && data[i - 2] === 10 && data[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Reads a connection into a growing buffer. */
class Reader {
  data: Uint8Array = new Uint8Array(0);
  eof = false;
  readonly #chunk = new Uint8Array(16 * 1024);
  constructor(private readonly conn: Deno.Conn, private readonly signal: AbortSignal) {}

  async more(): Promise<boolean> {
    if (this.eof) return false;
    const n = await bounded(this.conn.read(this.#chunk), this.signal);
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.data = concat(this.data, this.#chunk.subarray(0, n));
    return true;
  }
}

/** The status and headers of the first final (non-1xx) answer, and what follows them. */
async function readHead(reader: Reader): Promise<{ status: number; headers: Map<string, string> }> {
  while (true) {
    let end = indexOfHeadEnd(reader.data);
    while (end < 0) {
      if (reader.data.length > MAX_HEAD_BYTES) {
        throw new DeliveryError("protocol", "the response's headers are too large");
      }
      if (!(await reader.more())) {
        throw new DeliveryError("protocol", "the connection closed before a response");
      }
      end = indexOfHeadEnd(reader.data);
    }
    const lines = new TextDecoder().decode(reader.data.subarray(0, end)).split("\r\n");
    reader.data = reader.data.subarray(end);
    const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
    if (!status) throw new DeliveryError("protocol", "the response is not HTTP/1.x");
    const code = Number(status[1]);
    if (code >= 100 && code < 200 && code !== 101) continue; // 100 Continue and friends
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const at = line.indexOf(":");
      if (at > 0) headers.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
    }
    return { status: code, headers };
  }
}

/** The payload of a chunked body, as far as `data` holds it. */
function unchunk(data: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < data.length) {
    let lineEnd = at;
    while (lineEnd + 1 < data.length && !(data[lineEnd] === 13 && data[lineEnd + 1] === 10)) {
      lineEnd++;
    }
    if (lineEnd + 1 >= data.length) break;
    const size = parseInt(new TextDecoder().decode(data.subarray(at, lineEnd)), 16);
    if (!Number.isFinite(size) || size <= 0) break;
    const start = lineEnd + 2;
    parts.push(data.subarray(start, Math.min(start + size, data.length)));
    at = start + size + 2;
  }
  return parts.reduce(concat, new Uint8Array(0));
}

/** Up to {@link MAX_RESPONSE_BYTES} of the body; whatever arrived when the deadline passed. */
async function readBody(reader: Reader, status: number, headers: Map<string, string>) {
  if (status === 204 || status === 304) return new Uint8Array(0);
  const chunked = /chunked/i.test(headers.get("transfer-encoding") ?? "");
  const length = Number(headers.get("content-length") ?? NaN);
  const wanted = chunked ? MAX_RESPONSE_BYTES * 2 + 64 : Math.min(
    Number.isFinite(length) ? length : Infinity,
    MAX_RESPONSE_BYTES,
  );
  try {
    while (reader.data.length < wanted && await reader.more()) {
      if (chunked && unchunk(reader.data).length >= MAX_RESPONSE_BYTES) break;
    }
  } catch {
    // The status is the answer; a body cut short by the deadline is kept as far as it came.
  }
  const body = chunked ? unchunk(reader.data) : reader.data;
  return body.subarray(0, MAX_RESPONSE_BYTES);
}

/** Sends one webhook request and reads its answer's status and the start of its body. */
export async function postWebhook(r: WebhookRequest): Promise<WebhookResponse> {
  const { signal } = r;
  const port = Number(r.url.port || (r.url.protocol === "https:" ? 443 : 80));
  const close = (c: Deno.Conn) => {
    try {
      c.close();
    } catch {
      // already closed
    }
  };
  let conn: Deno.Conn;
  try {
    conn = await bounded(Deno.connect({ hostname: r.address, port }), signal, close);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw new DeliveryError(
      "connect",
      `could not connect to ${r.address} port ${port}: ${
        error instanceof Error ? error.name : "error"
      }`,
    );
  }
  try {
    if (r.url.protocol === "https:") {
      const hostname = r.url.hostname.replace(/^\[(.*)\]$/, "$1");
      const options: Deno.StartTlsOptions = { hostname };
      if (r.caCerts) options.caCerts = [...r.caCerts];
      const tls = Deno.startTls(conn as Deno.TcpConn, options);
      try {
        conn = await bounded(tls, signal, close);
        await bounded((conn as Deno.TlsConn).handshake(), signal);
      } catch {
        if (signal.aborted) throw signal.reason;
        throw new DeliveryError("tls", `the TLS handshake with ${hostname} failed`);
      }
    }
    const bytes = requestBytes(r);
    for (let written = 0; written < bytes.length;) {
      written += await bounded(conn.write(bytes.subarray(written)), signal);
    }
    const reader = new Reader(conn, signal);
    const { status, headers } = await readHead(reader);
    const body = await readBody(reader, status, headers);
    return { status, body: new TextDecoder().decode(body).replaceAll("\u0000", "") };
  } finally {
    close(conn);
  }
}
