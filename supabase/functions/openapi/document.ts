/**
 * The OpenAPI 3.1 document of the API, generated from what the code already holds: the route
 * manifest (`_shared/manifest.ts`: each operation's credentials, scope, documentation and
 * schemas), the public route table derived from it, the zod schemas that validate requests and
 * type responses, and the error catalogue. Nothing in it is a hand-kept copy, so it cannot
 * drift from the code without a test noticing.
 *
 * Which errors an operation documents follows from the pipeline (`_shared/http/pipeline.ts`):
 * its credentials (401/403/419), an `{id}` in its path (404), a query or body (400/413/415),
 * the errors its handler raises itself (`errors` in the manifest), and 429/500/503 everywhere.
 * 405, answered for any method a path lacks, is `components.responses.MethodNotAllowed`; the
 * CORS preflight (`OPTIONS`, 204 on every path) is `components.responses.Preflight`.
 *
 * @module
 */
import { z } from "zod";
import type { FunctionSpec, Method, OperationSpec, RouteSpec } from "../_shared/http/spec.ts";
import { type ErrorCode, ERRORS } from "../_shared/errors.ts";
import { GATEWAY_ROUTES } from "../_shared/routes.ts";
import { MANIFEST, operations, TAGS } from "../_shared/manifest.ts";
import { API_VERSION } from "../_shared/config.ts";
import { ALLOWED_HEADERS, EXPOSED_HEADERS } from "../_shared/http/respond.ts";
import { MAX_BODY_BYTES } from "../_shared/http/input.ts";
import { allComponents, componentId } from "../_shared/schemas/component.ts";
// The error bodies the document names itself (`ref("RateLimitError")`), as components.
import "../_shared/schemas/errors.ts";

/** A JSON object of the document. */
export type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

/** The component name a schema of an operation carries (`schemas/component.ts`). */
function componentName(schema: z.ZodType): string {
  const id = componentId(schema);
  if (id === undefined) {
    throw new Error("a schema of an operation is not a component of the document");
  }
  return id;
}

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

/** `int32` when an integer's bounds fit 32 bits, else `int64` (zod states no format itself). */
function integerFormat(minimum: unknown, maximum: unknown): "int32" | "int64" {
  return typeof minimum === "number" && typeof maximum === "number" &&
      minimum >= INT32.min && maximum <= INT32.max
    ? "int32"
    : "int64";
}

// What zod leaves out or adds. Every integer gets its format from its bounds (z.int() is bounded
// by the safe integers, which stay: the bound is real). zod's regular expressions beside the
// standard `date-time` and `uuid` formats say nothing a reader or a client generator needs.
function adjust(ctx: { jsonSchema: Json }): void {
  const s = ctx.jsonSchema;
  if (s.type === "integer" && s.format === undefined) {
    s.format = integerFormat(s.minimum, s.maximum);
  }
  if (s.format === "date-time" || s.format === "uuid") delete s.pattern;
}

const JSON_SCHEMA_OPTIONS = {
  target: "draft-2020-12",
  unrepresentable: "throw",
  override: adjust,
} as const;

function toComponents(named: ReadonlyArray<[string, z.ZodType]>, io: "input" | "output"): Json {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of named) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    ...JSON_SCHEMA_OPTIONS,
    io,
    uri: (id) => `#/components/schemas/${id}`,
  });
  const out: Json = {};
  for (const [id, schema] of Object.entries(schemas)) {
    // Components live inside the document: no dialect or base URI of their own.
    const { $schema: _dialect, $id: _id, ...rest } = schema as Json;
    out[id] = rest;
  }
  return out;
}

/**
 * Every component, by name: request bodies as clients send them (zod's input side), every other
 * component (responses and the pieces they share) as the API answers it.
 */
function schemaComponents(): Json {
  const bodies = new Set(
    operations().flatMap(({ operation }) => operation.body ? [operation.body.schema] : []),
  );
  const named = allComponents();
  const responses = toComponents(named.filter(([, s]) => !bodies.has(s)), "output");
  const requests = toComponents(named.filter(([, s]) => bodies.has(s)), "input");
  // Refinements zod cannot express in JSON Schema, stated here beside the code that has them.
  (requests.UpdateVaultRequest as Json).minProperties = 1;
  (requests.UpdateWebhookRequest as Json).minProperties = 1;
  (requests.CreateApiKeyRequest as Json).not = {
    type: "object",
    required: ["expires_in", "expires_at"],
  };
  return { ...responses, ...requests };
}

