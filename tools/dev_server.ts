/**
 * The local dev server: the gateway and Supabase's functions router in front of a local Edge
 * Runtime (`runtime/supervisor.ts`), in which each function runs in isolates of its own, loaded
 * from its `index.ts` as the hosted runtime loads it. It serves:
 *
 * - the public gateway paths of `_shared/routes.ts` (`/api/...`), rewritten as the gateway does;
 * - Supabase's own paths, `/functions/v1/<name>/...` (so `supabase.functions.invoke` works);
 * - any other path (an unknown function too): the gateway's 404 in the API's error format,
 *   without reaching a function or counting against a rate limit;
 * - the local Auth stand-in (`auth/server.ts`) at `/auth/v1/...`: sign-up, password and email
 *   sign-in, magic links with PKCE, refresh, sign-out, the JWKS, and the OAuth 2.1 server as
 *   `[auth.oauth_server]` of supabase/config.toml sets it (its RFC 8414 metadata also at
 *   `/.well-known/oauth-authorization-server/auth/v1`); its mail at `/_mailbox/`;
 * - `SUPABASE_SERVICE_ROLE_KEY` for the functions, as the platform provides it: a service-role
 *   JWT signed with the local key (unless the environment sets one);
 * - with `TORVUS_CONSOLE_PORT`, the built console (`console/dist`) on that port (`console.ts`);
 * - with `TORVUS_RUNTIME_CONTROL=true` (the test profile), `/_runtime/stats` and
 *   `POST /_runtime/functions/<name>/drop` (retire the function's isolate; it is dropped early
 *   once idle), for tests and the benchmark.
 *
 * It also runs what pg_cron runs on hosted Supabase (`runtime/scheduler.ts`): the retention job
 * every `TORVUS_DEV_PURGE_EVERY_S` seconds (default 3600) against `SUPABASE_DB_URL`, and the
 * webhook sweep every `TORVUS_WEBHOOK_SWEEP_EVERY_MS`.
 *
 * On the public paths it plays the gateway's part for client addresses (see `asGateway`); on
 * `/functions/v1/...` the platform's, which vouches for nothing (see `asPlatform`).
 *
 * Runs on the Deno the hosted runtime is compatible with (2.1, `deno task dev`); settings come
 * from `.local/<profile>.env` (see tools/stack.ts).
 *
 * @module
 */
import { loadLocalEnv } from "./local_env.ts";
import postgres from "postgres";
import { mintServiceRoleKey, publicJwks } from "./local_auth.ts";
import { createAuthHandler, ROOT_METADATA_PATH } from "./auth/server.ts";
import { oauthServerSettings } from "./auth/oauth_server.ts";
import { Mailbox } from "./auth/mailbox.ts";
import { serveConsole } from "./console.ts";
import { FUNCTIONS, resolveGatewayPath } from "../supabase/functions/_shared/routes.ts";
import {
  DEFAULT_LIMITS,
  EdgeRuntime,
  readBody,
  runtimeError,
  type RuntimeLimits,
} from "./runtime/supervisor.ts";
import { errorBody } from "../supabase/functions/_shared/errors.ts";
import { corsHeaders } from "../supabase/functions/_shared/http/respond.ts";
import { redact } from "../supabase/functions/_shared/log.ts";
import { CLIENT_IP_HEADER, GATEWAY_SECRET_HEADER } from "../supabase/functions/_shared/ip.ts";
import { purgeJob, startScheduler, webhookSweepJob } from "./runtime/scheduler.ts";

const FUNCTIONS_DIR = new URL("../supabase/functions/", import.meta.url);

/**
 * What the gateway answers for a path outside the public route table: the API's 404, with a
 * request id and CORS headers, and without touching any function (as Tyk's allow list does).
 */
function gatewayNotFound(started: number, req: Request, url: URL, log: Log): Response {
  const requestId = crypto.randomUUID();
  const headers = new Headers({
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Request-ID": requestId,
    "X-Response-Time": (performance.now() - started).toFixed(2),
  });
  corsHeaders(headers);
  const body = errorBody("NOT_FOUND", requestId, { message: "Route not found" });
  // The gateway's access log line, shaped like the functions' request lines.
  log("info", "request", {
    request_id: requestId,
    function: null,
    method: String(req.method).slice(0, 16),
    path: redact(url.pathname.slice(0, 1024)),
    status: 404,
    code: "NOT_FOUND",
  });
  return new Response(JSON.stringify(body), { status: 404, headers });
}

