/**
 * One webhook request: an HTTP/1.1 POST over a connection to an address the caller has already
 * vetted (http1.ts: `Deno.connect`, then `Deno.startTls` for https, verifying the
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
import {
  closeQuietly,
  closingOnAbort,
  connect,
  ConnectError,
  dechunk,
  ProtocolError,
  Reader,
  readHead,
  requestBytes,
  writeAll,
} from "./http1.ts";

/** How much of a response body is read (and kept, as the delivery's `response_body`). */
export const MAX_RESPONSE_BYTES = 1024;
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

/** The payload of a chunked body, as far as it arrived (tolerant: a prefix is enough). */
const unchunk = (data: Uint8Array) => dechunk(data, MAX_RESPONSE_BYTES).payload;

/** Up to {@link MAX_RESPONSE_BYTES} of the body; whatever arrived when the deadline passed. */
async function readPrefix(reader: Reader, status: number, headers: Map<string, string>) {
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
  let conn: Deno.Conn;
  try {
    conn = await connect(r.url, signal, { address: r.address, caCerts: r.caCerts });
  } catch (error) {
    if (error instanceof ConnectError) throw new DeliveryError(error.stage, error.message);
    throw error;
  }
  try {
    const headers = {
      "User-Agent": "Torvus-Webhooks/1",
      Accept: "*/*",
      "Content-Type": "application/json",
      Connection: "close",
      ...r.headers,
    };
    const path = `${r.url.pathname}${r.url.search}`;
    const bytes = requestBytes("POST", r.url, path, headers, r.body);
    const open = conn;
    return await closingOnAbort(signal, () => closeQuietly(open), async () => {
      await writeAll(open, bytes);
      const reader = new Reader(open);
      let head;
      try {
        head = await readHead(reader);
      } catch (error) {
        if (error instanceof ProtocolError) throw new DeliveryError("protocol", error.message);
        throw error;
      }
      const body = await readPrefix(reader, head.status, head.headers);
      return { status: head.status, body: new TextDecoder().decode(body).replaceAll("\u0000", "") };
    });
  } finally {
    closeQuietly(conn);
  }
}