const header = (description: string, schema: Json, required = true): Json => ({
  description,
  required,
  schema,
});

const int32 = (minimum: number, maximum = INT32.max): Json => ({
  type: "integer",
  format: "int32",
  minimum,
  maximum,
});

/** A list of methods (`Allow`). */
const METHODS: Json = { type: "string", pattern: "^[A-Z]+(, [A-Z]+)*$", maxLength: 64 };

/**
 * Response headers, the one place that documents them; `required` is their usual state, copied
 * inline where it differs. `tests/security_matrix_test.ts` checks that every route sends exactly
 * these (beyond HTTP's own `Content-Type`, `Content-Length`, `Date`, `Vary`).
 */
const HEADERS: Readonly<Record<string, Json>> = {
  "X-Request-ID": header("The request's id, also in error bodies as `request_id`", {
    type: "string",
    format: "uuid",
    maxLength: 36,
  }),
  "X-Response-Time": header("Milliseconds the API spent on the request", {
    type: "string",
    pattern: "^\\d+(\\.\\d+)?$",
    maxLength: 20,
  }),
  "X-RateLimit-Limit": header("Requests allowed in the tightest rate-limit window", int32(1)),
  "X-RateLimit-Remaining": header("Requests left in that window", int32(0)),
  "X-RateLimit-Reset": header("When that window resets, in Unix epoch seconds", {
    type: "integer",
    format: "int64",
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
  }),
  "RateLimit": header(
    'IETF httpapi RateLimit header: the tightest window, e.g. `"minute";r=9;t=42` ' +
      "(remaining requests, seconds until reset)",
    { type: "string", pattern: '^"[a-z]+";r=\\d+;t=\\d+$', maxLength: 64 },
  ),
  "RateLimit-Policy": header(
    'IETF httpapi RateLimit-Policy header: every window, e.g. `"minute";q=10;w=60, ' +
      '"day";q=1000;w=86400`',
    {
      type: "string",
      pattern: '^"[a-z]+";q=\\d+;w=\\d+(, "[a-z]+";q=\\d+;w=\\d+)*$',
      maxLength: 256,
    },
  ),
  // A day is the longest window; 503s ask for 1 or 30 seconds.
  "Retry-After": header("Seconds to wait before retrying", int32(1, 86_400)),
  "WWW-Authenticate": header(
    "The credential the route expects (RFC 9110); for bearer tokens the RFC 6750 `error`",
    { type: "string", pattern: "^(Bearer|ApiKey) realm=", maxLength: 256 },
  ),
  "Allow": header("The methods the path implements", METHODS),
  "Access-Control-Allow-Methods": header(
    "CORS preflight: the methods the path implements",
    METHODS,
  ),
  "Access-Control-Allow-Headers": header(
    "CORS preflight: the request headers a browser client may send",
    { type: "string", const: ALLOWED_HEADERS },
  ),
  "Access-Control-Max-Age": header(
    "CORS preflight: seconds a browser may keep this answer (a day)",
    int32(86_400, 86_400),
  ),
  "Cache-Control": header(
    "`no-store` on every answer but this document's (`public, max-age=300`)",
    { type: "string", enum: ["no-store", "public, max-age=300"] },
  ),
  "Access-Control-Allow-Origin": header(
    "CORS: any origin may call the API (it authenticates by header, never by cookie)",
    { type: "string", const: "*" },
  ),
  "Access-Control-Expose-Headers": header(
    "CORS: the response headers a browser client may read",
    { type: "string", const: EXPOSED_HEADERS },
  ),
  "Server-Timing": header(
    "Time spent in authentication (`auth`), rate limiting (`rl`) and the database (`db`)",
    {
      type: "string",
      pattern: "^[a-z]+;dur=\\d+(\\.\\d+)?(, [a-z]+;dur=\\d+(\\.\\d+)?)*$",
      maxLength: 256,
    },
    false,
  ),
};

const RATE_LIMIT_HEADERS = [
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "RateLimit",
  "RateLimit-Policy",
];

/** One kind of answer a status can carry, and the headers that come with it. */
interface Variant {
  schema?: Json;
  headers: ReadonlySet<string>;
}

const COMMON = [
  "X-Request-ID",
  "X-Response-Time",
  "Cache-Control",
  "Access-Control-Allow-Origin",
  "Access-Control-Expose-Headers",
  "Server-Timing",
];

