/**
 * The OpenAPI document served at `/api/openapi.json`:
 *
 * - valid OpenAPI 3.1 for a maintained validator (@seriousme/openapi-schema-validator), and the
 *   same document the code builds;
 * - complete: every gateway route × method of every function (checked against the live `Allow`
 *   headers too), both security schemes, every error code with its status;
 * - true: real answers of the dev server to every documented operation, errors included (401,
 *   403, 404, 405, 400, 409, 413, 415, 419, 429), match the JSON Schema (ajv, draft 2020-12,
 *   strict) and the required headers documented for their path, method and status.
 */
import assert from "node:assert/strict";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { Validator } from "@seriousme/openapi-schema-validator";
import {
  type FunctionName,
  GATEWAY_ROUTES,
  resolveGatewayPath,
} from "../supabase/functions/_shared/routes.ts";
import { type ErrorCode, ERRORS } from "../supabase/functions/_shared/errors.ts";
import type { RouteSpec } from "../supabase/functions/_shared/http/spec.ts";
import { MANIFEST } from "../supabase/functions/_shared/manifest.ts";
import { openApiDocument } from "../supabase/functions/openapi/handler.ts";
import { setKeyExpiry, setKeyStatus } from "../tools/admin/ops.ts";
import { startReceiver } from "./_support/receiver.ts";
import { waitFor } from "./_support/dev_server.ts";
import { MAX_WEBHOOK_ENDPOINTS } from "../supabase/functions/_shared/schemas/webhooks.ts";
import { api, type ApiInit, type ApiResponse, e2e, uniqueIp } from "./_harness.ts";
import { undocumentedHeaders } from "./_documented_headers.ts";
import { EXPOSED_HEADERS } from "../supabase/functions/_shared/http/respond.ts";
import { closeDb, db, newKey, newTier, newUser } from "./_fixtures.ts";
import { appToken, grantApp, newApp } from "./_support/apps.ts";

type Json = Record<string, unknown>;

// ajv-formats' CommonJS default export, as Deno's npm interop presents it.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

const routesOf = (name: FunctionName) => MANIFEST[name].routes as readonly RouteSpec[];

/** Codes the catalogue holds that no code path raises (so no operation documents them). */
const NOT_RAISED: readonly ErrorCode[] = [];

const BASE = "https://openapi.torvus.test/openapi.json";
const UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000";
const UNKNOWN_ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

