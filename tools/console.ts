/**
 * Serves the built console (a static single-page app, `console/`) locally, as a static host
 * would: files of the build directory, `index.html` for any other path without an extension (the
 * app routes), and the headers the build wrote into its `_headers` file (the format Netlify and
 * Cloudflare Pages read: the Content-Security-Policy and the rest), so the local page runs under
 * exactly the policy a deployment sends. Without a build it answers 503 saying how to make one.
 *
 * @module
 */
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { LOCAL_DIR } from "./local_env.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

/** The build directory of a profile: `.local/console/<profile>` (TORVUS_CONSOLE_DIR overrides). */
export function consoleDir(profile = Deno.env.get("TORVUS_PROFILE") ?? "dev"): string {
  const chosen = Deno.env.get("TORVUS_CONSOLE_DIR");
  if (chosen) return chosen;
  return fileURLToPath(new URL(`console/${profile}/`, LOCAL_DIR));
}

/** Parses a `_headers` file's `/*` block: the headers every answer gets. */
export function parseHeaders(text: string): [string, string][] {
  const out: [string, string][] = [];
  let inBlock = false;
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    if (!/^\s/.test(line)) {
      inBlock = line.trim() === "/*";
      continue;
    }
    const at = line.indexOf(":");
    if (inBlock && at > 0) out.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
  }
  return out;
}

type Log = (
  level: "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** A handler serving the build directory `dir`. */
export function consoleHandler(dir: string): (req: Request) => Promise<Response> {
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("Method not allowed", { status: 405, headers: { Allow: "GET, HEAD" } });
    }
    let headersText: string;
    try {
      headersText = await Deno.readTextFile(join(dir, "_headers"));
    } catch {
      return new Response(
        "The console is not built: run ./scripts/dev, or npm run build in console/\n",
        { status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" } },
      );
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url).pathname);
    } catch {
      return new Response("Bad request\n", { status: 400 });
    }
    const relative = normalize(path).replace(/^(\.\.(\/|$))+/, "").replace(/^\/+/, "");
    let file = relative === "" || extname(relative) === "" ? "index.html" : relative;
    if (file === "_headers") file = "index.html";
    let body: Uint8Array<ArrayBuffer>;
    try {
      body = await Deno.readFile(join(dir, file));
    } catch {
      return new Response("Not found\n", {
        status: 404,
        headers: new Headers(parseHeaders(headersText)),
      });
    }
    const headers = new Headers(parseHeaders(headersText));
    headers.set("Content-Type", TYPES[extname(file)] ?? "application/octet-stream");
    headers.set(
      "Cache-Control",
      file.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache",
    );
    return new Response(req.method === "HEAD" ? null : body, { headers });
  };
}

/** Listens on `port` and serves the console's build directory. */
export function serveConsole(
  options: { hostname: string; port: number; log: Log; dir?: string },
): Deno.HttpServer {
  const dir = options.dir ?? consoleDir();
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: ({ hostname, port }) => {
      options.log("info", "console listening", { url: `http://${hostname}:${port}`, dir });
    },
  }, consoleHandler(dir));
}