/** Headers of an answer that passed rate limiting (successes, and refusals made after it). */
const decided = (...more: string[]) => new Set([...COMMON, ...RATE_LIMIT_HEADERS, ...more]);

const AUTH_CODES: Readonly<Record<RouteSpec["auth"], readonly ErrorCode[]>> = {
  none: [],
  api_key: [
    "MISSING_API_KEY",
    "INVALID_API_KEY_FORMAT",
    "INVALID_API_KEY",
    "API_KEY_NOT_ACTIVE",
    "API_KEY_EXPIRED",
    "IP_NOT_ALLOWED",
  ],
  jwt: [
    "MISSING_AUTH_TOKEN",
    "INVALID_AUTH_TOKEN",
    "TOKEN_EXPIRED",
    "FORBIDDEN",
  ],
};

/**
 * What a third-party app's token is answered on a JWT route, with a challenge: refused where the
 * operation takes no app (`appScope` unset), else refused without an active grant or the scope.
 */
const APP_CODES: readonly ErrorCode[] = [
  "APP_TOKEN_NOT_ACCEPTED",
  "APP_GRANT_NOT_ACTIVE",
  "INSUFFICIENT_SCOPE",
];

/** The headers an error answer carries, as `app.ts` builds it. */
function errorHeaders(code: ErrorCode, auth: RouteSpec["auth"], limited: boolean): Set<string> {
  if (!limited) {
    return new Set(code === "SERVICE_UNAVAILABLE" ? [...COMMON, "Retry-After"] : COMMON);
  }
  switch (code) {
    case "INTERNAL_ERROR":
    case "GATEWAY_REQUIRED":
      return new Set(COMMON);
    case "SERVICE_UNAVAILABLE":
      return new Set([...COMMON, "Retry-After"]);
    case "RATE_LIMIT_EXCEEDED":
      return decided("Retry-After");
    default:
      return AUTH_CODES[auth].includes(code) || (auth === "jwt" && APP_CODES.includes(code))
        ? decided("WWW-Authenticate")
        : decided();
  }
}

/** The body schema of one error code on a route of the given credentials. */
function errorSchema(codes: readonly ErrorCode[], jwtRoute: boolean): Json {
  const statusCode = jwtRoute
    ? { type: "object", required: ["statusCode"] }
    : { type: "object", properties: { statusCode: false } };
  const special: Json[] = [];
  const plain: ErrorCode[] = [];
  for (const code of codes) {
    if (code === "RATE_LIMIT_EXCEEDED") {
      special.push({ allOf: [ref("RateLimitError"), statusCode] });
    } else if (code === "VALIDATION_FAILED") {
      special.push({ allOf: [ref("ValidationError"), statusCode] });
    } else if (code === "INSUFFICIENT_SCOPE") {
      special.push({ allOf: [ref("InsufficientScopeError"), statusCode] });
    } else plain.push(code);
  }
  if (plain.length > 0) {
    const code = plain.length === 1 ? { const: plain[0] } : { enum: plain };
    special.push({
      allOf: [ref(jwtRoute ? "JwtError" : "ApiKeyError"), { type: "object", properties: { code } }],
    });
  }
  return special.length === 1 ? special[0]! : { anyOf: special };
}

function responseObject(description: string, variants: readonly Variant[]): Json {
  const present = new Set(variants.flatMap((v) => [...v.headers]));
  const headers: Json = {};
  for (const name of Object.keys(HEADERS)) {
    if (!present.has(name)) continue;
    const required = variants.every((v) => v.headers.has(name)) &&
      name !== "Server-Timing";
    headers[name] = required === HEADERS[name]!.required
      ? { $ref: `#/components/headers/${name}` }
      : { ...HEADERS[name], required };
  }
  const schemas = variants.flatMap((v) => v.schema ? [v.schema] : []);
  const response: Json = { description, headers };
  if (schemas.length > 0) {
    response.content = {
      "application/json": { schema: schemas.length === 1 ? schemas[0] : { anyOf: schemas } },
    };
  }
  return response;
}

const REASONS: Readonly<Record<number, string>> = {
  400: "Bad request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not found",
  409: "Conflict",
  413: "Payload too large",
  415: "Unsupported media type",
  419: "Token expired",
  429: "Too many requests",
  500: "Internal server error",
  503: "Service unavailable",
};

