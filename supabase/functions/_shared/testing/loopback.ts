/**
 * A test server on 127.0.0.1 (webhook receivers in the unit and end-to-end suites): `Deno.serve`
 * on a free port, quiet, over TLS when given a certificate, stopped by `close()` or at the end of
 * an `await using` block.
 *
 * Never imported by a function: this folder is not deployed with any of them.
 *
 * @module
 */

/** A running loopback server. */
export interface LoopbackServer extends AsyncDisposable {
  port: number;
  /** `http://127.0.0.1:<port>` (https with a certificate). */
  url: string;
  /** Stops accepting and waits for the server to finish. */
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 at a free port; with `tls`, over TLS with that certificate. */
export function serveLoopback(
  handler: (req: Request) => Response | Promise<Response>,
  tls?: { cert: string; key: string },
): LoopbackServer {
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen: () => {},
    ...(tls ?? {}),
  }, handler);
  const close = async () => {
    controller.abort();
    await server.finished;
  };
  const port = server.addr.port;
  return {
    port,
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