/** A JSON pointer (`#/a/b~1c`) into the document. */
function pointer(segments: readonly string[]): string {
  return "#/" + segments.map((s) => encodeURIComponent(s.replace(/~/g, "~0").replace(/\//g, "~1")))
    .join("/");
}

interface Expect {
  status: number;
  code?: string;
}

/** Validates real answers against the document and remembers which it saw. */
class Conformance {
  readonly #ajv: Ajv2020;
  readonly #validators = new Map<string, ValidateFunction>();
  readonly #problems: string[] = [];
  /** `METHOD template status` of every answer checked. */
  readonly seen = new Set<string>();

  constructor(readonly document: Json) {
    this.#ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
    addFormats(this.#ajv);
    // The document's own members are not JSON Schema keywords; its schemas live below them.
    this.#ajv.addVocabulary(["openapi", "info", "servers", "tags", "paths", "components"]);
    this.#ajv.addSchema({ ...document, $id: BASE });
  }

  /** The node at `segments`, following local `$ref`s (components) on the way. */
  at(segments: readonly string[]): Json | undefined {
    let node: Json | undefined = this.document;
    for (const key of segments) node = this.deref(node?.[key]);
    return node;
  }

  deref(value: unknown): Json | undefined {
    let node = value as Json | undefined;
    for (let hops = 0; typeof node?.$ref === "string" && hops < 10; hops++) {
      const ref = node.$ref as string;
      assert.ok(ref.startsWith("#/"), `only local references: ${ref}`);
      node = this.at(ref.slice(2).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~")));
    }
    return node;
  }

  #compile(key: string, schema: Json): ValidateFunction {
    let v = this.#validators.get(key);
    if (!v) {
      v = this.#ajv.compile(schema);
      this.#validators.set(key, v);
    }
    return v;
  }

  /** Checks one answer to `method` on the documented path `template`. */
  check(method: string, template: string, r: ApiResponse): void {
    const label = `${method} ${template} ${r.status}`;
    const item = this.at(["paths", template]);
    assert.ok(item, `path ${template} is documented`);
    const m = method.toLowerCase();
    let location: string[];
    if (item[m]) {
      location = ["paths", template, m, "responses", String(r.status)];
    } else if (method === "OPTIONS") {
      assert.equal(r.status, 204, `${template}: the CORS preflight is 204`);
      location = ["components", "responses", "Preflight"];
    } else {
      assert.equal(r.status, 405, `${method} ${template} is not documented: only 405 fits`);
      location = ["components", "responses", "MethodNotAllowed"];
    }
    const response = this.at(location);
    if (!response) {
      this.#problems.push(`${label}: status not documented; body ${r.text.slice(0, 300)}`);
      return;
    }
    this.seen.add(label);
    for (const name of undocumentedHeaders(response, r.headers)) {
      this.#problems.push(`${label}: sends ${name}, which the document does not list`);
    }
    for (const [name, raw] of Object.entries((response.headers ?? {}) as Json)) {
      const header = this.deref(raw)!;
      const value = r.headers.get(name);
      if (value === null) {
        if (header.required) this.#problems.push(`${label}: required header ${name} is missing`);
        continue;
      }
      const schema = header.schema as Json;
      const typed = schema.type === "integer" || schema.type === "number" ? Number(value) : value;
      if (!this.#compile(`header ${JSON.stringify(schema)}`, schema)(typed)) {
        this.#problems.push(`${label}: header ${name}: "${value}" does not match its schema`);
      }
    }
    if (!response.content) {
      if (r.text !== "") this.#problems.push(`${label}: undocumented body ${r.text}`);
      return;
    }
    if (r.headers.get("content-type") !== "application/json") {
      this.#problems.push(`${label}: Content-Type is ${r.headers.get("content-type")}`);
      return;
    }
    // A response given by reference is validated where it is defined.
    const raw = location.reduce<Json>((node, key) => node[key] as Json, this.document);
    const base = typeof raw.$ref === "string"
      ? (raw.$ref as string).slice(2).split("/").map((s) => s.replace(/~1/g, "/"))
      : location;
    const at = pointer([...base, "content", "application/json", "schema"]);
    const validate = this.#compile(at, { $ref: BASE + at });
    if (!validate(r.body)) {
      this.#problems.push(
        `${label}: body does not match: ${this.#ajv.errorsText(validate.errors)}; ` +
          `body ${r.text.slice(0, 400)}`,
      );
    }
  }

  /** Calls the API; checks the status (and code) expected and the answer against the document. */
  async call(
    method: string,
    template: string,
    path: string,
    init: ApiInit,
    expect: Expect,
  ): Promise<ApiResponse> {
    const r = await api(path, { ...init, method });
    assert.equal(r.status, expect.status, `${method} ${path}: ${r.text.slice(0, 300)}`);
    if (expect.code !== undefined) assert.equal(r.body?.code, expect.code, r.text);
    this.check(method, template, r);
    return r;
  }

  /** Fails with every mismatch found since the last call. */
  assertConforming(): void {
    const problems = this.#problems.splice(0);
    assert.deepEqual(
      problems,
      [],
      `answers that do not match the document:\n${problems.join("\n")}`,
    );
  }
}

let conformance: Conformance | undefined;

/** The served document, checked once, and a validator of answers against it. */
async function served(): Promise<Conformance> {
  if (conformance) return conformance;
  const r = await api("/api/openapi.json", { ip: uniqueIp() });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  conformance = new Conformance(r.body);
  conformance.check("GET", "/api/openapi.json", r);
  conformance.assertConforming();
  return conformance;
}

/** A test of which every answer checked with `c` must be one the served document allows. */
function conforming(name: string, fn: (c: Conformance) => Promise<void>): void {
  e2e(name, async () => {
    const c = await served();
    await fn(c);
    c.assertConforming();
  });
}

const json = (body: unknown, headers: Record<string, string> = {}): ApiInit => ({
  headers: { "Content-Type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/** A caller from a fresh address: `as` sends its credential `headers`, `sending(body)` a body too. */
function caller(headers: Record<string, string>) {
  const ip = uniqueIp();
  const as: ApiInit = { ip, headers };
  return { ip, as, sending: (body: unknown): ApiInit => ({ ip, ...json(body, headers) }) };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

e2e("the served document is valid OpenAPI 3.1 and is the one the code builds", async () => {
  const r = await api("/api/openapi.json", { ip: uniqueIp() });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.equal(r.headers.get("cache-control"), "public, max-age=300");
  const validator = new Validator();
  const result = await validator.validate(r.body);
  assert.deepEqual(result, { valid: true }, JSON.stringify(result.errors, null, 2));
  assert.equal(validator.version, "3.1");
  assert.match(r.body.openapi, /^3\.1\.\d+$/);
  assert.deepEqual(r.body, openApiDocument());
});

e2e("every gateway route and method is documented with its credentials", async () => {
  const c = await served();
  const { document } = c;
  const paths = document.paths as Record<string, Json>;
  const expected = new Map<string, { methods: Set<string>; credentials: string }>();
  for (const gateway of GATEWAY_ROUTES) {
    const target = gateway.target.split("/").filter((s) => s !== "");
    for (const spec of routesOf(gateway.function)) {
      if (spec.auth !== gateway.credentials) continue;
      const parts = spec.path.split("/").filter((s) => s !== "");
      if (target.some((t, i) => parts[i] !== t)) continue;
      const rest = parts.slice(target.length).map((p) => p.startsWith(":") ? `{${p.slice(1)}}` : p);
      const template = [gateway.path, ...rest].join("/");
      expected.set(template, {
        methods: new Set(Object.keys(spec.methods).map((m) => m.toLowerCase())),
        credentials: gateway.credentials,
      });
    }
    assert.ok(paths[gateway.path], `gateway path ${gateway.path} is documented`);
  }
  assert.deepEqual(Object.keys(paths).sort(), [...expected.keys()].sort());

  const scheme = { none: undefined, jwt: "bearerAuth", api_key: "apiKeyAuth" } as const;
  const ip = uniqueIp();
  for (const [template, { methods, credentials }] of expected) {
    const item = paths[template]!;
    const documented = Object.keys(item).filter((k) => k !== "parameters");
    assert.deepEqual(new Set(documented), methods, `methods of ${template}`);
    for (const method of methods) {
      const security = (item[method] as Json).security as Json[];
      const name = scheme[credentials as keyof typeof scheme];
      assert.deepEqual(security.flatMap((s) => Object.keys(s)), name ? [name] : [], template);
    }
    // The live routing agrees: the gateway resolves the path and OPTIONS lists the methods.
    const sample = template.replace(
      /\{[a-z_]+\}/g,
      template.includes("vaults") ? UNKNOWN_UUID : UNKNOWN_ULID,
    );
    assert.ok(resolveGatewayPath(sample), `${sample} resolves`);
    const r = await api(sample, { method: "OPTIONS", ip });
    assert.equal(r.status, 204);
    const allow = new Set((r.headers.get("allow") ?? "").split(",").map((m) => m.trim()));
    assert.deepEqual(allow, new Set([...methods].map((m) => m.toUpperCase()).concat("OPTIONS")));
    // Its headers, names and values, are those of components.responses.Preflight.
    c.check("OPTIONS", template, r);
  }
  c.assertConforming();

  const schemes = (document.components as Json).securitySchemes as Json;
  assert.deepEqual(schemes.bearerAuth, {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: (schemes.bearerAuth as Json).description,
  });
  assert.equal((schemes.apiKeyAuth as Json).type, "apiKey");
  assert.equal((schemes.apiKeyAuth as Json).in, "header");
  assert.equal((schemes.apiKeyAuth as Json).name, "X-API-Key");
});

e2e("every error code of the catalogue is documented with its status", async () => {
  const c = await served();
  const components = c.document.components as Json;
  const schemas = components.schemas as Record<string, Json>;
  assert.deepEqual(schemas.ErrorCode!.enum, Object.keys(ERRORS));
  for (const code of Object.keys(ERRORS)) {
    assert.ok(((c.document.info as Json).description as string).includes(`\`${code}\``), code);
  }
  const special: Record<string, ErrorCode> = {
    "#/components/schemas/RateLimitError": "RATE_LIMIT_EXCEEDED",
    "#/components/schemas/ValidationError": "VALIDATION_FAILED",
    "#/components/schemas/InsufficientScopeError": "INSUFFICIENT_SCOPE",
    "#/components/schemas/MethodNotAllowedError": "METHOD_NOT_ALLOWED",
  };
  const found = new Map<string, Set<number>>();
  const note = (code: string, status: number) => {
    found.set(code, (found.get(code) ?? new Set()).add(status));
  };
  const walk = (node: unknown, status: number): void => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, status));
    if (node === null || typeof node !== "object") return;
    const n = node as Json;
    if (typeof n.$ref === "string" && special[n.$ref]) note(special[n.$ref]!, status);
    const code = (n.properties as Json | undefined)?.code as Json | undefined;
    if (code?.const !== undefined) note(code.const as string, status);
    for (const value of (code?.enum ?? []) as string[]) note(value, status);
    Object.values(n).forEach((v) => walk(v, status));
  };
  for (const item of Object.values(c.document.paths as Record<string, Json>)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === "parameters") continue;
      for (const [status, response] of Object.entries((op as Json).responses as Json)) {
        if (Number(status) >= 400) walk(response, Number(status));
      }
    }
  }
  walk(components.responses, 405);
  for (const [code, statuses] of found) {
    assert.ok(code in ERRORS, `documented code ${code} is catalogued`);
    assert.deepEqual([...statuses], [ERRORS[code as ErrorCode].status], `status of ${code}`);
  }
  const undocumented = Object.keys(ERRORS).filter((code) => !found.has(code));
  assert.deepEqual(undocumented, NOT_RAISED, "catalogued codes no operation documents");
});

e2e("the conformance check catches answers the document does not allow", async () => {
  const c = new Conformance((await served()).document);
  const requestId = crypto.randomUUID();
  const fake = (status: number, body: unknown, headers: Record<string, string> = {}) => ({
    status,
    headers: new Headers({
      "Content-Type": "application/json",
      "X-Request-ID": requestId,
      "X-Response-Time": "1.00",
      "X-RateLimit-Limit": "10",
      "X-RateLimit-Remaining": "9",
      "X-RateLimit-Reset": String(Math.ceil(Date.now() / 1000) + 60),
      "RateLimit": '"minute";r=9;t=60',
      "RateLimit-Policy": '"minute";q=10;w=60',
      "Cache-Control": "no-store",
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Expose-Headers": EXPOSED_HEADERS,
      ...headers,
    }),
    text: JSON.stringify(body),
    body,
  });
  const error = (code: string, extra: Json = {}) => ({
    error: "unauthorized",
    message: "y",
    code,
    ...extra,
    request_id: requestId,
  });
  const bearer = { "WWW-Authenticate": 'Bearer realm="torvus"' };
  const apiKey = { "WWW-Authenticate": 'ApiKey realm="torvus", header="X-API-Key"' };
  const cases: Array<[RegExp, () => void]> = [
    [/must NOT have additional properties/, () =>
      c.check(
        "GET",
        "/api/me",
        fake(200, {
          id: crypto.randomUUID(),
          email: null,
          created_at: new Date().toISOString(),
          role: "admin",
        }),
      )],
    [
      /must have required property 'statusCode'/,
      () => c.check("GET", "/api/me", fake(401, error("MISSING_AUTH_TOKEN"), bearer)),
    ],
    [
      /must NOT have additional properties; body .*"statusCode"/,
      () =>
        c.check(
          "GET",
          "/api/v1/test",
          fake(401, error("MISSING_API_KEY", { statusCode: 401 }), apiKey),
        ),
    ],
    [
      /must be equal to one of the allowed values/,
      () =>
        c.check("GET", "/api/me", fake(401, error("TOKEN_EXPIRED", { statusCode: 401 }), bearer)),
    ],
    [
      /required header WWW-Authenticate is missing/,
      () => c.check("GET", "/api/me", fake(401, error("MISSING_AUTH_TOKEN", { statusCode: 401 }))),
    ],
    [
      /header X-RateLimit-Remaining: "-1"/,
      () =>
        c.check(
          "GET",
          "/api/v1/test",
          fake(401, error("MISSING_API_KEY"), { ...apiKey, "X-RateLimit-Remaining": "-1" }),
        ),
    ],
    [/status not documented/, () => c.check("GET", "/api/v1/health", fake(418, {}))],
    [
      /sends x-powered-by, which the document does not list/,
      () =>
        c.check(
          "GET",
          "/api/v1/test",
          fake(401, error("MISSING_API_KEY"), { ...apiKey, "X-Powered-By": "PHP" }),
        ),
    ],
    [
      /header Access-Control-Allow-Origin: "https:\/\/example.com"/,
      () =>
        c.check(
          "GET",
          "/api/v1/test",
          fake(401, error("MISSING_API_KEY"), {
            ...apiKey,
            "Access-Control-Allow-Origin": "https://example.com",
          }),
        ),
    ],
  ];
  for (const [problem, run] of cases) {
    run();
    assert.throws(() => c.assertConforming(), problem);
  }
});

conforming("health and the reference itself answer as documented", async (c) => {
  const ip = uniqueIp();
  await c.call("GET", "/api/v1/health", "/api/v1/health", { ip }, { status: 200 });
  await c.call("POST", "/api/v1/health", "/api/v1/health", { ip }, { status: 405 });
  await c.call("GET", "/api/openapi.json", "/api/openapi.json", { ip }, { status: 200 });
  await c.call("DELETE", "/api/openapi.json", "/api/openapi.json", { ip }, { status: 405 });
});

conforming("GET /api/v1/test answers every documented outcome as documented", async (c) => {
  const t = "/api/v1/test";
  const ip = uniqueIp();
  const key = await newKey();
  const as = (apiKey: string): ApiInit => ({ ip, headers: { "X-API-Key": apiKey } });
  await c.call("GET", t, t, as(key.key), { status: 200 });
  await c.call("GET", t, t, { ip }, { status: 401, code: "MISSING_API_KEY" });
  await c.call("GET", t, t, as("pk_live_nope"), { status: 401, code: "INVALID_API_KEY_FORMAT" });
  const corrupted = key.key.slice(0, -1) + (key.key.endsWith("A") ? "B" : "A");
  await c.call("GET", t, t, as(corrupted), { status: 401, code: "INVALID_API_KEY" });
  const revoked = await newKey();
  await setKeyStatus(db(), revoked.id, "revoked");
  await c.call("GET", t, t, as(revoked.key), { status: 401, code: "API_KEY_NOT_ACTIVE" });
  const expired = await newKey();
  await setKeyExpiry(db(), expired.id, new Date(Date.now() - 60_000));
  await c.call("GET", t, t, as(expired.key), { status: 401, code: "API_KEY_EXPIRED" });
  const fenced = await newKey({ tier: "enterprise", ipAllowlist: ["10.0.0.0/8"] });
  await c.call("GET", t, t, as(fenced.key), { status: 403, code: "IP_NOT_ALLOWED" });
  await c.call("POST", t, t, as(key.key), { status: 405 });

  const limited = await newKey({ tier: await newTier(1, 1000) });
  await c.call("GET", t, t, as(limited.key), { status: 200 });
  const r = await c.call("GET", t, t, as(limited.key), {
    status: 429,
    code: "RATE_LIMIT_EXCEEDED",
  });
  assert.ok(Number(r.headers.get("retry-after")) >= 1);
});

conforming("GET /api/me answers every documented outcome as documented", async (c) => {
  const t = "/api/me";
  const ip = uniqueIp();
  const as = (headers: Record<string, string>): ApiInit => ({ ip, headers });
  const user = await newUser();
  await c.call("GET", t, t, as(bearer(user.token)), { status: 200 });
  await c.call("GET", t, t, { ip }, { status: 401, code: "MISSING_AUTH_TOKEN" });
  await c.call("GET", t, t, as({ Authorization: "Bearer a b" }), {
    status: 401,
    code: "INVALID_AUTH_TOKEN",
  });
  await c.call("GET", t, t, as(bearer("a.b.c")), { status: 401, code: "INVALID_AUTH_TOKEN" });
  const expired = await newUser(-60);
  await c.call("GET", t, t, as(bearer(expired.token)), { status: 419, code: "TOKEN_EXPIRED" });
  await c.call("DELETE", t, t, as(bearer(user.token)), { status: 405 });
  // Third-party apps' tokens: granted, without the scope, without a grant.
  const app = await newApp();
  await grantApp(user, app, ["profile:read"]);
  await c.call("GET", t, t, as(bearer(await appToken(user, app.clientId))), { status: 200 });
  const narrow = await newApp();
  await grantApp(user, narrow, ["vaults:read"]);
  await c.call("GET", t, t, as(bearer(await appToken(user, narrow.clientId))), {
    status: 403,
    code: "INSUFFICIENT_SCOPE",
  });
  await c.call("GET", t, t, as(bearer(await appToken(user, crypto.randomUUID()))), {
    status: 401,
    code: "APP_GRANT_NOT_ACTIVE",
  });

  // Failed authentications count against the client address: 100 per hour.
  const crowded = uniqueIp();
  let last: ApiResponse | undefined;
  for (let i = 0; i < 110; i++) {
    last = await api(t, { ip: crowded, headers: { Authorization: "Bearer a.b.c" } });
    if (last.status === 429) break;
  }
  assert.equal(last?.status, 429, "the per-IP limit was reached");
  c.check("GET", t, last!);
  assert.equal(last!.body.statusCode, 429, "bearer-token routes carry statusCode");
});

conforming("GET /api/account answers every documented outcome as documented", async (c) => {
  const t = "/api/account";
  const { as } = caller(bearer((await newUser()).token));
  await c.call("GET", t, t, as, { status: 200 });
  await c.call("GET", t, t, { ip: uniqueIp() }, { status: 401, code: "MISSING_AUTH_TOKEN" });
  const expired = caller(bearer((await newUser(-60)).token));
  await c.call("GET", t, t, expired.as, { status: 419, code: "TOKEN_EXPIRED" });
  const gone = await newUser();
  await db()`delete from auth.users where id = ${gone.userId}`;
  await c.call("GET", t, t, caller(bearer(gone.token)).as, { status: 404, code: "NOT_FOUND" });
  await c.call("PUT", t, t, as, { status: 405 });
  const user = await newUser();
  const app = await newApp();
  await grantApp(user, app);
  await c.call("GET", t, t, caller(bearer(await appToken(user, app.clientId))).as, {
    status: 403,
    code: "APP_TOKEN_NOT_ACCEPTED",
  });
});

conforming(
  "vaults with a bearer token answer every documented outcome as documented",
  async (c) => {
    const list = "/api/vaults";
    const item = "/api/vaults/{id}";
    const auth = bearer((await newUser()).token);
    const { ip, as, sending } = caller(auth);
    await c.call("GET", list, list, as, { status: 200 });
    const created = await c.call(
      "POST",
      list,
      list,
      sending({ name: "n", description: "d", tags: ["t"] }),
      { status: 201 },
    );
    const at = `${list}/${created.body.id}`;
    await c.call("GET", item, at, as, { status: 200 });
    await c.call("PATCH", item, at, sending({ name: "m", description: null }), { status: 200 });
    await c.call("PATCH", item, at, sending({}), { status: 400, code: "VALIDATION_FAILED" });
    // A third-party app's token that may read and write, not delete.
    const owner = await newUser();
    const app = await newApp();
    await grantApp(owner, app, ["vaults:read", "vaults:write"]);
    const byApp = caller(bearer(await appToken(owner, app.clientId)));
    const made = await c.call("POST", list, list, byApp.sending({ name: "a" }), { status: 201 });
    const its = `${list}/${made.body.id}`;
    await c.call("PATCH", item, its, byApp.sending({ status: "inactive" }), {
      status: 403,
      code: "INSUFFICIENT_SCOPE",
    });
    await c.call("DELETE", item, its, byApp.as, { status: 403, code: "INSUFFICIENT_SCOPE" });
    await c.call("DELETE", item, at, as, { status: 204 });
    await c.call("GET", list, `${list}?status=inactive&limit=5`, as, { status: 200 });
    await c.call("GET", item, `${list}/${UNKNOWN_UUID}`, as, { status: 404, code: "NOT_FOUND" });
    await c.call("GET", item, `${list}/not-a-uuid`, as, { status: 404, code: "NOT_FOUND" });
    await c.call("GET", list, `${list}?limit=0`, as, { status: 400, code: "VALIDATION_FAILED" });
    await c.call("POST", list, list, sending({ name: "" }), {
      status: 400,
      code: "VALIDATION_FAILED",
    });
    await c.call("POST", list, list, {
      ip,
      headers: { ...auth, "Content-Type": "application/json" },
      body: "{",
    }, { status: 400, code: "INVALID_JSON" });
    await c.call("POST", list, list, { ip, headers: auth, body: "name" }, {
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
    });
    await c.call("POST", list, list, sending({ name: "x".repeat(70_000) }), {
      status: 413,
      code: "PAYLOAD_TOO_LARGE",
    });
    await c.call("PUT", list, list, as, { status: 405 });
    await c.call("GET", list, list, { ip }, { status: 401, code: "MISSING_AUTH_TOKEN" });
  },
);

conforming("vaults with an API key answer every documented outcome as documented", async (c) => {
  const list = "/api/v1/vaults";
  const item = "/api/v1/vaults/{id}";
  const key = await newKey({ scopes: ["read", "write", "delete"] });
  const { ip, as, sending } = caller({ "X-API-Key": key.key });
  const reader = caller({ "X-API-Key": (await newKey({ scopes: ["read"] })).key });
  await c.call("GET", list, list, as, { status: 200 });
  const created = await c.call("POST", list, list, sending({ name: "n" }), { status: 201 });
  const at = `${list}/${created.body.id}`;
  await c.call("GET", item, at, as, { status: 200 });
  await c.call("PATCH", item, at, sending({ tags: ["a"] }), { status: 200 });
  await c.call("DELETE", item, at, reader.as, { status: 403, code: "INSUFFICIENT_SCOPE" });
  await c.call("DELETE", item, at, as, { status: 204 });
  await c.call("POST", list, list, reader.sending({ name: "n" }), {
    status: 403,
    code: "INSUFFICIENT_SCOPE",
  });
  await c.call("GET", item, `${list}/${UNKNOWN_UUID}`, as, { status: 404, code: "NOT_FOUND" });
  await c.call("POST", list, list, sending({ nme: "typo" }), {
    status: 400,
    code: "VALIDATION_FAILED",
  });
  await c.call("PUT", item, at, as, { status: 405 });
  await c.call("GET", list, list, { ip }, { status: 401, code: "MISSING_API_KEY" });
});

conforming("API-key management answers every documented outcome as documented", async (c) => {
  const list = "/api/keys";
  const auth = bearer((await newUser()).token);
  const { ip, as, sending } = caller(auth);
  await c.call("GET", list, list, as, { status: 200 });
  const created = await c.call(
    "POST",
    list,
    list,
    sending({ name: "ci", mode: "test", scopes: ["read", "write"], expires_in: "90d" }),
    { status: 201 },
  );
  const id = created.body.id as string;
  await c.call("GET", "/api/keys/{id}", `${list}/${id}`, as, { status: 200 });
  await c.call("GET", list, `${list}?mode=test&status=active`, as, { status: 200 });
  const rolled = await c.call(
    "POST",
    "/api/keys/{id}/roll",
    `${list}/${id}/roll`,
    sending({ grace_period_seconds: 0 }),
    { status: 201 },
  );
  const next = rolled.body.id as string;
  await c.call("POST", "/api/keys/{id}/roll", `${list}/${next}/roll`, as, { status: 201 });
  await c.call("POST", "/api/keys/{id}/revoke", `${list}/${next}/revoke`, as, { status: 200 });
  await c.call("POST", "/api/keys/{id}/roll", `${list}/${next}/roll`, as, {
    status: 409,
    code: "KEY_NOT_ACTIVE",
  });
  await c.call(
    "POST",
    list,
    list,
    sending({ name: "fenced", mode: "live", ip_allowlist: ["10.0.0.0/8"] }),
    { status: 403, code: "IP_ALLOWLIST_REQUIRES_ENTERPRISE" },
  );
  await c.call("POST", list, list, sending({ name: "no mode" }), {
    status: 400,
    code: "VALIDATION_FAILED",
  });
  await c.call("GET", list, `${list}?mode=bogus`, as, { status: 400, code: "VALIDATION_FAILED" });
  await c.call("GET", "/api/keys/{id}", `${list}/${UNKNOWN_ULID}`, as, {
    status: 404,
    code: "NOT_FOUND",
  });
  await c.call("POST", "/api/keys/{id}/revoke", `${list}/${UNKNOWN_ULID}/revoke`, as, {
    status: 404,
    code: "NOT_FOUND",
  });
  await c.call("DELETE", "/api/keys/{id}", `${list}/${id}`, as, { status: 405 });
  const expired = await newUser(-60);
  await c.call("GET", list, list, { ip, headers: { Authorization: `Bearer ${expired.token}` } }, {
    status: 419,
    code: "TOKEN_EXPIRED",
  });
});

conforming("usage answers every documented outcome as documented", async (c) => {
  const key = await newKey();
  const { ip, as } = caller(bearer((await newUser(3600, key.email)).token));
  const item = "/api/keys/{id}/usage";
  await c.call("GET", item, `/api/keys/${key.id}/usage?granularity=hour`, as, { status: 200 });
  await c.call("GET", item, `/api/keys/${UNKNOWN_ULID}/usage`, as, {
    status: 404,
    code: "NOT_FOUND",
  });
  await c.call("GET", item, `/api/keys/${key.id}/usage?granularity=week`, as, {
    status: 400,
    code: "VALIDATION_FAILED",
  });
  await c.call("GET", "/api/usage", `/api/usage?mode=test&from=2026-11-01`, as, { status: 200 });
  await c.call("GET", "/api/usage", `/api/usage?key_id=${UNKNOWN_ULID}`, as, {
    status: 404,
    code: "NOT_FOUND",
  });
  await c.call("GET", "/api/usage", "/api/usage", { ip }, {
    status: 401,
    code: "MISSING_AUTH_TOKEN",
  });
});

e2e("webhooks answer every documented outcome as documented", async () => {
  const c = await served();
  const list = "/api/webhooks";
  const item = "/api/webhooks/{id}";
  const auth = bearer((await newUser()).token);
  const { ip, as, sending } = caller(auth);
  // A receiver that holds its first request until the test lets it go (an attempt in flight).
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const receiver = startReceiver(async (n) => {
    if (n === 1) await held;
    return new Response("ok");
  });
  try {
    await c.call("GET", list, list, as, { status: 200 });
    const created = await c.call(
      "POST",
      list,
      list,
      sending({ url: receiver.url, events: ["vault.created"], mode: "test" }),
      { status: 201 },
    );
    const at = `${list}/${created.body.id}`;
    await c.call("GET", item, at, as, { status: 200 });
    await c.call("PATCH", item, at, sending({ description: "hooks" }), { status: 200 });
    await c.call("PATCH", item, at, sending({}), { status: 400, code: "VALIDATION_FAILED" });
    await c.call("POST", `${item}/rotate`, `${at}/rotate`, as, { status: 200 });
    const sent = await c.call("POST", `${item}/test`, `${at}/test`, as, { status: 202 });
    await receiver.waitFor(1, 5_000);
    const retry = `${item}/deliveries/{delivery_id}/retry`;
    await c.call("POST", retry, `${at}/deliveries/${sent.body.id}/retry`, as, {
      status: 409,
      code: "DELIVERY_IN_PROGRESS",
    });
    release();
    await c.call("GET", `${item}/deliveries`, `${at}/deliveries?status=pending`, as, {
      status: 200,
    });
    await waitFor("the held delivery is recorded", async () => {
      const r = await api(`${at}/deliveries`, as);
      return r.body.data[0]?.status === "succeeded";
    }, 10_000);
    await c.call("POST", retry, `${at}/deliveries/${sent.body.id}/retry`, as, { status: 202 });
    await c.call("POST", retry, `${at}/deliveries/${UNKNOWN_ULID}/retry`, as, {
      status: 404,
      code: "NOT_FOUND",
    });
    await c.call("PATCH", item, at, sending({ status: "disabled" }), { status: 200 });
    await c.call("POST", `${item}/test`, `${at}/test`, as, {
      status: 409,
      code: "WEBHOOK_DISABLED",
    });
    await c.call("GET", item, `${list}/${UNKNOWN_ULID}`, as, { status: 404, code: "NOT_FOUND" });
    await c.call("POST", list, list, sending({ url: "http://x.example.com/" }), {
      status: 400,
      code: "VALIDATION_FAILED",
    });
    await c.call("DELETE", item, at, as, { status: 204 });
    await c.call("PUT", item, at, as, { status: 405 });
    await c.call("GET", list, list, { ip }, { status: 401, code: "MISSING_AUTH_TOKEN" });
    const full = caller(bearer((await newUser()).token));
    for (let i = 0; i < MAX_WEBHOOK_ENDPOINTS; i++) {
      const r = await api(list, {
        ...full.sending({ url: `https://h${i}.example.com/`, events: ["vault.created"] }),
        method: "POST",
      });
      assert.equal(r.status, 201, r.text);
    }
    await c.call(
      "POST",
      list,
      list,
      full.sending({ url: "https://over.example.com/", events: ["vault.created"] }),
      { status: 409, code: "WEBHOOK_LIMIT_REACHED" },
    );
    c.assertConforming();
  } finally {
    release();
    await receiver.close();
  }
});

conforming("apps answer every documented outcome as documented", async (c) => {
  const list = "/api/apps";
  const item = "/api/apps/{id}";
  const { ip, as, sending } = caller(bearer((await newUser()).token));
  const app = {
    name: "Conformance app",
    redirect_uris: ["https://app.example.com/cb"],
    scopes: ["vaults:read"],
  };
  await c.call("GET", list, list, as, { status: 200 });
  const created = await c.call("POST", list, list, sending(app), { status: 201 });
  const pub = await c.call("POST", list, list, sending({ ...app, client_type: "public" }), {
    status: 201,
  });
  await c.call("POST", list, list, sending({ ...app, redirect_uris: ["http://x.example/"] }), {
    status: 400,
    code: "VALIDATION_FAILED",
  });
  const at = `${list}/${created.body.id}`;
  await c.call("GET", item, at, as, { status: 200 });
  await c.call("PATCH", item, at, sending({ name: "Renamed" }), { status: 200 });
  await c.call("POST", `${item}/rotate`, `${at}/rotate`, as, { status: 200 });
  await c.call("GET", `${item}/usage`, `${at}/usage?granularity=hour`, as, { status: 200 });
  await c.call("GET", `${item}/usage`, `${at}/usage?granularity=week`, as, {
    status: 400,
    code: "VALIDATION_FAILED",
  });
  await c.call("POST", `${item}/rotate`, `${list}/${pub.body.id}/rotate`, as, {
    status: 409,
    code: "APP_IS_PUBLIC",
  });
  await c.call("DELETE", item, at, as, { status: 204 });
  await c.call("GET", item, at, as, { status: 404, code: "NOT_FOUND" });
  await c.call("PUT", item, at, as, { status: 405 });
  await c.call("GET", list, list, { ip }, { status: 401, code: "MISSING_AUTH_TOKEN" });
});

conforming("grants answer every documented outcome as documented", async (c) => {
  const list = "/api/grants";
  const consent = "/api/grants/apps/{client_id}";
  const revoke = "/api/grants/{id}/revoke";
  const developer = caller(bearer((await newUser()).token));
  const app = await api("/api/apps", {
    ...developer.sending({
      name: "Conformance grants",
      redirect_uris: ["https://app.example.com/cb"],
      scopes: ["vaults:read", "profile:read"],
    }),
    method: "POST",
  });
  assert.equal(app.status, 201, app.text);
  const clientId = app.body.client_id as string;
  const { ip, as, sending } = caller(bearer((await newUser()).token));
  await c.call("GET", consent, `${list}/apps/${clientId}`, as, { status: 200 });
  await c.call("GET", consent, `${list}/apps/${UNKNOWN_UUID}`, as, {
    status: 404,
    code: "NOT_FOUND",
  });
  const granted = await c.call(
    "POST",
    list,
    list,
    sending({ client_id: clientId, scopes: ["vaults:read"] }),
    { status: 201 },
  );
  await c.call("POST", list, list, sending({ client_id: clientId, scopes: ["vaults:write"] }), {
    status: 400,
    code: "VALIDATION_FAILED",
  });
  await c.call("POST", list, list, sending({ client_id: UNKNOWN_UUID, scopes: ["vaults:read"] }), {
    status: 404,
    code: "NOT_FOUND",
  });
  await c.call("GET", list, list, as, { status: 200 });
  const at = `${list}/${granted.body.id}/revoke`;
  await c.call("POST", revoke, at, as, { status: 200 });
  await c.call("POST", revoke, at, as, { status: 409, code: "GRANT_REVOKED" });
  await c.call("POST", revoke, `${list}/${UNKNOWN_ULID}/revoke`, as, {
    status: 404,
    code: "NOT_FOUND",
  });
  await c.call("GET", revoke, at, as, { status: 405 });
  await c.call("GET", list, list, { ip }, { status: 401, code: "MISSING_AUTH_TOKEN" });
});

e2e("every documented operation was exercised with its success status", async () => {
  try {
    const c = await served();
    const missing: string[] = [];
    for (const [template, item] of Object.entries(c.document.paths as Record<string, Json>)) {
      for (const [method, op] of Object.entries(item)) {
        if (method === "parameters") continue;
        const success = Object.keys((op as Json).responses as Json).find((s) => s < "300")!;
        const label = `${method.toUpperCase()} ${template} ${success}`;
        if (!c.seen.has(label)) missing.push(label);
      }
    }
    assert.deepEqual(missing, [], "operations no test exercised");
  } finally {
    await closeDb();
  }
});