/** Every error code an operation can answer. */
function errorCodes(doc: OperationSpec, spec: RouteSpec, scoped: boolean): ErrorCode[] {
  const codes = new Set<ErrorCode>(AUTH_CODES[spec.auth]);
  if (scoped) codes.add("INSUFFICIENT_SCOPE");
  if (spec.auth === "jwt") {
    if (doc.appScope === undefined) codes.add("APP_TOKEN_NOT_ACCEPTED");
    else for (const c of ["APP_GRANT_NOT_ACTIVE", "INSUFFICIENT_SCOPE"] as const) codes.add(c);
  }
  if (spec.path.includes(":")) codes.add("NOT_FOUND");
  if (doc.query || doc.body) codes.add("VALIDATION_FAILED");
  if (doc.body) {
    for (const c of ["INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"] as const) {
      codes.add(c);
    }
  }
  for (const c of doc.errors ?? []) codes.add(c);
  if (spec.rateLimited !== false) codes.add("RATE_LIMIT_EXCEEDED");
  // Where the deployment serves its gateway only (TORVUS_DIRECT_ACCESS=deny).
  codes.add("GATEWAY_REQUIRED");
  for (const c of ["INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "CONFIGURATION_INVALID"] as const) {
    codes.add(c);
  }
  return [...codes];
}

function responses(doc: OperationSpec, spec: RouteSpec, scoped: boolean): Json {
  const limited = spec.rateLimited !== false;
  const byStatus = new Map<number, { descriptions: string[]; variants: Variant[] }>();
  const add = (status: number, description: string | undefined, variant: Variant) => {
    const entry = byStatus.get(status) ?? { descriptions: [], variants: [] };
    if (description !== undefined) entry.descriptions.push(description);
    entry.variants.push(variant);
    byStatus.set(status, entry);
  };
  for (const answer of [doc.success, ...doc.otherResponses ?? []]) {
    add(answer.status, answer.description, {
      ...(answer.schema ? { schema: ref(componentName(answer.schema)) } : {}),
      headers: limited ? decided() : new Set(COMMON),
    });
  }
  const grouped = new Map<number, ErrorCode[]>();
  for (const code of errorCodes(doc, spec, scoped)) {
    const status = ERRORS[code].status;
    grouped.set(status, [...grouped.get(status) ?? [], code]);
  }
  for (const [status, codes] of grouped) {
    const schema = errorSchema(codes, spec.auth === "jwt");
    const description = `${REASONS[status] ?? "Error"}: ${codes.map((c) => `\`${c}\``).join(", ")}`;
    // One variant per code, so that a header only some codes carry is documented as optional.
    codes.forEach((code, i) => {
      add(status, i === 0 ? description : undefined, {
        ...(i === 0 ? { schema } : {}),
        headers: errorHeaders(code, spec.auth, limited),
      });
    });
  }
  const out: Json = {};
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    const { descriptions, variants } = byStatus.get(status)!;
    out[String(status)] = responseObject(descriptions.join("; "), variants);
  }
  return out;
}

function queryParameters(schema: z.ZodObject): Json[] {
  const json = z.toJSONSchema(schema, { ...JSON_SCHEMA_OPTIONS, io: "input" }) as Json;
  const properties = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, prop]) => ({
    name,
    in: "query",
    required: required.has(name),
    ...(typeof prop.description === "string" ? { description: prop.description } : {}),
    schema: prop,
  }));
}

const SECURITY: Readonly<Record<RouteSpec["auth"], string | undefined>> = {
  none: undefined,
  api_key: "apiKeyAuth",
  jwt: "bearerAuth",
};

function operation(doc: OperationSpec, spec: RouteSpec): Json {
  const scope = doc.scope;
  const scheme = SECURITY[spec.auth];
  const notes = [
    doc.description,
    scope ? `Needs an API key with the \`${scope}\` scope.` : undefined,
    spec.auth !== "jwt"
      ? undefined
      : doc.appScope
      ? `A third-party app's token needs the \`${doc.appScope}\` scope in its user's grant.`
      : "Third-party apps' tokens are refused (403 `APP_TOKEN_NOT_ACCEPTED`).",
  ].filter((n) => n !== undefined);
  const op: Json = {
    tags: [doc.tag],
    summary: doc.summary,
    ...(notes.length > 0 ? { description: notes.join(" ") } : {}),
    operationId: doc.id,
    // OpenAPI 3.1 lets an apiKey requirement list roles: the key's scope.
    security: scheme ? [{ [scheme]: scope ? [scope] : [] }] : [],
  };
  if (doc.query) op.parameters = queryParameters(doc.query);
  if (doc.body) {
    const kib = (doc.body.maxBytes ?? MAX_BODY_BYTES) / 1024;
    op.requestBody = {
      // The bound of the whole body (OWASP API4), read before any field is parsed.
      description: `JSON of at most ${kib} KiB; a larger body is 413 \`PAYLOAD_TOO_LARGE\``,
      required: doc.body.required,
      content: {
        "application/json": { schema: ref(componentName(doc.body.schema)) },
      },
    };
  }
  op.responses = responses(doc, spec, scope !== undefined);
  return op;
}

