/**
 * A TCP proxy on 127.0.0.1 that puts a far network between a client and a server: each byte
 * reaches the other side half a round trip after it was sent, and the proxy opens its connection
 * upstream only a round trip after accepting (the TCP handshake a far server costs). Order is
 * kept in each direction. Used to test what a function does when Redis or the database is in
 * another region; never imported by a function.
 *
 * On loopback the kernel accepts a connection at once, so a client sees its `connect()` return
 * immediately; what costs round trips here is what runs over the connection (TLS, the database's
 * startup, every request), as it does far away.
 *
 * @module
 */
import { delay } from "../deadline.ts";

/** A running proxy. */
export interface DelayProxy extends AsyncDisposable {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

/**
 * Proxies 127.0.0.1:<free port> to `target` with `rttMs` added to every round trip; the upstream
 * connection opens `connectMs` after accepting (default: one round trip).
 */
export function delayProxy(
  target: { hostname: string; port: number },
  rttMs: number,
  connectMs = rttMs,
): DelayProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  const half = rttMs / 2;

  /** Copies `from` to `to`, each chunk delivered `half` ms after it arrived, in order. */
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    let chain = Promise.resolve();
    try {
      for await (const chunk of from.readable.values({ preventCancel: true })) {
        const due = performance.now() + half;
        chain = chain.then(async () => {
          await delay(Math.max(0, due - performance.now()));
          await writeAll(to, chunk);
        }).catch(() => {
          // the other side is gone: so is this one
          closeQuietly(from);
        });
      }
    } catch {
      // the connection ended
    }
    await chain;
    closeQuietly(to);
  };

  const serve = async (client: Deno.Conn) => {
    conns.add(client);
    accepted++;
    try {
      await delay(connectMs);
      const upstream = await Deno.connect(target);
      conns.add(upstream);
      await Promise.all([pump(client, upstream), pump(upstream, client)]);
      conns.delete(upstream);
    } catch {
      // upstream refused, or the proxy closed
    } finally {
      closeQuietly(client);
      conns.delete(client);
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) void serve(conn);
    } catch {
      // the listener closed
    }
  })();

  const close = async () => {
    try {
      listener.close();
    } catch {
      // already closed
    }
    for (const c of conns) closeQuietly(c);
    await accepting;
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
