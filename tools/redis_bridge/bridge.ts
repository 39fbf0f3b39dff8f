/**
 * Redis bridge: serves the Upstash Redis REST protocol (as spoken by `@upstash/redis` 1.39)
 * on top of a plain redis-server, so Upstash clients work against local Redis.
 *
 * Endpoints (all JSON, `Content-Type: application/json`):
 * - `POST /` body `["SET","k","v"]` -> `200 {"result": <reply>}`; a Redis error reply ->
 *   `400 {"error": "<Redis error text verbatim>"}` (the client's EVALSHA -> EVAL fallback keys
 *   on the text containing `NOSCRIPT`).
 * - `POST /pipeline` body `[[...],[...]]` -> `200 [{"result": ...} | {"error": "..."}, ...]`,
 *   one entry per command, sent to Redis as one pipelined write.
 * - `POST /multi-exec` same body -> run in `MULTI`/`EXEC` on one connection with nothing
 *   interleaved; `200` with the same per-command entries. A command rejected at queue time
 *   aborts the whole transaction: `400 {"error": "EXECABORT ... (<first queue error>)"}`.
 * - `GET /health` (no auth) -> `200 {"ok":true}` if Redis answers PING, else `503`.
 *
 * Auth: `Authorization: Bearer <token>`, compared in constant time via SHA-256 digests; else
 * `401 {"error":"Unauthorized"}`. Command arguments may be strings (sent as UTF-8) or
 * numbers/booleans (sent as their string form). Bad JSON or shape -> 400, body over the limit
 * (10 MiB) -> 413, unknown path -> 404, wrong method -> 405, Redis unreachable or too slow ->
 * `503 {"error":"Redis unavailable: ..."}`. Commands that change connection state (MULTI,
 * WATCH, SELECT, SUBSCRIBE, ...) are refused because connections are shared.
 *
 * `Upstash-Encoding: base64`: every bulk and status string in the result, nested ones
 * included, is base64 of its raw bytes, except a top-level status `"OK"`, which stays
 * literal. That mirrors the client's decoder: it special-cases a top-level `"OK"` and
 * base64-decodes every other string (array elements included). Integers and nulls stay JSON
 * numbers and `null`; 64-bit integers beyond 2^53 are written as exact JSON digits.
 *
 * Lua scripts: Upstash-only shebang flags (`#!lua flags=allow-key-locking`) are stripped
 * before reaching Redis; SHAs the client computed are mapped to the stripped script's SHA for
 * EVALSHA / SCRIPT EXISTS / SCRIPT LOAD (see scripts.ts).
 *
 * @module
 */

import {
  entry,
  errorResponse,
  HttpError,
  jsonResponse,
  readJson,
  render,
  toCommand,
  toCommands,
} from "./json.ts";
import { RedisPool, RedisUnavailableError } from "./pool.ts";
import { RespError, type RespReply, RespStatus } from "./resp.ts";
import { type RewrittenCommand, ScriptRegistry } from "./scripts.ts";

/** Configuration for {@link createBridge}. */
export interface BridgeOptions {
  /** Shared secret expected as `Authorization: Bearer <token>`; at least 16 characters. */
  token: string;
  /** Default `redis://127.0.0.1:6379`. */
  redisUrl?: string;
  /** Per Redis round trip, default 2000 ms. */
  commandTimeoutMs?: number;
  /** Number of Redis connections, default 4. */
  poolSize?: number;
  /** Maximum request body size in bytes, default 10 MiB. */
  maxBodyBytes?: number;
}

/** A running bridge: mount `handler` in `Deno.serve`, call `close` when done. */
export interface Bridge {
  handler: (req: Request) => Promise<Response>;
  close: () => Promise<void>;
}

/** Minimum accepted token length. */
export const MIN_TOKEN_LENGTH = 16;
const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Commands that alter per-connection state; on pooled, shared sockets they would leak into
 * other requests or desynchronise the reply stream. */
const CONNECTION_STATE_COMMANDS = new Set(
  ("MULTI EXEC DISCARD WATCH UNWATCH SELECT SUBSCRIBE PSUBSCRIBE SSUBSCRIBE UNSUBSCRIBE " +
    "PUNSUBSCRIBE SUNSUBSCRIBE MONITOR QUIT RESET HELLO AUTH SYNC PSYNC").split(" "),
);

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Request URL -> route path (no trailing slashes). Clients repeat the same few URLs, and the
 * URL parser is a native call per request; a small memo keeps its exact behaviour (errors
 * included) at the cost of a map lookup. */
const paths = new Map<string, string>();

function pathOf(url: string): string {
  let path = paths.get(url);
  if (path === undefined) {
    path = new URL(url).pathname.replace(/\/+$/, "") || "/";
    if (paths.size >= 64) paths.clear();
    paths.set(url, path);
  }
  return path;
}

