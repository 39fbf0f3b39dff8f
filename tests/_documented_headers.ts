/**
 * Documented headers against sent headers: the OpenAPI document lists, per path, method and
 * status, every header the API sends (from one table, `openapi/document.ts`'s `HEADERS`). A
 * header sent but not listed there, or listed as required and not sent, is a mismatch.
 *
 * Used by `security_matrix_test.ts` (every route of the matrix, accepted and refused) and by
 * `openapi_test.ts` (every answer it checks against the document).
 *
 * @module
 */
import type { ApiResponse } from "./_harness.ts";

type Json = Record<string, unknown>;

/**
 * HTTP's own headers, which an OpenAPI document does not list (`Content-Type` is the media type
 * of `content`): framing, the date, and `Vary`, which the HTTP server adds.
 */
export const TRANSPORT_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "date",
  "vary",
]);

/** Follows local `$ref`s (`#/components/...`) to the node they name. */
export function deref(document: Json, value: unknown): Json | undefined {
  let node = value as Json | undefined;
  for (let hops = 0; typeof node?.$ref === "string" && hops < 10; hops++) {
    const segments = (node.$ref as string).slice(2).split("/")
      .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    node = segments.reduce<Json | undefined>((n, k) => n?.[k] as Json | undefined, document);
  }
  return node;
}

/**
 * The response object the document gives an answer to `method` on the path `template` with
 * `status` (`components.responses.MethodNotAllowed` for a method the path lacks, `Preflight`
 * for `OPTIONS`).
 */
export function documentedResponse(
  document: Json,
  method: string,
  template: string,
  status: number,
): Json | undefined {
  const item = (document.paths as Json)[template] as Json | undefined;
  if (!item) return undefined;
  const op = item[method.toLowerCase()] as Json | undefined;
  if (!op) {
    const component = method === "OPTIONS" && status === 204
      ? "Preflight"
      : status === 405
      ? "MethodNotAllowed"
      : undefined;
    return component && deref(document, { $ref: `#/components/responses/${component}` });
  }
  return deref(document, (op.responses as Json)[String(status)]);
}

/** The headers of `sent` that the documented `response` does not list (lower case). */
export function undocumentedHeaders(response: Json, sent: Headers): string[] {
  const listed = new Set(Object.keys((response.headers ?? {}) as Json).map((n) => n.toLowerCase()));
  return [...sent.keys()].filter((name) => !TRANSPORT_HEADERS.has(name) && !listed.has(name));
}

/** Every difference between the headers documented for an answer and those it carries. */
export function headerMismatches(
  document: Json,
  method: string,
  template: string,
  r: Pick<ApiResponse, "status" | "headers">,
): string[] {
  const label = `${method} ${template} ${r.status}`;
  const response = documentedResponse(document, method, template, r.status);
  if (!response) return [`${label}: status not documented`];
  const problems = undocumentedHeaders(response, r.headers)
    .map((name) => `${label}: sends ${name}, which the document does not list`);
  for (const [name, raw] of Object.entries((response.headers ?? {}) as Json)) {
    if (deref(document, raw)?.required === true && !r.headers.has(name)) {
      problems.push(`${label}: documents ${name} as always sent, but it is missing`);
    }
  }
  return problems;
}