/** The part of a function route below the gateway's target, or undefined if not below it. */
function below(path: string, target: string): string | undefined {
  const parts = path.split("/").filter((s) => s !== "");
  const prefix = target.split("/").filter((s) => s !== "");
  if (prefix.some((p, i) => parts[i] !== p)) return undefined;
  const rest = parts.slice(prefix.length);
  return rest.length === 0 ? "" : "/" + rest.join("/");
}

function paths(): Json {
  const out: Json = {};
  const documented = new Set<OperationSpec>();
  for (const gateway of GATEWAY_ROUTES) {
    const fn = MANIFEST[gateway.function];
    for (const spec of fn.routes as readonly RouteSpec[]) {
      // A gateway path serves only the routes of its credentials (`/api/v1/vaults` the
      // API-key routes of `vaults`, `/api/vaults` the JWT ones).
      if (spec.auth !== gateway.credentials) continue;
      const rest = below(spec.path, gateway.target);
      if (rest === undefined) continue;
      const path = (gateway.path + rest).replace(/:([A-Za-z_]+)/g, "{$1}");
      if (path in out) throw new Error(`path "${path}" is reached by two routes`);
      const item: Json = {};
      const names = [...path.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1]!);
      if (names.length > 0) {
        item.parameters = names.map((name) => {
          const param = name === "id"
            ? ("pathId" in fn ? fn.pathId : undefined)
            : ("pathParams" in fn
              ? (fn.pathParams as FunctionSpec["pathParams"])?.[name]
              : undefined);
          if (!param) {
            throw new Error(`no schema for the {${name}} of function "${gateway.function}"`);
          }
          return { name, in: "path", required: true, ...param };
        });
      }
      for (const [method, doc] of Object.entries(spec.methods) as Array<[Method, OperationSpec]>) {
        documented.add(doc);
        item[method.toLowerCase()] = operation(doc, spec);
      }
      out[path] = item;
    }
  }
  // Every operation of the manifest is reachable through the gateway.
  const unreachable = (Object.values(MANIFEST) as Array<{ routes: readonly RouteSpec[] }>)
    .flatMap((fn) => fn.routes.flatMap((r) => Object.values(r.methods) as OperationSpec[]))
    .filter((op) => !documented.has(op)).map((op) => op.id);
  if (unreachable.length > 0) {
    throw new Error(`operations no gateway path reaches: ${unreachable.join(", ")}`);
  }
  return out;
}

