/**
 * A raw HTTP/1.1 server on 127.0.0.1 for tests of HTTP clients: it reads each request (head and
 * body, framed by `Content-Length` or chunked; ASCII) off the socket itself and lets the test write whatever bytes it likes,
 * or none, or close: the misbehaviour `Deno.serve` would never produce. Never imported by a
 * function.
 *
 * @module
 */

import { dechunk } from "../webhooks/http1.ts";

/** One request as it arrived. */
export interface RawRequest {
  /** The head and the body, as sent. */
  text: string;
  /** The request target of the request line. */
  path: string;
  body: string;
}

/** What to do with a connection after an answer: keep it, close it, or never answer again. */
export type After = "keep" | "close" | "hang";

/** A running server. */
export interface RawServer extends AsyncDisposable {
  port: number;
  /** Every request received, in order. */
  requests: RawRequest[];
}

const encoder = new TextEncoder();

/** A request's body, decoded, and where the request ends in `text`; undefined until whole. */
function framed(text: string, end: number): { body: string; total: number } | undefined {
  const head = text.slice(0, end);
  if (/transfer-encoding: *chunked/i.test(head)) {
    const d = dechunk(encoder.encode(text.slice(end + 4)), 1024 * 1024);
    if (!d.done) return undefined;
    return { body: new TextDecoder().decode(d.payload), total: end + 4 + d.consumed };
  }
  const total = end + 4 + Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  return text.length < total ? undefined : { body: text.slice(end + 4, total), total };
}

/** Writes text to a connection. */
export async function writeText(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Serves raw connections: `answer` is called for each request, in order, per connection. */
export function rawServer(
  answer: (request: RawRequest, conn: Deno.Conn) => Promise<After>,
): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: RawRequest[] = [];
  const conns = new Set<Deno.Conn>();
  const decoder = new TextDecoder();
  const serve = async (conn: Deno.Conn): Promise<void> => {
    conns.add(conn);
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    try {
      while (true) {
        let end = text.indexOf("\r\n\r\n");
        let frame = end < 0 ? undefined : framed(text, end);
        while (!frame) {
          const n = await conn.read(buf);
          if (n === null) return;
          text += decoder.decode(buf.subarray(0, n));
          end = text.indexOf("\r\n\r\n");
          frame = end < 0 ? undefined : framed(text, end);
        }
        const total = frame.total;
        const request = {
          text: text.slice(0, total),
          path: text.slice(0, end).split(" ")[1] ?? "/",
          body: frame.body,
        };
        requests.push(request);
        text = text.slice(total);
        const after = await answer(request, conn);
        if (after === "hang") return await new Promise<void>(() => {});
        if (after === "close") return;
      }
    } catch {
      // closed by the client
    } finally {
      conns.delete(conn);
      closeQuietly(conn);
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) void serve(conn);
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    async [Symbol.asyncDispose]() {
      closeQuietly(listener);
      for (const c of conns) closeQuietly(c);
      await accepting;
    },
  };
}

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch {
    // already closed
  }
}
