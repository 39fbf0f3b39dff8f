/**
 * The JSON side of the Upstash REST protocol (see bridge.ts): reading and validating request
 * bodies, and rendering Redis replies as the JSON the client expects.
 *
 * Rendering builds the JSON text by hand, in one pass per reply: bulk bytes and 64-bit
 * integers stay exact, and nothing is serialised twice.
 *
 * @module
 */

import { RespError, type RespReply, RespStatus } from "./resp.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A request the bridge refuses with this HTTP status and an `{"error": message}` body. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Shared by every response; `Response` copies it, so reuse is safe and saves an object. */
const JSON_HEADERS = { "content-type": "application/json" };

/** A JSON response; `headers` are added to `content-type: application/json`. */
export function jsonResponse(status: number, body: string, headers?: Record<string, string>) {
  return new Response(body, {
    status,
    headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS,
  });
}

/** `{"error": message}` with the given status. */
export function errorResponse(status: number, message: string, headers?: Record<string, string>) {
  return jsonResponse(status, JSON.stringify({ error: message }), headers);
}

/**
 * Renders a reply as JSON text (hand-written so bulk bytes and big integers stay exact).
 * With `base64`, strings are base64 of their bytes except a top-level (`top`) status `OK`.
 */
export function render(reply: RespReply, base64: boolean, top: boolean): string {
  if (reply === null) return "null";
  if (typeof reply === "number" || typeof reply === "bigint") return reply.toString();
  if (reply instanceof Uint8Array) {
    // The base64 alphabet needs no JSON escaping.
    return base64 ? `"${reply.toBase64()}"` : JSON.stringify(decoder.decode(reply));
  }
  if (Array.isArray(reply)) {
    let out = "[";
    for (let i = 0; i < reply.length; i++) {
      out += (i === 0 ? "" : ",") + render(reply[i] as RespReply, base64, false);
    }
    return out + "]";
  }
  // Status or (nested, e.g. from Lua) error: plain text.
  const text = reply instanceof RespStatus ? reply.value : reply.message;
  const literal = !base64 || (top && reply instanceof RespStatus && text === "OK");
  return literal ? JSON.stringify(text) : `"${encoder.encode(text).toBase64()}"`;
}

/** One pipeline / multi-exec entry: `{"result": ...}` or `{"error": "..."}`. */
export const entry = (reply: RespReply, base64: boolean): string =>
  reply instanceof RespError
    ? JSON.stringify({ error: reply.message })
    : `{"result":${render(reply, base64, true)}}`;

const describe = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;

/** Validates one command; numbers and booleans become their string form (in place: the
 * array is fresh from JSON.parse and nobody else holds it). */
export function toCommand(value: unknown, where: string): string[] {
  if (!Array.isArray(value)) {
    throw new HttpError(400, `${where} must be a JSON array like ["SET","key","value"]`);
  }
  if (value.length === 0) throw new HttpError(400, `${where} must not be an empty array`);
  for (let i = 0; i < value.length; i++) {
    const arg: unknown = value[i];
    if (typeof arg === "string") continue;
    if (typeof arg === "number" || typeof arg === "boolean") value[i] = String(arg);
    else {
      throw new HttpError(
        400,
        `${where}: argument ${i} must be a string or number, not ${describe(arg)}`,
      );
    }
  }
  return value as string[];
}

/** Validates a pipeline / multi-exec body: a non-empty array of commands. */
export function toCommands(value: unknown): string[][] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new HttpError(
      400,
      'Request body must be a non-empty JSON array of commands like [["SET","k","v"],["GET","k"]]',
    );
  }
  for (let i = 0; i < value.length; i++) toCommand(value[i], `Command ${i}`);
  return value as string[][];
}

/** Reads the body with a hard size cap (checked while streaming, not just via Content-Length). */
export async function readJson(req: Request, limit: number): Promise<unknown> {
  const tooLarge = () => new HttpError(413, `Request body exceeds the limit of ${limit} bytes`);
  const declared = req.headers.get("content-length");
  if (Number(declared ?? 0) > limit) throw tooLarge();
  if (!req.body) throw new HttpError(400, "Request body is required (a JSON array)");
  let text: string;
  if (declared !== null) {
    // HTTP framing makes the body exactly Content-Length bytes, already checked against the
    // limit, so it can be taken in one piece (one native read instead of a chunk loop).
    text = await req.text();
  } else {
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
    text = decoder.decode(bytes);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `Request body is not valid JSON: ${(e as Error).message}`);
  }
}