function catalogue(): string {
  const rows = (Object.keys(ERRORS) as ErrorCode[]).map((code) => {
    const e = ERRORS[code];
    return `| \`${code}\` | ${e.status} | \`${e.error}\` | ${e.message || "(no message)"} |`;
  });
  return ["| code | status | error | message |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

const DESCRIPTION = `
Authentication, API keys, rate limits and vaults.

**Credentials.** \`/api/v1/*\` routes take an API key in \`X-API-Key\` (\`sk_live_…\` or
\`sk_test_…\`; a test key sees test data only). \`/api/me\`, \`/api/vaults\`, \`/api/keys\` and
\`/api/webhooks\` take a Supabase Auth access token: \`Authorization: Bearer <jwt>\`. An expired token is answered
419 \`TOKEN_EXPIRED\`: refresh it and retry. Tokens Supabase Auth issues to third-party apps
(those with a \`client_id\` claim) act for their user only while the user's grant to that app is
active, with the grant's scopes: \`/api/vaults\` needs \`vaults:read\` (list, get), \`vaults:write\`
(create, update) or \`vaults:delete\` (delete, and an update to \`inactive\`), \`/api/me\`
\`profile:read\`. No active grant (never given, or revoked, though the token has not expired):
401 \`APP_GRANT_NOT_ACTIVE\`; a scope the grant lacks: 403 \`INSUFFICIENT_SCOPE\` with
\`WWW-Authenticate: Bearer error="insufficient_scope", scope="…"\`; account routes (keys,
webhooks, usage, apps, grants) never take an app's token: 403 \`APP_TOKEN_NOT_ACCEPTED\`.

**Errors.** Every error body has \`error\`, \`code\` (stable; branch on it) and \`request_id\`
(also the \`X-Request-ID\` header). Bodies on bearer-token routes also carry \`statusCode\`.
A method a path does not implement is answered 405 \`{"error":"Method not allowed"}\` with an
\`Allow\` header (\`components.responses.MethodNotAllowed\`). \`OPTIONS\` is answered 204 on
every path without credentials (CORS preflight, \`components.responses.Preflight\`).

**Rate limits.** Every answer that passed the limiter carries \`X-RateLimit-Limit\`,
\`X-RateLimit-Remaining\`, \`X-RateLimit-Reset\` (epoch seconds, tightest window) and the IETF
\`RateLimit\` / \`RateLimit-Policy\` headers. API keys are limited per minute and per day by
tier, users 1,000 requests per hour, a third-party app per user by its tier's per-minute and
per-day limits and across all its users at 10 times those (\`appminute\`, \`appday\`), anonymous callers and failed authentications 100 per hour
per IP. 429 carries \`Retry-After\` and \`retry_after\`. \`GET /api/v1/health\` and this
document are never rate limited (monitors poll them) and carry no rate-limit headers.

**Webhooks.** Endpoints receive \`POST\` requests with a JSON body \`{"type", "timestamp",
"data"}\` (\`data\`: the resource as this API returns it), signed as Standard Webhooks v1:
\`webhook-id\` (the event's id, the same on every retry: deduplicate by it),
\`webhook-timestamp\` (Unix seconds) and \`webhook-signature\` (\`v1,<base64 HMAC-SHA256>\` of
\`<id>.<timestamp>.<body>\` with the secret's base64 part decoded; during a rotation two
signatures, space-separated). Verify with the \`standardwebhooks\` or \`svix\` packages. Any 2xx
is a success; anything else, a timeout (10 s) or a refused target is retried with exponential
backoff for about three days. Redirects are not followed. Events are not ordered.

**Gateway.** A deployment may serve its gateway only: a request that reaches a function around
it is answered 403 \`GATEWAY_REQUIRED\`.

**Error codes**

`;

/** Builds the document from the manifest (pure; see `openapi/handler.ts`). */
export function buildOpenApiDocument(): Json {
  return {
    openapi: "3.1.1",
    info: {
      title: "Torvus API",
      version: API_VERSION,
      description: DESCRIPTION.trimStart() + catalogue(),
    },
    // `x-internal`: both are public (OWASP API9, inventory).
    servers: [
      {
        url: "/",
        description: "The host that served this document: production, or a local stack",
        "x-internal": false,
      },
      { url: "https://api.torvussecurity.com", description: "Production", "x-internal": false },
    ],
    tags: TAGS.map((t) => ({ ...t })),
    paths: paths(),
    components: {
      schemas: schemaComponents(),
      responses: {
        // Rate-limit headers where the path is rate limited (not on health and the reference).
        MethodNotAllowed: responseObject("Method not allowed on this path", [
          { schema: ref("MethodNotAllowedError"), headers: decided("Allow") },
          { headers: new Set([...COMMON, "Allow"]) },
        ]),
        // Answered before credentials and rate limiting, on every path.
        Preflight: responseObject("CORS preflight (`OPTIONS`): no body", [{
          headers: new Set([
            ...COMMON,
            "Allow",
            "Access-Control-Allow-Methods",
            "Access-Control-Allow-Headers",
            "Access-Control-Max-Age",
          ]),
        }]),
      },
      headers: HEADERS,
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "A Supabase Auth access token (valid one hour), verified as RFC8725 " +
            "(JSON Web Token Best Current Practices) asks: the algorithms are pinned by " +
            "configuration (ES256 or RS256 from the project's JWKS; HS256 only where a legacy " +
            "secret is configured), never taken from the token, so `none` is refused; the " +
            "issuer, the audience, `exp` and `sub` are required and checked.",
        },
        apiKeyAuth: {
          type: "apiKey",
          in: "header",
          name: "X-API-Key",
          description: "An API key: `sk_live_…` or `sk_test_…`",
        },
      },
    },
  };
}
