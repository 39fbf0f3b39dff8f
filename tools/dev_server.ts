/**
 * The local dev server: every function's exported handler in one Deno process, served at
 * Supabase's paths (`/functions/v1/<name>/…`, so `supabase.functions.invoke` works) and at the
 * public gateway paths of `_shared/routes.ts`, plus the local Auth stand-in's JWKS at
 * `/auth/v1/.well-known/jwks.json`.
 *
 * It plays the gateway's part for client addresses: it sets `X-Forwarded-For` to the peer
 * address, unless `TORVUS_DEV_PASS_FORWARDED=true` (the test profile), which lets tests act
 * as many clients.
 *
 * Run with `deno task dev`; settings come from `.local/<profile>.env` (see tools/stack.ts).
 *
 * @module
 */
import { loadLocalEnv } from "./local_env.ts";
import { publicJwks } from "./local_auth.ts";
import {
  type FunctionName,
  FUNCTIONS,
  resolveGatewayPath,
} from "../supabase/functions/_shared/routes.ts";
import { defineFunction, type Handler } from "../supabase/functions/_shared/http/app.ts";
import {
  getServices,
  installCrashGuards,
  shutdownServices,
} from "../supabase/functions/_shared/services.ts";
import { log } from "../supabase/functions/_shared/log.ts";
import { handler as health } from "../supabase/functions/health/handler.ts";
import { handler as v1Test } from "../supabase/functions/v1-test/handler.ts";
import { handler as me } from "../supabase/functions/me/handler.ts";
import { handler as vaults } from "../supabase/functions/vaults/handler.ts";
import { handler as apiKeys } from "../supabase/functions/api-keys/handler.ts";
import { handler as openapi } from "../supabase/functions/openapi/handler.ts";

const HANDLERS: Partial<Record<FunctionName, Handler>> = {
  health,
  "v1-test": v1Test,
  me,
  vaults,
  "api-keys": apiKeys,
  openapi,
};

// Paths no function owns still get the API's 404, headers and rate limit.
const notFound = defineFunction("", []);

/** Routes a request to its function, as the gateway and Supabase's router would. */
export function createDevHandler(passForwarded: boolean): Handler {
  return async (req, info) => {
    const url = new URL(req.url);
    if (url.pathname === "/auth/v1/.well-known/jwks.json") {
      return Response.json(await publicJwks(), {
        headers: { "Cache-Control": "public, max-age=600" },
      });
    }
    let target = url.pathname;
    const gateway = resolveGatewayPath(url.pathname);
    if (gateway) target = gateway.functionPath;
    const name = /^\/functions\/v1\/([^/]+)/.exec(target)?.[1];
    const fn = name && (FUNCTIONS as readonly string[]).includes(name)
      ? HANDLERS[name as FunctionName]
      : undefined;

    const headers = new Headers(req.headers);
    const peer = info?.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : undefined;
    if (!passForwarded || !headers.has("x-forwarded-for")) {
      if (peer) headers.set("x-forwarded-for", peer);
      else headers.delete("x-forwarded-for");
    }
    // Set the path, never parse it: "//x" as a URL reference would name a host.
    const forwardedUrl = new URL(url);
    forwardedUrl.pathname = target;
    const forwarded = new Request(forwardedUrl, {
      method: req.method,
      headers,
      body: req.body,
    });
    return await (fn ?? notFound)(forwarded, info);
  };
}

if (import.meta.main) {
  loadLocalEnv();
  const hostname = Deno.env.get("TORVUS_HOST") ?? "127.0.0.1";
  const port = Number(Deno.env.get("TORVUS_PORT") ?? "54321");
  const passForwarded = Deno.env.get("TORVUS_DEV_PASS_FORWARDED") === "true";
  // Fail at start-up on a bad configuration, not on the first request.
  getServices();
  const server = Deno.serve({
    hostname,
    port,
    onListen: ({ hostname, port }) => {
      log.info("dev server listening", { url: `http://${hostname}:${port}` });
    },
    onError: (error) => {
      log.error("unhandled server error", { err: error });
      return Response.json({ error: "internal_error", code: "INTERNAL_ERROR" }, { status: 500 });
    },
  }, createDevHandler(passForwarded));

  const stop = async () => {
    log.info("dev server stopping");
    await server.shutdown();
    await shutdownServices();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  installCrashGuards();
}