type Log = (
  level: "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/**
 * What the gateway sends a function (as the exported Tyk definition does): whatever the client
 * said about addresses or the gateway removed, then the client's address and the shared secret
 * that vouches for it. With `passForwarded` (the test profile) the client's address is the first
 * hop of its X-Forwarded-For, so tests can act as many clients; otherwise the TCP peer.
 */
function asGateway(from: Headers, peer: string, options: DevServerOptions): Headers {
  const headers = new Headers(from);
  for (const name of ["x-forwarded-for", "x-real-ip", CLIENT_IP_HEADER, GATEWAY_SECRET_HEADER]) {
    headers.delete(name);
  }
  headers.set(CLIENT_IP_HEADER, clientOf(from, peer, options));
  if (options.gatewaySecret) headers.set(GATEWAY_SECRET_HEADER, options.gatewaySecret);
  return headers;
}

/**
 * What Supabase's platform sends a function called at its own URL: the client's headers as
 * they are (a forged X-Forwarded-For included) with the peer appended to X-Forwarded-For, and
 * `cf-connecting-ip`, which Cloudflare in front of the platform overwrites with the client's
 * address (with `passForwarded`, the simulated client's). Functions trust it only when told to
 * (`TORVUS_DIRECT_IP_SOURCE=header:cf-connecting-ip`, as the local profiles do).
 */
function asPlatform(from: Headers, peer: string, options: DevServerOptions): Headers {
  const headers = new Headers(from);
  const forwarded = from.get("x-forwarded-for");
  headers.set("x-forwarded-for", forwarded ? `${forwarded}, ${peer}` : peer);
  headers.set(PLATFORM_IP_HEADER, clientOf(from, peer, options));
  return headers;
}

/** The address the local front ends state for a client. */
function clientOf(from: Headers, peer: string, options: DevServerOptions): string {
  const claimed = options.passForwarded
    ? from.get("x-forwarded-for")?.split(",")[0]?.trim()
    : undefined;
  return claimed || peer;
}

/** The header the emulated platform sets to the client's address. */
export const PLATFORM_IP_HEADER = "cf-connecting-ip";

/** Options of {@link createDevServer}. */
export interface DevServerOptions {
  passForwarded: boolean;
  /** The secret the gateway part sends (TORVUS_GATEWAY_SECRET). */
  gatewaySecret: string | undefined;
  control: boolean;
  limits?: RuntimeLimits;
  log?: Log;
  /** The Auth stand-in's handler for `/auth/v1/...` (without it, only the JWKS is served). */
  auth?: (req: Request) => Promise<Response>;
  /** The local mailbox shown at `/_mailbox/`. */
  mailbox?: Mailbox;
}

/** The request handler and the runtime behind it. */
export function createDevServer(options: DevServerOptions): {
  handler: (req: Request, info: Deno.ServeHandlerInfo) => Promise<Response>;
  runtime: EdgeRuntime;
} {
  const entries = Object.fromEntries(
    FUNCTIONS.map((name) => [name, new URL(`${name}/index.ts`, FUNCTIONS_DIR)]),
  );
  const log: Log = options.log ?? (() => {});
  const runtime = new EdgeRuntime(entries, options.limits ?? DEFAULT_LIMITS, log);

  const control = async (req: Request, path: string): Promise<Response> => {
    if (path === "/_runtime/stats" && req.method === "GET") return Response.json(runtime.stats());
    const drop = /^\/_runtime\/functions\/([^/]+)\/drop$/.exec(path);
    if (drop && req.method === "POST") {
      const dropped = await runtime.drop(drop[1]!);
      return Response.json({ dropped }, { status: dropped ? 200 : 404 });
    }
    return Response.json({ error: "not_found" }, { status: 404 });
  };

  const handler = async (req: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    const started = performance.now();
    const url = new URL(req.url);
    const authPath = url.pathname.startsWith("/auth/v1/") || url.pathname === ROOT_METADATA_PATH;
    if (authPath && options.auth !== undefined) {
      return await options.auth(req);
    }
    if (url.pathname === "/auth/v1/.well-known/jwks.json") {
      return Response.json(await publicJwks(), {
        headers: { "Cache-Control": "public, max-age=600" },
      });
    }
    if (url.pathname.startsWith("/_mailbox") && options.mailbox !== undefined) {
      return options.mailbox.serve(url);
    }
    if (options.control && url.pathname.startsWith("/_runtime/")) {
      return await control(req, url.pathname);
    }
    const gateway = resolveGatewayPath(url.pathname);
    const target = gateway?.functionPath ?? url.pathname;
    const name = /^\/functions\/v1\/([^/]+)/.exec(target)?.[1];
    if (name === undefined || !runtime.has(name)) return gatewayNotFound(started, req, url, log);

    const peer = info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "";
    const headers = gateway
      ? asGateway(req.headers, peer, options)
      : asPlatform(req.headers, peer, options);
    // Set the path, never parse it: "//x" as a URL reference would name a host.
    const forwardedUrl = new URL(url);
    forwardedUrl.pathname = target;
    const body = await readBody(req);
    if (body === undefined) {
      return runtimeError(413, "PAYLOAD_TOO_LARGE", "Request body is too large");
    }
    return await runtime.fetch(name, {
      method: req.method,
      url: forwardedUrl.href,
      headers: [...headers],
      body,
    });
  };
  return { handler, runtime };
}

/** Limits from `TORVUS_RUNTIME_*` settings, defaulting to the hosted runtime's. */
function limitsFromEnv(): RuntimeLimits {
  const read = (name: string, fallback: number) => {
    const raw = Deno.env.get(name);
    const value = raw === undefined || raw === "" ? fallback : Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
    return value;
  };
  return {
    wallClockMs: read("TORVUS_RUNTIME_WALL_CLOCK_MS", DEFAULT_LIMITS.wallClockMs),
    cpuSoftMs: read("TORVUS_RUNTIME_CPU_SOFT_MS", DEFAULT_LIMITS.cpuSoftMs),
    cpuHardMs: read("TORVUS_RUNTIME_CPU_HARD_MS", DEFAULT_LIMITS.cpuHardMs),
    memoryMb: read("TORVUS_RUNTIME_MEMORY_MB", DEFAULT_LIMITS.memoryMb),
  };
}

if (import.meta.main) {
  loadLocalEnv();
  const hostname = Deno.env.get("TORVUS_HOST") ?? "127.0.0.1";
  const port = Number(Deno.env.get("TORVUS_PORT") ?? "54321");
  const write = (level: string, msg: string, fields: Record<string, unknown> = {}) => {
    const line = redact(JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields }));
    if (level === "info") console.log(line);
    else console.error(line);
  };
  const dbUrl = Deno.env.get("SUPABASE_DB_URL");
  const control = Deno.env.get("TORVUS_RUNTIME_CONTROL") === "true";
  const mailbox = new Mailbox();
  const consolePort = Number(Deno.env.get("TORVUS_CONSOLE_PORT") || "0");
  const consoleUrl = consolePort > 0 ? `http://${hostname}:${consolePort}` : undefined;
  const authSql = dbUrl ? postgres(dbUrl, { max: 4, onnotice: () => {} }) : undefined;
  if (!Deno.env.get("SUPABASE_SERVICE_ROLE_KEY")) {
    Deno.env.set("SUPABASE_SERVICE_ROLE_KEY", await mintServiceRoleKey());
  }
  const configToml = await Deno.readTextFile(new URL("../supabase/config.toml", import.meta.url));
  const { handler, runtime } = createDevServer({
    passForwarded: Deno.env.get("TORVUS_DEV_PASS_FORWARDED") === "true",
    gatewaySecret: Deno.env.get("TORVUS_GATEWAY_SECRET") || undefined,
    control,
    limits: limitsFromEnv(),
    log: write,
    mailbox,
    ...(authSql && {
      auth: createAuthHandler({
        sql: authSql,
        mailbox,
        publicUrl: Deno.env.get("SUPABASE_URL") ?? `http://${hostname}:${port}`,
        siteUrl: Deno.env.get("TORVUS_AUTH_SITE_URL") || consoleUrl ||
          `http://${hostname}:${port}`,
        redirectUrls: (Deno.env.get("TORVUS_AUTH_REDIRECT_URLS") ?? "").split(",")
          .map((u) => u.trim()).filter((u) => u !== ""),
        jwtExpiry: Number(Deno.env.get("TORVUS_AUTH_JWT_EXPIRY") || "3600"),
        allowTtlHeader: control,
        oauthServer: oauthServerSettings(configToml),
      }),
    }),
  });
  const server = Deno.serve({
    hostname,
    port,
    onListen: ({ hostname, port }) => {
      write("info", "dev server listening", {
        url: `http://${hostname}:${port}`,
        runtime: `Deno ${Deno.version.deno}, one isolate per function`,
      });
    },
    onError: (error) => {
      write("error", "unhandled server error", { error: String(error) });
      return Response.json({ code: "INTERNAL_ERROR" }, { status: 500 });
    },
  }, handler);

  const consoleServer = consolePort > 0
    ? serveConsole({ hostname, port: consolePort, log: write })
    : undefined;

  // Scheduled jobs (pg_cron on hosted Supabase): retention and the webhook sweep.
  const purgeEvery = Number(Deno.env.get("TORVUS_DEV_PURGE_EVERY_S") || "3600") * 1000;
  const sweep = webhookSweepJob(
    `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
    (n) => Deno.env.get(n),
    write,
  );
  const stopJobs = startScheduler([
    ...(dbUrl ? [purgeJob(dbUrl, purgeEvery)] : []),
    ...(sweep ? [sweep] : []),
  ], write);

  const stop = async () => {
    write("info", "dev server stopping");
    // Requests in flight may finish; a client that never ends its request does not hold us up.
    const closed = await Promise.race([
      server.shutdown().then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000)),
    ]);
    if (!closed) write("warn", "requests still open after 5 s; stopping anyway");
    await consoleServer?.shutdown();
    await authSql?.end({ timeout: 2 });
    // Each isolate finishes its requests and its waitUntil work (the request log), then ends.
    await stopJobs();
    await runtime.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