/** Creates the request handler and its Redis connection pool. Throws on invalid options. */
export function createBridge(options: BridgeOptions): Bridge {
  if (typeof options.token !== "string" || options.token.length < MIN_TOKEN_LENGTH) {
    throw new Error(`bridge token must be at least ${MIN_TOKEN_LENGTH} characters`);
  }
  const { redisUrl: url, commandTimeoutMs, poolSize: size } = options;
  const pool = new RedisPool({ url, commandTimeoutMs, size });
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const scripts = new ScriptRegistry();
  const token = options.token;

  function authorized(req: Request): boolean {
    const match = BEARER.exec(req.headers.get("authorization") ?? "");
    const got = match?.[1];
    if (!got) return false;
    // No early exit and no branch on the token: the loop runs over what the client sent and
    // folds in the length difference, so timing depends only on the client's own input.
    // (Header values hold no surrogates, so comparing UTF-16 units equals comparing UTF-8.)
    let diff = got.length ^ token.length;
    for (let i = 0; i < got.length; i++) {
      diff |= got.charCodeAt(i) ^ token.charCodeAt(i % token.length);
    }
    return diff === 0;
  }

  function prepare(args: string[]): RewrittenCommand | RespError {
    const name = args[0]?.toUpperCase() ?? "";
    if (
      CONNECTION_STATE_COMMANDS.has(name) || (name === "CLIENT" && /^reply$/i.test(args[1] ?? ""))
    ) {
      return new RespError(`ERR command '${args[0]}' is not supported by the REST bridge`);
    }
    return scripts.rewrite(args, name);
  }

  const fix = (cmd: RewrittenCommand, reply: RespReply | undefined): RespReply =>
    cmd.fixReply ? cmd.fixReply(reply ?? null) : reply ?? null;

  async function single(body: unknown, b64: boolean): Promise<Response> {
    const cmd = prepare(toCommand(body, "Request body"));
    if (cmd instanceof RespError) return errorResponse(400, cmd.message);
    const reply = fix(cmd, await pool.command(cmd.args));
    if (reply instanceof RespError) return errorResponse(400, reply.message);
    return jsonResponse(200, `{"result":${render(reply, b64, true)}}`);
  }

  async function pipeline(body: unknown, b64: boolean): Promise<Response> {
    const prepared = toCommands(body).map(prepare);
    const runnable: string[][] = [];
    for (const c of prepared) if (!(c instanceof RespError)) runnable.push(c.args);
    const replies = await pool.pipeline(runnable);
    let next = 0;
    let out = "[";
    for (let i = 0; i < prepared.length; i++) {
      const c = prepared[i] as RewrittenCommand | RespError;
      out += (i === 0 ? "" : ",") +
        entry(c instanceof RespError ? c : fix(c, replies[next++]), b64);
    }
    return jsonResponse(200, out + "]");
  }

  async function multiExec(body: unknown, b64: boolean): Promise<Response> {
    const prepared = toCommands(body).map(prepare);
    const refused = prepared.find((c) => c instanceof RespError);
    if (refused) return errorResponse(400, refused.message);
    const cmds = prepared as RewrittenCommand[];
    // One contiguous write on one connection: nothing else can land between MULTI and EXEC.
    const replies = await pool.pipeline([["MULTI"], ...cmds.map((c) => c.args), ["EXEC"]]);
    const exec = replies[replies.length - 1];
    if (exec instanceof RespError) {
      const cause = replies.slice(1, -1).find((r) => r instanceof RespError);
      return errorResponse(400, cause ? `${exec.message} (${cause.message})` : exec.message);
    }
    if (!Array.isArray(exec)) return errorResponse(400, "ERR transaction aborted");
    return jsonResponse(200, `[${cmds.map((c, i) => entry(fix(c, exec[i]), b64)).join(",")}]`);
  }

  async function health(): Promise<Response> {
    const reply = await pool.command(["PING"]).catch((e: Error) => e);
    if (reply instanceof RespStatus && reply.value === "PONG") {
      return jsonResponse(200, '{"ok":true}');
    }
    const error = reply instanceof Error
      ? `Redis unavailable: ${reply.message}`
      : "unexpected PING reply";
    return jsonResponse(503, JSON.stringify({ ok: false, error }));
  }

  const routes: Record<string, (body: unknown, b64: boolean) => Promise<Response>> = {
    "/": single,
    "/pipeline": pipeline,
    "/multi-exec": multiExec,
  };

  async function handler(req: Request): Promise<Response> {
    try {
      const path = pathOf(req.url);
      if (path === "/health") {
        if (req.method !== "GET" && req.method !== "HEAD") {
          return errorResponse(405, "Method not allowed; use GET", { allow: "GET, HEAD" });
        }
        return await health();
      }
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (!route) return errorResponse(404, `Not found: ${path}`);
      if (!authorized(req)) return errorResponse(401, "Unauthorized");
      if (req.method !== "POST") {
        return errorResponse(405, "Method not allowed; use POST", { allow: "POST" });
      }
      const b64 = req.headers.get("upstash-encoding")?.toLowerCase() === "base64";
      return await route(await readJson(req, maxBody), b64);
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e.status, e.message);
      if (e instanceof RedisUnavailableError) {
        return errorResponse(503, `Redis unavailable: ${e.message}`);
      }
      console.error("redis bridge: unexpected error:", e);
      return errorResponse(500, `Internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  return { handler, close: () => pool.close() };
}
