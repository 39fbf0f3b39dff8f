/**
 * Input validation with zod: query strings and JSON bodies become typed values or a 400 with
 * the path of every offending field; oversized bodies are refused with 413 before parsing.
 *
 * @module
 */
import type { z } from "zod";
import { ApiError } from "../errors.ts";
import { redact } from "../log.ts";

/** A resource's id (a ULID), as paths carry it in any case. */
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/**
 * The ULID in path parameter `name`, upper-cased. A malformed one names no resource, so it is
 * answered as a missing one (`notFound`), which keeps ids opaque.
 */
export function ulidParam(
  params: Readonly<Record<string, string>>,
  name: string,
  notFound: () => ApiError,
): string {
  const id = params[name]?.toUpperCase() ?? "";
  if (!ULID.test(id)) throw notFound();
  return id;
}

/** Largest JSON body accepted, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Most entries a 400's `details` lists: field names come from the client (a 64 KiB body holds
 * thousands of unknown ones), and the answer to a request stays small whatever it sent (the
 * OpenAPI document states this bound and the two below).
 */
export const MAX_DETAILS = 100;
/** Longest `path` of one entry (a client's field name may be long); longer ones are cut. */
export const MAX_DETAIL_PATH = 256;
/** Longest `message` of one entry; longer ones are cut. */
export const MAX_DETAIL_MESSAGE = 512;

/** `text` cut to `max` characters, the cut marked with an ellipsis. */
function cut(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max - 1) + "…";
}

function details(error: z.ZodError): Array<{ path: string; message: string }> {
  return error.issues.flatMap((issue) => {
    // Field names come from the client; one that is a credential is not echoed back.
    const at = issue.path.map((p) => redact(String(p)));
    // An unknown field is reported at its own path, so clients see which one to remove.
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((k) => ({
        path: [...at, redact(k)].join("."),
        message: "unknown field",
      }));
    }
    return [{ path: at.join(".") || "(root)", message: issue.message }];
  });
}

/** The 400 of one offending field a handler finds itself (a check against the clock, say). */
export function invalidField(
  where: "body" | "query" | "path",
  path: string,
  message: string,
): ApiError {
  return invalid(where, [{ path, message }]);
}

/** The 400 for these offending fields; the message names the first. */
function invalid(where: string, found: Array<{ path: string; message: string }>): ApiError {
  const listed = found.slice(0, MAX_DETAILS).map((d) => ({
    path: cut(d.path, MAX_DETAIL_PATH),
    message: cut(d.message, MAX_DETAIL_MESSAGE),
  }));
  const first = listed[0];
  return new ApiError("VALIDATION_FAILED", {
    message: first ? `Invalid ${where}: ${first.path}: ${first.message}` : `Invalid ${where}`,
    extra: { details: listed },
  });
}

function validationError(error: z.ZodError, where: string): ApiError {
  return invalid(where, details(error));
}

/** Validates the query string; repeated parameters are refused rather than silently merged. */
export function parseQuery<S extends z.ZodType>(url: URL, schema: S): z.output<S> {
  const raw: Record<string, string> = {};
  for (const [name, value] of url.searchParams) {
    if (name in raw) {
      throw invalid("query", [{ path: redact(name), message: "must appear once" }]);
    }
    raw[name] = value;
  }
  const result = schema.safeParse(raw);
  if (!result.success) throw validationError(result.error, "query");
  return result.data;
}

/**
 * Reads and validates a JSON body of at most `maxBytes` ({@link MAX_BODY_BYTES} by default). An
 * `optional` body may be absent, and is then validated as `{}`.
 */
export async function readJson<S extends z.ZodType>(
  req: Request,
  schema: S,
  { maxBytes = MAX_BODY_BYTES, optional = false }: {
    maxBytes?: number | undefined;
    optional?: boolean;
  } = {},
): Promise<z.output<S>> {
  if (optional && (req.body === null || req.headers.get("content-length") === "0")) {
    const result = schema.safeParse({});
    if (!result.success) throw validationError(result.error, "body");
    return result.data;
  }
  const type = req.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") throw new ApiError("UNSUPPORTED_MEDIA_TYPE");
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw new ApiError("PAYLOAD_TOO_LARGE");
  const bytes = await readUpTo(req.body, maxBytes);
  if (bytes === undefined) throw new ApiError("PAYLOAD_TOO_LARGE");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new ApiError("INVALID_JSON");
  }
  const bad = unstorableString(value);
  if (bad !== undefined) {
    const path = bad.path.map((p) => redact(String(p))).join(".") || "(root)";
    throw invalid("body", [{ path, message: bad.message }]);
  }
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(result.error, "body");
  return result.data;
}

/**
 * Why a string cannot be stored exactly as sent, if it cannot.
 *
 * Vault names and descriptions arrive encrypted by the client and must be kept to the bit, so a
 * string is refused rather than changed: U+0000, which PostgreSQL text cannot hold, and lone
 * surrogates (a JSON escape such as "\ud800"), which are not Unicode and which encoding to
 * UTF-8 would silently replace with U+FFFD.
 */
function stringProblem(text: string): string | undefined {
  if (text.includes("\u0000")) return "must not contain NUL characters";
  if (!text.isWellFormed()) return "must be valid Unicode (it holds a lone surrogate)";
  return undefined;
}

/**
 * The first string (or object key) that cannot be stored as sent, with its path. Iterative, so
 * a deeply nested body cannot exhaust the stack.
 */
function unstorableString(
  root: unknown,
): { path: Array<string | number>; message: string } | undefined {
  interface Link {
    key: string | number;
    parent: Link | undefined;
  }
  const pathOf = (link: Link | undefined) => {
    const out: Array<string | number> = [];
    for (let l = link; l; l = l.parent) out.unshift(l.key);
    return out;
  };
  const stack: Array<[unknown, Link | undefined]> = [[root, undefined]];
  while (stack.length > 0) {
    const [value, link] = stack.pop()!;
    if (typeof value === "string") {
      const message = stringProblem(value);
      if (message) return { path: pathOf(link), message };
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push([v, { key: i, parent: link }]));
    } else if (value !== null && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) {
        const message = stringProblem(k);
        // A bad key is named by its position among its siblings: it cannot be echoed as is.
        if (message) return { path: pathOf({ key: "(a key)", parent: link }), message };
        stack.push([v, { key: k, parent: link }]);
      }
    }
  }
  return undefined;
}

/**
 * Reads a body of at most `maxBytes`; undefined as soon as it is larger (the rest is not read).
 * Shared with the local runtime, which bounds what it passes to an isolate the same way.
 */
export async function readUpTo(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
