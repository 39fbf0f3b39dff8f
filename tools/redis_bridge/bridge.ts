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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const jsonResponse = (
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Response =>
  new Response(body, { status, headers: { "content-type": "application/json", ...headers } });

const errorResponse = (
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response => jsonResponse(status, JSON.stringify({ error: message }), headers);

/** Renders a reply as JSON text (hand-written so bulk bytes and big integers stay exact). */
function render(reply: RespReply, base64: boolean, top: boolean): string {
  if (reply === null) return "null";
  if (typeof reply === "number" || typeof reply === "bigint") return reply.toString();
  if (reply instanceof Uint8Array) {
    return JSON.stringify(base64 ? reply.toBase64() : decoder.decode(reply));
  }
  if (Array.isArray(reply)) return `[${reply.map((r) => render(r, base64, false)).join(",")}]`;
  // Status or (nested, e.g. from Lua) error: plain text.
  const text = reply instanceof RespStatus ? reply.value : reply.message;
  const literal = !base64 || (top && reply instanceof RespStatus && text === "OK");
  return JSON.stringify(literal ? text : encoder.encode(text).toBase64());
}

const entry = (reply: RespReply, base64: boolean): string =>
  reply instanceof RespError
    ? JSON.stringify({ error: reply.message })
    : `{"result":${render(reply, base64, true)}}`;

const describe = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;

function toCommand(value: unknown, where: string): string[] {
  if (!Array.isArray(value)) {
    throw new HttpError(400, `${where} must be a JSON array like ["SET","key","value"]`);
  }
  if (value.length === 0) throw new HttpError(400, `${where} must not be an empty array`);
  return value.map((arg: unknown, i) => {
    if (typeof arg === "string") return arg;
    if (typeof arg === "number" || typeof arg === "boolean") return String(arg);
    throw new HttpError(
      400,
      `${where}: argument ${i} must be a string or number, not ${describe(arg)}`,
    );
  });
}

function toCommands(value: unknown): string[][] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new HttpError(
      400,
      'Request body must be a non-empty JSON array of commands like [["SET","k","v"],["GET","k"]]',
    );
  }
  return value.map((cmd: unknown, i) => toCommand(cmd, `Command ${i}`));
}

/** Reads the body with a hard size cap (checked while streaming, not just via Content-Length). */
async function readJson(req: Request, limit: number): Promise<unknown> {
  const tooLarge = () => new HttpError(413, `Request body exceeds the limit of ${limit} bytes`);
  if (Number(req.headers.get("content-length") ?? 0) > limit) throw tooLarge();
  if (!req.body) throw new HttpError(400, "Request body is required (a JSON array)");
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  chunks.reduce((offset, c) => (bytes.set(c, offset), offset + c.length), 0);
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new HttpError(400, `Request body is not valid JSON: ${(e as Error).message}`);
  }
}

/** Creates the request handler and its Redis connection pool. Throws on invalid options. */
export function createBridge(options: BridgeOptions): Bridge {
  if (typeof options.token !== "string" || options.token.length < MIN_TOKEN_LENGTH) {
    throw new Error(`bridge token must be at least ${MIN_TOKEN_LENGTH} characters`);
  }
  const pool = new RedisPool({
    ...(options.redisUrl !== undefined && { url: options.redisUrl }),
    ...(options.commandTimeoutMs !== undefined && { commandTimeoutMs: options.commandTimeoutMs }),
    ...(options.poolSize !== undefined && { size: options.poolSize }),
  });
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const scripts = new ScriptRegistry();
  const sha256 = async (s: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(s)));
  const expectedDigest = sha256(options.token);

  async function authorized(req: Request): Promise<boolean> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "");
    if (!match?.[1]) return false;
    // Equal-length digests compared without early exit: timing reveals nothing about the token.
    const [got, want] = await Promise.all([sha256(match[1]), expectedDigest]);
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff |= (got[i] ?? 0) ^ (want[i] ?? 0);
    return diff === 0;
  }

  async function prepare(args: string[]): Promise<RewrittenCommand | RespError> {
    const name = args[0]?.toUpperCase() ?? "";
    if (
      CONNECTION_STATE_COMMANDS.has(name) || (name === "CLIENT" && /^reply$/i.test(args[1] ?? ""))
    ) {
      return new RespError(`ERR command '${args[0]}' is not supported by the REST bridge`);
    }
    return await scripts.rewrite(args);
  }

  const fix = (cmd: RewrittenCommand, reply: RespReply | undefined): RespReply =>
    cmd.fixReply ? cmd.fixReply(reply ?? null) : reply ?? null;

  async function single(body: unknown, b64: boolean): Promise<Response> {
    const cmd = await prepare(toCommand(body, "Request body"));
    if (cmd instanceof RespError) return errorResponse(400, cmd.message);
    const reply = fix(cmd, await pool.command(cmd.args));
    if (reply instanceof RespError) return errorResponse(400, reply.message);
    return jsonResponse(200, `{"result":${render(reply, b64, true)}}`);
  }

  async function pipeline(body: unknown, b64: boolean): Promise<Response> {
    const prepared = await Promise.all(toCommands(body).map(prepare));
    const runnable = prepared.filter((c): c is RewrittenCommand => !(c instanceof RespError));
    const replies = await pool.pipeline(runnable.map((c) => c.args));
    let next = 0;
    const entries = prepared.map((c) => {
      if (c instanceof RespError) return entry(c, b64);
      return entry(fix(c, replies[next++]), b64);
    });
    return jsonResponse(200, `[${entries.join(",")}]`);
  }

  async function multiExec(body: unknown, b64: boolean): Promise<Response> {
    const prepared = await Promise.all(toCommands(body).map(prepare));
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
    try {
      const reply = await pool.command(["PING"]);
      if (reply instanceof RespStatus && reply.value === "PONG") {
        return jsonResponse(200, '{"ok":true}');
      }
      return jsonResponse(503, JSON.stringify({ ok: false, error: `unexpected PING reply` }));
    } catch (e) {
      return jsonResponse(
        503,
        JSON.stringify({ ok: false, error: `Redis unavailable: ${(e as Error).message}` }),
      );
    }
  }

  const routes: Record<string, (body: unknown, b64: boolean) => Promise<Response>> = {
    "/": single,
    "/pipeline": pipeline,
    "/multi-exec": multiExec,
  };

  async function handler(req: Request): Promise<Response> {
    try {
      const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
      if (path === "/health") {
        if (req.method !== "GET" && req.method !== "HEAD") {
          return errorResponse(405, "Method not allowed; use GET", { allow: "GET, HEAD" });
        }
        return await health();
      }
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (!route) return errorResponse(404, `Not found: ${path}`);
      if (!(await authorized(req))) return errorResponse(401, "Unauthorized");
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
