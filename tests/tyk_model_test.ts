/**
 * A model of how Tyk Gateway (5.x, classic API definitions) handles a request, written from its
 * source, run over the exported definition (`tools/gateway_export.ts`) and the shipped pre
 * middleware and error templates (`supabase/gateway/`).
 *
 * The steps, in Tyk's order (gateway/api_loader.go builds the chain):
 *
 * 1. the router: the API's `domain` (with `enable_custom_domains`), and unless
 *    `skip_url_cleaning` a 301 to the cleaned path (gorilla/mux);
 * 2. VersionCheck, the allow list (`white_list`): the compiled path specs in Tyk's order
 *    (white_list before url_rewrites), matched unanchored against the decoded path; the first
 *    that matches decides: a white_list entry of the request's method (or none) admits, any
 *    other status refuses, and nothing matching refuses: 403 "Requested endpoint is forbidden";
 * 3. the JSVM `pre` middleware, the shipped file itself, run with a stand-in for TykJS;
 * 4. MiddlewareContextVars: `remote_addr` is request/real_ip.go's RealIP (X-Real-IP if it parses,
 *    else X-Forwarded-For by `xff_depth`, else the TCP peer);
 * 5. TransformHeaders: `global_headers_remove`, then `global_headers` (labels replaced);
 * 6. URLRewrite: the first rule whose method is the request's and whose path matches; its
 *    `match_pattern` on the escaped URL (then on the unescaped one), `$N` substituted, then every
 *    `$secret_…`/`$tyk_…` label in the result replaced; without a match, the original URL (labels
 *    replaced all the same);
 * 7. the proxy: an absolute rewrite is used as it is, otherwise `target_url` + the path;
 *    hop-by-hop headers (and those `Connection` names) dropped; the TCP peer appended to
 *    X-Forwarded-For unless it is in `global_headers_remove`.
 *
 * Loading the definition replaces `env://NAME` with the gateway's environment, as Tyk 5.3+ does.
 * Requests the router registers under `/<api_id>/` keep their path, so the anchored patterns
 * refuse them like any other unknown path.
 */
import assert from "node:assert/strict";
import {
  CLIENT_ADDRESS_HEADERS,
  FORWARDED_METHODS,
  GATEWAY_SECRET_ENV,
  HEADERS,
  PRE_MIDDLEWARE,
  REGION_HEADER,
  REGION_PLACEHOLDER,
  tykExport,
} from "../tools/gateway_export.ts";
import {
  FUNCTIONS,
  GATEWAY_ROUTES,
  resolveGatewayPath,
} from "../supabase/functions/_shared/routes.ts";
import { addressPolicy } from "../supabase/functions/_shared/http/ip.ts";
import { ERRORS } from "../supabase/functions/_shared/http/errors.ts";

const root = new URL("../", import.meta.url);

/** What an operator puts in place of the placeholders on import. */
const FUNCTIONS_ORIGIN = "https://abcdefghijklmnopqrst.supabase.co";
const FUNCTIONS_BASE = `${FUNCTIONS_ORIGIN}/functions/v1`;
const DOMAIN = "api.torvus.test";
/** The database's region, which the functions are pinned to. */
const REGION = "eu-west-2";
const SECRET = "5f2b8c0e9d7a4136b1e0c2d4f6a8b0c2e4f6a8b0c2d4e6f8";
/** The gateway's environment: the secret, and one `$secret_env.` label could reach. */
const ENV: Record<string, string> = {
  [GATEWAY_SECRET_ENV]: SECRET,
  [`TYK_SECRET_${GATEWAY_SECRET_ENV}`]: SECRET,
  TYK_SECRET_OTHER: "other-secret-value",
};
const PEER = "203.0.113.7";
const PEER_ADDR = `${PEER}:51234`;

// ---------------------------------------------------------------------------------------------
// Go's net/http and net/url, as far as the model needs them

/** http.CanonicalHeaderKey for token names. */
function canon(name: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return name;
  return name.toLowerCase().replace(
    /(^|-)([a-z])/g,
    (_, d: string, c: string) => d + c.toUpperCase(),
  );
}

/** http.Header: canonical keys, several values each. */
class Header {
  readonly #map = new Map<string, string[]>();
  static from(pairs: ReadonlyArray<readonly [string, string]>): Header {
    const h = new Header();
    for (const [k, v] of pairs) h.add(k, v);
    return h;
  }
  get(k: string): string {
    return this.#map.get(canon(k))?.[0] ?? "";
  }
  values(k: string): string[] {
    return [...(this.#map.get(canon(k)) ?? [])];
  }
  has(k: string): boolean {
    return this.#map.has(canon(k));
  }
  set(k: string, v: string): void {
    this.#map.set(canon(k), [v]);
  }
  add(k: string, v: string): void {
    this.#map.set(canon(k), [...(this.#map.get(canon(k)) ?? []), v]);
  }
  del(k: string): void {
    this.#map.delete(canon(k));
  }
  clone(): Header {
    const h = new Header();
    for (const [k, v] of this.#map) h.#map.set(k, [...v]);
    return h;
  }
  toObject(): Record<string, string[]> {
    return Object.fromEntries([...this.#map].map(([k, v]) => [k, [...v]]));
  }
  toHeaders(): Headers {
    const h = new Headers();
    for (const [k, vs] of this.#map) for (const v of vs) h.append(k, v);
    return h;
  }
}

const isAlnum = (c: string) => /^[A-Za-z0-9]$/.test(c);

/** url.shouldEscape in encodePath mode. */
function shouldEscape(c: string): boolean {
  if (isAlnum(c) || "-_.~".includes(c)) return false;
  return !"$&+,/:;=@".includes(c);
}

/** url.unescape: %XX decoded, an invalid escape an error. */
function unescape(s: string): string {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%") {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Error(`invalid URL escape "%${hex}"`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...encoder.encode(s[i]!));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** url.escape(path, encodePath). */
function escapePath(path: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(path)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && !shouldEscape(c)
      ? c
      : "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** url.validEncoded(s, encodePath). */
function validEncoded(s: string): boolean {
  for (const c of s) {
    if ("!$&'()*+,;=:@[]%".includes(c)) continue;
    if (c.charCodeAt(0) >= 0x80 || shouldEscape(c)) return false;
  }
  return true;
}

interface GoURL {
  scheme: string;
  host: string;
  path: string;
  rawPath: string;
  rawQuery: string;
  forceQuery: boolean;
}

/** url.URL.setPath. */
function withPath(u: Omit<GoURL, "path" | "rawPath">, escaped: string): GoURL {
  const path = unescape(escaped);
  return { ...u, path, rawPath: escaped === escapePath(path) ? "" : escaped };
}

/** url.URL.EscapedPath. */
function escapedPath(u: GoURL): string {
  if (u.rawPath !== "" && validEncoded(u.rawPath)) {
    try {
      if (unescape(u.rawPath) === u.path) return u.rawPath;
    } catch { /* not a valid encoding */ }
  }
  return escapePath(u.path);
}

/** url.URL.String for what the model handles (absolute, or a path and query). */
function urlString(u: GoURL): string {
  const head = u.scheme === "" ? "" : `${u.scheme}://${u.host}`;
  return head + escapedPath(u) + (u.forceQuery || u.rawQuery !== "" ? "?" + u.rawQuery : "");
}

/** url.Parse (absolute or a path), or url.ParseRequestURI (`request`: no fragment cut). */
function parseURL(raw: string, request = false): GoURL {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) throw new Error("invalid control character in URL");
  let rest = request ? raw : raw.split("#")[0]!;
  let scheme = "", host = "";
  const abs = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)(.*)$/.exec(rest);
  if (abs) [, scheme, host, rest] = abs as unknown as [string, string, string, string];
  let rawQuery = "", forceQuery = false;
  if (rest.endsWith("?") && rest.split("?").length === 2) {
    forceQuery = true;
    rest = rest.slice(0, -1);
  } else if (rest.includes("?")) {
    rawQuery = rest.slice(rest.indexOf("?") + 1);
    rest = rest.slice(0, rest.indexOf("?"));
  }
  return withPath({ scheme: scheme.toLowerCase(), host, rawQuery, forceQuery }, rest);
}

/** net.ParseIP's result as net.IP.String, or undefined. */
function parseIP(text: string): string | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const parts = v4.slice(1);
    const ok = parts.every((p) => Number(p) <= 255 && (p === "0" || !p.startsWith("0")));
    return ok ? parts.map(Number).join(".") : undefined;
  }
  if (!text.includes(":") || /[^0-9A-Fa-f:.]/.test(text)) return undefined;
  try {
    const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
    if (mapped) {
      const n = (parseInt(mapped[1]!, 16) << 16 >>> 0) + parseInt(mapped[2]!, 16);
      return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
    }
    return host;
  } catch {
    return undefined;
  }
}

/** net.SplitHostPort's host. */
function hostOf(remoteAddr: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(remoteAddr);
  if (bracketed) return bracketed[1]!;
  const plain = /^([^:]+):\d+$/.exec(remoteAddr);
  return plain ? plain[1]! : "";
}

/** gorilla/mux cleanPath: path.Clean, keeping a final slash. */
function cleanPath(p: string): string {
  if (p === "") return "/";
  if (!p.startsWith("/")) p = "/" + p;
  const out: string[] = [];
  for (const s of p.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop();
    else out.push(s);
  }
  let np = "/" + out.join("/");
  if (p.endsWith("/") && np !== "/") np += "/";
  return np;
}

/** template.JSEscapeString, which html/template applies to `{{.Message}}` in error templates. */
function jsEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    const special: Record<string, string> = {
      "\\": "\\\\",
      "'": "\\'",
      '"': '\\"',
      "<": "\\u003C",
      ">": "\\u003E",
      "&": "\\u0026",
      "=": "\\u003D",
    };
    if (special[ch] !== undefined) out += special[ch];
    else if (code < 0x20) out += "\\u00" + code.toString(16).toUpperCase().padStart(2, "0");
    else out += ch;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tyk

/** The parts of a classic API definition the model reads. */
interface Definition {
  api_id: string;
  domain?: string;
  enable_context_vars?: boolean;
  config_data?: Record<string, unknown>;
  CORS?: { enable?: boolean; options_passthrough?: boolean };
  custom_middleware?: {
    driver?: string;
    pre?: Array<{ name: string; path: string; require_session?: boolean }>;
  };
  proxy: { listen_path: string; target_url: string; strip_listen_path?: boolean };
  version_data: {
    not_versioned: boolean;
    versions: Record<string, {
      use_extended_paths: boolean;
      ignore_endpoint_case?: boolean;
      global_headers_disabled?: boolean;
      global_headers?: Record<string, string>;
      global_headers_remove?: string[];
      extended_paths: {
        white_list?: Array<
          { disabled?: boolean; path: string; method: string; ignore_case?: boolean }
        >;
        url_rewrites?: Array<{
          disabled?: boolean;
          path: string;
          method: string;
          match_pattern: string;
          rewrite_to: string;
          triggers?: unknown[];
        }>;
      } & Record<string, unknown>;
    }>;
  };
}

/** Gateway settings (tyk.conf) the outcome depends on. */
interface Gateway {
  env: Record<string, string>;
  enableCustomDomains: boolean;
  prefixMatching: boolean;
  suffixMatching: boolean;
  skipUrlCleaning: boolean;
  ignoreEndpointCase: boolean;
  xffDepth: number;
}

const GATEWAY: Gateway = {
  env: ENV,
  enableCustomDomains: true,
  prefixMatching: false,
  suffixMatching: false,
  skipUrlCleaning: true,
  ignoreEndpointCase: false,
  xffDepth: 0,
};

/** Imports the definition as an operator does, then loads it as Tyk does (`env://`). */
function load(text: string, env: Record<string, string>): Definition {
  let json = text.replaceAll("{SUPABASE_FUNCTIONS_URL}", FUNCTIONS_BASE)
    .replaceAll("{TORVUS_API_DOMAIN}", DOMAIN)
    .replaceAll(REGION_PLACEHOLDER, REGION);
  // gateway/api_definition.go replaceSecrets: `env://([^"]+)`, replaced when the value is set.
  const seen = new Set<string>();
  for (const m of json.matchAll(/env:\/\/([^"]+)/g)) {
    if (seen.has(m[0])) continue;
    seen.add(m[0]);
    const value = env[m[1]!] ?? "";
    if (value !== "") json = json.replaceAll(m[0], value);
  }
  return JSON.parse(json) as Definition;
}

const exported = () => JSON.stringify(tykExport());
const definition = (env = ENV) => load(exported(), env);

/** httputil.PreparePathRegexp, compiled as Go would (the model's patterns are RE2 and JS alike). */
function compilePath(pattern: string, gw: Gateway, ignoreCase: boolean): RegExp {
  const open = (pattern.match(/\{/g) ?? []).length, close = (pattern.match(/\}/g) ?? []).length;
  if (open > 0 && open === close) pattern = pattern.replace(/\{([^}]+)\}/g, "([^/]+)");
  if (pattern.includes("/*")) {
    pattern = pattern.replaceAll("/*/", "/[^/]+/").replaceAll("/*", "/.*");
  }
  if (gw.prefixMatching && pattern.startsWith("/")) pattern = "^" + pattern;
  if (gw.suffixMatching && !pattern.endsWith("$")) pattern = pattern + "$";
  return new RegExp(pattern, ignoreCase || gw.ignoreEndpointCase ? "i" : "");
}

type Status = "white_list" | "url_rewrite";
interface Spec {
  status: Status;
  rx: RegExp;
  method: string;
  rewrite?: NonNullable<
    Definition["version_data"]["versions"][string]["extended_paths"]["url_rewrites"]
  >[number];
}

/** The version's compiled specs in Tyk's order (getExtendedPathSpecs: white_list, …, url_rewrites). */
function specsOf(def: Definition, gw: Gateway): Spec[] {
  const version = Object.values(def.version_data.versions)[0]!;
  assert.ok(version.use_extended_paths);
  const ext = version.extended_paths;
  const known = ["white_list", "url_rewrites"];
  for (const [key, value] of Object.entries(ext)) {
    if (Array.isArray(value) && value.length > 0) {
      assert.ok(known.includes(key), `the model does not implement extended_paths.${key}`);
    }
  }
  const ignoreCase = version.ignore_endpoint_case ?? false;
  const specs: Spec[] = [];
  for (const w of ext.white_list ?? []) {
    if (w.disabled) continue;
    specs.push({
      status: "white_list",
      rx: compilePath(w.path, gw, ignoreCase || !!w.ignore_case),
      method: w.method,
    });
  }
  for (const r of ext.url_rewrites ?? []) {
    if (r.disabled) continue;
    assert.ok(!r.triggers?.length, "the model does not implement rewrite triggers");
    specs.push({
      status: "url_rewrite",
      rx: compilePath(r.path, gw, ignoreCase),
      method: r.method,
      rewrite: r,
    });
  }
  return specs;
}

/** URLSpec.matchesPath with the listen path stripped, then as it is (not versioned). */
function matchesPath(spec: Spec, path: string, def: Definition): boolean {
  const listen = def.proxy.listen_path;
  let clean = path.startsWith(listen) ? path.slice(listen.length) : path;
  if (!clean.startsWith("/")) clean = "/" + clean;
  return spec.rx.test(clean) || spec.rx.test(path);
}

/** The JSVM pre middleware: the shipped file, run with a stand-in for Tyk's core JS. */
type Jsvm = (request: Record<string, unknown>, session: unknown, spec: unknown) => string;
const jsvmCache = new Map<string, Jsvm>();

function loadJsvm(file: string, name: string): Jsvm {
  const key = `${file}#${name}`;
  const cached = jsvmCache.get(key);
  if (cached) return cached;
  const source = Deno.readTextFileSync(new URL(file, root));
  type Callback = (request: Record<string, unknown>, session: unknown, spec: unknown) => {
    Request: Record<string, unknown>;
  };
  class NewMiddleware {
    #process: Callback | undefined;
    constructor(readonly configuration: unknown) {}
    NewProcessRequest(callback: Callback) {
      this.#process = callback;
    }
    ReturnData(request: Record<string, unknown>, session: unknown) {
      return { Request: request, SessionMeta: session };
    }
    DoProcessRequest(request: Record<string, unknown>, session: unknown, spec: unknown): string {
      request.Body = atob(String(request.Body ?? ""));
      const processed = this.#process!(request, session, spec);
      processed.Request.Headers = {};
      processed.Request.Body = btoa(String(processed.Request.Body));
      return JSON.stringify(processed);
    }
  }
  const TykJS = { TykMiddleware: { NewMiddleware } };
  const instantiate = new Function("TykJS", "log", `${source}\n;return ${name};`) as (
    tyk: unknown,
    log: (msg: unknown) => void,
  ) => NewMiddleware;
  const middleware = instantiate(TykJS, () => {});
  assert.ok(middleware instanceof NewMiddleware, `${file} defines ${name}`);
  const run: Jsvm = (request, session, spec) => middleware.DoProcessRequest(request, session, spec);
  jsvmCache.set(key, run);
  return run;
}

/** request.RealIP, nothing in the request context. */
function realIP(h: Header, remoteAddr: string, xffDepth: number): string {
  const real = h.get("X-Real-IP");
  if (real !== "") {
    const ip = parseIP(real);
    if (ip !== undefined) return ip;
  }
  const fw = h.get("X-Forwarded-For");
  if (fw !== "") {
    const xffs = fw.split(",");
    if (xffDepth < 0 || xffDepth > xffs.length) return "";
    const candidate = (xffDepth === 0 ? xffs[0]! : xffs[xffs.length - xffDepth]!).trim();
    const ip = parseIP(candidate);
    if (ip !== undefined) return ip;
  }
  return hostOf(remoteAddr);
}

/** What the model's secret stores (Vault, Consul, files) would hand out for a label. */
const storeSecret = (kind: string, key: string) => `STORE-SECRET(${kind}:${key})`;

/** Gateway.ReplaceTykVariables. */
function replaceTykVariables(
  input: string,
  context: Record<string, string> | undefined,
  gw: Gateway,
  escape: boolean,
): string {
  const labels: Array<[string, RegExp, (key: string) => string | undefined]> = [
    ["$secret_conf.", /\$secret_conf.([A-Za-z0-9[.\-_]+)/g, () => undefined],
    [
      "$secret_env.",
      /\$secret_env.([A-Za-z0-9_\-.]+)/g,
      (k) => gw.env[`TYK_SECRET_${k.toUpperCase()}`],
    ],
    ["$secret_vault.", /\$secret_vault.([A-Za-z0-9_/\-.]+)/g, (k) => storeSecret("vault", k)],
    ["$secret_consul.", /\$secret_consul.([A-Za-z0-9_/\-.]+)/g, (k) => storeSecret("consul", k)],
    ["$secret_file.", /\$secret_file\.([A-Za-z0-9_/\-.]+)/g, (k) => storeSecret("file", k)],
    ["$tyk_context.", /\$tyk_context.([A-Za-z0-9_\-.]+)/g, (k) => {
      const v = context?.[k];
      if (v === undefined) return undefined;
      return escape && !v.startsWith("http") ? encodeURIComponent(v).replace(/%20/g, "+") : v;
    }],
    ["$tyk_meta.", /\$tyk_meta.([A-Za-z0-9_\-.]+)/g, () => undefined],
  ];
  for (const [label, rx, value] of labels) {
    if (!input.includes(label)) continue;
    for (const v of input.match(rx) ?? []) {
      const replacement = value(v.replace(label, "")) ?? "";
      input = input.replaceAll(v, replacement);
    }
  }
  return input;
}

/** What a client sends. */
interface ClientRequest {
  method: string;
  /** The request target as sent: escaped path and query. */
  target: string;
  headers?: ReadonlyArray<readonly [string, string]>;
  /** The TCP peer (`ip:port`). */
  peer?: string;
  host?: string;
}

/** What comes of it. */
type Outcome =
  | { kind: "upstream"; method: string; url: GoURL; headers: Header }
  | { kind: "error"; status: number; message: string; body: unknown }
  | { kind: "redirect"; location: string }
  | { kind: "no_api" };

/** Tyk's error answer (ErrorHandler.HandleError): error_<code>.json, else error.json. */
function tykError(status: number, message: string): Extract<Outcome, { kind: "error" }> {
  const dir = new URL("supabase/gateway/templates/", root);
  let template: string;
  try {
    template = Deno.readTextFileSync(new URL(`error_${status}.json`, dir));
  } catch {
    template = Deno.readTextFileSync(new URL("error.json", dir));
  }
  const text = template.replaceAll("{{.Message}}", jsEscape(message));
  return { kind: "error", status, message, body: JSON.parse(text) };
}

/** url.Values of a query, as the middleware's `Params`. */
function paramsOf(rawQuery: string): Record<string, string[]> {
  const params: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(rawQuery)) (params[k] ??= []).push(v);
  return params;
}

/** An outcome as plain data, to compare two. */
function show(o: Outcome): unknown {
  return o.kind === "upstream" ? { ...o, url: urlString(o.url), headers: o.headers.toObject() } : o;
}

/** One request through the gateway. */
function tyk(def: Definition, req: ClientRequest, gw: Gateway = GATEWAY): Outcome {
  const peer = req.peer ?? PEER_ADDR;
  // 1. The router.
  if (gw.enableCustomDomains && def.domain && (req.host ?? DOMAIN) !== def.domain) {
    return { kind: "no_api" };
  }
  let url: GoURL;
  try {
    url = parseURL(req.target, true);
  } catch {
    return { kind: "error", status: 400, message: "Bad Request", body: undefined };
  }
  if (!gw.skipUrlCleaning) {
    const cleaned = cleanPath(url.path);
    if (cleaned !== url.path) {
      return { kind: "redirect", location: urlString({ ...url, path: cleaned, rawPath: "" }) };
    }
  }
  const headers = Header.from(req.headers ?? []);
  const specs = specsOf(def, gw);

  // 2. VersionCheck: the allow list.
  const allowListed = specs.some((s) => s.status === "white_list");
  if (allowListed && !(def.CORS?.enable && req.method === "OPTIONS")) {
    let admitted = false;
    for (const spec of specs) {
      if (!matchesPath(spec, url.path, def)) continue;
      if (spec.status === "white_list") {
        if (spec.method !== "" && spec.method !== req.method) continue;
        admitted = true;
      }
      break;
    }
    if (!admitted) return tykError(403, "Requested endpoint is forbidden");
  }

  // 3. The pre middleware.
  const mw = def.custom_middleware;
  for (const pre of mw?.pre ?? []) {
    assert.equal(mw?.driver, "otto");
    const run = loadJsvm(`supabase/gateway/${pre.path}`, pre.name);
    const request = {
      Headers: headers.toObject(),
      SetHeaders: {},
      DeleteHeaders: [],
      Body: "",
      URL: urlString(url),
      Params: paramsOf(url.rawQuery),
      AddParams: {},
      ExtendedParams: {},
      DeleteParams: [],
      ReturnOverrides: {
        ResponseCode: 0,
        ResponseError: "",
        ResponseBody: "",
        ResponseHeaders: null,
        OverrideError: false,
      },
      IgnoreBody: false,
      Method: req.method,
      RequestURI: req.target,
      Scheme: "https",
    };
    const spec = { OrgID: "", APIID: def.api_id, config_data: def.config_data ?? {} };
    const returned = JSON.parse(run(structuredClone(request), {}, structuredClone(spec))) as {
      Request: typeof request & { SetHeaders: Record<string, string>; DeleteHeaders: string[] };
    };
    const out = returned.Request;
    assert.equal(out.IgnoreBody, true, "the pre middleware keeps the body as Tyk read it");
    url = parseURL(out.URL);
    for (const name of out.DeleteHeaders) headers.del(name);
    for (const [name, value] of Object.entries(out.SetHeaders)) headers.set(name, value);
    assert.deepEqual([out.AddParams, out.DeleteParams], [{}, []], "no query changes");
    const overrides = out.ReturnOverrides;
    const body = overrides.ResponseError !== "" ? overrides.ResponseError : overrides.ResponseBody;
    if (overrides.ResponseCode >= 400 && !overrides.OverrideError) {
      return tykError(overrides.ResponseCode, body);
    }
    assert.equal(overrides.ResponseCode, 0, "the model does not implement forced responses");
  }

  // 4. Context variables.
  const context = def.enable_context_vars
    ? { remote_addr: realIP(headers, peer, gw.xffDepth), path: url.path }
    : undefined;

  // 5. Global headers.
  const version = Object.values(def.version_data.versions)[0]!;
  if (!version.global_headers_disabled) {
    for (const name of version.global_headers_remove ?? []) headers.del(name);
    for (const [name, value] of Object.entries(version.global_headers ?? {})) {
      headers.set(name, replaceTykVariables(value, context, gw, false));
    }
  }

  // 6. URL rewrite.
  let rewritten: GoURL | undefined;
  const rule = specs.find((s) =>
    s.status === "url_rewrite" && s.method === req.method && matchesPath(s, url.path, def)
  )?.rewrite;
  if (rule) {
    const raw = urlString(url);
    const rx = new RegExp(rule.match_pattern);
    let groups = rx.exec(raw);
    let escapedChars: boolean;
    try {
      escapedChars = unescape(raw) !== raw;
    } catch {
      escapedChars = true;
    }
    if (!groups && escapedChars) {
      let unescaped: string;
      try {
        unescaped = unescape(raw);
      } catch {
        return tykError(500, "Internal Server Error");
      }
      groups = rx.exec(unescaped);
    }
    let next = raw;
    if (groups) {
      next = rule.rewrite_to;
      for (const ref of rule.rewrite_to.match(/\$\d+/g) ?? []) {
        next = next.replaceAll(ref, groups[Number(ref.slice(1))] ?? "");
      }
    }
    next = replaceTykVariables(next, context, gw, true);
    try {
      rewritten = parseURL(next);
    } catch {
      rewritten = undefined; // Tyk logs "URL Rewrite failed" and proxies the original URL.
    }
  }

  // 7. The proxy.
  const target = parseURL(def.proxy.target_url);
  let upstream: GoURL;
  const current = rewritten ?? url;
  if (rewritten && rewritten.scheme !== "" && rewritten.host !== "") {
    upstream = rewritten;
  } else {
    const join = (a: string, b: string) => {
      const tail = b.replace(/^\/+/, "");
      return tail === "" ? a.replace(/\/+$/, "") : a.replace(/\/+$/, "") + "/" + tail;
    };
    upstream = {
      ...current,
      scheme: target.scheme,
      host: target.host,
      path: join(target.path, current.path),
      rawPath: current.rawPath === "" ? "" : join(target.path, current.rawPath),
    };
  }
  const out = headers.clone();
  const connection = out.get("Connection");
  if (connection !== "") {
    for (const f of connection.split(",")) if (f.trim() !== "") out.del(f.trim());
  }
  for (
    const h of [
      "Connection",
      "Proxy-Connection",
      "Keep-Alive",
      "Proxy-Authenticate",
      "Proxy-Authorization",
      "Te",
      "Trailer",
      "Transfer-Encoding",
      "Upgrade",
    ]
  ) {
    const v = out.get(h);
    if (v === "" || (h === "Te" && v === "trailers")) continue;
    out.del(h);
  }
  const removed = (version.global_headers_remove ?? []).some((n) =>
    n.toLowerCase() === "x-forwarded-for"
  );
  if (!removed) {
    const prior = headers.values("X-Forwarded-For");
    out.set(
      "X-Forwarded-For",
      prior.length ? `${prior.join(", ")}, ${hostOf(peer)}` : hostOf(peer),
    );
  }
  return { kind: "upstream", method: req.method, url: upstream, headers: out };
}

// ---------------------------------------------------------------------------------------------
// Expectations

/** The function and path (decoded) an upstream URL reaches, if it is the functions' host. */
function reached(u: GoURL): { fn: string; path: string } | undefined {
  if (`${u.scheme}://${u.host}` !== FUNCTIONS_ORIGIN) return undefined;
  const base = new URL(FUNCTIONS_BASE).pathname;
  if (!u.path.startsWith(base + "/")) return undefined;
  const fn = u.path.slice(base.length + 1).split("/")[0]!;
  return { fn, path: u.path };
}

const policy = addressPolicy({
  gatewaySecret: SECRET,
  directAccess: "deny",
  directIpSource: { kind: "none" },
});

/** The headers every forwarded request carries, checked as the functions read them. */
function assertGatewayHeaders(h: Header, clientIp: string, what: string) {
  assert.deepEqual(h.values(HEADERS.secret), [SECRET], `${what}: the secret, once`);
  assert.deepEqual(h.values(HEADERS.clientIp), [clientIp], `${what}: the client's address`);
  assert.deepEqual(h.values(REGION_HEADER), [REGION], `${what}: the database's region, once`);
  for (const name of ["X-Forwarded-For", "X-Real-IP"]) {
    assert.ok(!h.has(name), `${what}: no ${name} upstream`);
  }
  assert.deepEqual(policy.origin(h.toHeaders(), undefined), { via: "gateway", ip: clientIp }, what);
}

/** Clients' claims about addresses and the gateway's headers, one set per request. */
const FORGERIES: ReadonlyArray<ReadonlyArray<readonly [string, string]>> = [
  [],
  [["X-Real-IP", "198.51.100.1"]],
  [["X-Forwarded-For", "198.51.100.2, 10.0.0.1"]],
  [["X-Forwarded-For", "198.51.100.3"], ["X-Forwarded-For", "198.51.100.4"]],
  [["X-Real-IP", "not-an-address"], ["X-Forwarded-For", "198.51.100.5"]],
  [["X-Real-IP", "2001:db8::1"], ["x-forwarded-for", "2001:db8::2"]],
  [["X-Torvus-Client-IP", "198.51.100.6"], ["x-torvus-client-ip", "198.51.100.7"]],
  [["X-Torvus-Gateway-Secret", "guess"], ["X-Torvus-Client-IP", "198.51.100.8"]],
  [["X-Torvus-Gateway-Secret", SECRET], ["X-Real-IP", "198.51.100.9"]],
  [["Connection", "X-Torvus-Gateway-Secret, X-Torvus-Client-IP"]],
  [["Connection", "keep-alive"], ["X-Forwarded-For", "198.51.100.10"]],
  [["X-Region", "ap-southeast-2"], ["x-region", "sa-east-1"]],
  [["Connection", "X-Region"]],
];

/** Paths below a public prefix: ids, actions, queries, trailing slashes, near misses inside. */
const BELOW = [
  "",
  "/",
  "?limit=5&offset=0",
  "?",
  "/01ARZ3NDEKTSV4RRFFQ69G5FAV",
  "/01arz3ndektsv4rrffq69g5fav/",
  "/01ARZ3NDEKTSV4RRFFQ69G5FAV/roll",
  "/01ARZ3NDEKTSV4RRFFQ69G5FAV/revoke?x=1",
  "/00000000-0000-4000-8000-000000000000?x=1&y=%2F",
  "/v",
  "/v2",
  "/v10",
  "/va/v1",
  "/v1x",
  "/x/v1",
  "/a%20b",
  "/a%2Fb",
  "/...",
  "/.well-known",
  "/..x/y",
  "/api/keys",
  "?q=%24secret_env.OTHER",
];

/** The public URLs the model runs: every prefix with every tail that is still public. */
function publicSamples(): string[] {
  const out: string[] = [];
  for (const { path } of GATEWAY_ROUTES) {
    for (const rest of BELOW) {
      const target = path + rest;
      const decoded = unescape(target.split("?")[0]!);
      if (resolveGatewayPath(decoded) !== undefined) out.push(target);
    }
  }
  return out;
}

/** Asserts that a forwarded request reaches exactly where `resolveGatewayPath` says. */
function assertReaches(outcome: Outcome, target: string, method: string, clientIp = PEER) {
  const what = `${method} ${target}`;
  assert.equal(outcome.kind, "upstream", `${what} is forwarded: ${JSON.stringify(outcome)}`);
  if (outcome.kind !== "upstream") return;
  const [rawPath, ...q] = target.split("?");
  const expected = resolveGatewayPath(unescape(rawPath!))!;
  assert.equal(outcome.method, method, what);
  assert.equal(`${outcome.url.scheme}://${outcome.url.host}`, FUNCTIONS_ORIGIN, what);
  assert.equal(outcome.url.path, expected.functionPath, what);
  assert.equal(outcome.url.rawQuery, q.join("?"), `${what}: the query as sent`);
  assertGatewayHeaders(outcome.headers, clientIp, what);
}

/** Asserts a refusal by the gateway itself, in the API's error format. */
function assertRefused(outcome: Outcome, what: string, status = 403) {
  assert.equal(outcome.kind, "error", `${what} is refused: ${JSON.stringify(outcome)}`);
  if (outcome.kind !== "error") return;
  assert.equal(outcome.status, status, what);
  const body = outcome.body as { error: string; message: string; code: keyof typeof ERRORS };
  assert.equal(body.message, outcome.message, what);
  assert.equal(body.error, ERRORS[body.code].error, `${what}: a catalogued code and its error`);
}

// ---------------------------------------------------------------------------------------------

Deno.test("the model implements every setting the exported definition uses", () => {
  const def = definition();
  assert.equal(def.proxy.listen_path, "/");
  assert.equal(def.proxy.strip_listen_path, false);
  assert.equal(def.domain, DOMAIN);
  assert.equal(def.custom_middleware?.pre?.length, 1);
  assert.equal(def.custom_middleware?.pre?.[0]?.name, PRE_MIDDLEWARE.name);
  assert.equal(`supabase/gateway/${def.custom_middleware?.pre?.[0]?.path}`, PRE_MIDDLEWARE.file);
  assert.equal(def.CORS?.enable, false);
  assert.ok(def.enable_context_vars);
  specsOf(def, GATEWAY); // refuses lists it does not implement
  const version = Object.values(def.version_data.versions)[0]!;
  assert.equal(version.global_headers?.[HEADERS.secret], SECRET, "env:// replaced on load");
  assert.ok(!exported().includes(SECRET), "the secret is never in the file");
});

Deno.test("every public path and method reaches its function, whatever the client says", () => {
  const def = definition();
  const samples = publicSamples();
  assert.ok(samples.length > GATEWAY_ROUTES.length * 10, "samples below every prefix");
  for (const target of samples) {
    for (const method of FORWARDED_METHODS) {
      for (const headers of FORGERIES) {
        assertReaches(tyk(def, { method, target, headers }), target, method);
      }
    }
  }
  // IPv6 peers too.
  const outcome = tyk(def, {
    method: "GET",
    target: "/api/me",
    peer: "[2001:db8::7]:443",
    headers: [["X-Real-IP", "198.51.100.1"]],
  });
  assertReaches(outcome, "/api/me", "GET", "2001:db8::7");
});

Deno.test("paths outside the public table, and other methods, are refused by Tyk", () => {
  const def = definition();
  const tricky = [
    "/",
    "/health",
    "/me",
    "/vaults/v1/x",
    "/functions/v1/health",
    "/api",
    "/api/",
    "/api/vaults/v1",
    "/api/vaults/v1/",
    "/api/vaults/v1/x",
    "/api/vaults//v1/x",
    "/api/vaults/%76%31/x",
    "/api/vaults%2Fv1/x",
    "/api/vaults/./v1/x",
    "/api/me/../vaults/v1/x",
    "/api/me/%2e%2e/keys",
    "/api/me//x",
    "/api/mexyz",
    "/api/v1/testx",
    "/api/v1",
    "/API/ME",
    "/torvus-api/api/me",
    "/torvus-api/",
    "/api/me/$secret_env.OTHER",
    "/api/me/%24secret_env.OTHER",
  ];
  for (const target of tricky) {
    for (const method of [...FORWARDED_METHODS, "TRACE", "PROPFIND"]) {
      assertRefused(tyk(def, { method, target }), `${method} ${target}`);
    }
  }
  for (const target of publicSamples()) {
    for (const method of ["TRACE", "CONNECT", "PROPFIND", "get"]) {
      assertRefused(tyk(def, { method, target }), `${method} ${target}`);
    }
  }
  // A path another route's unanchored pattern would once have taken reaches its own function.
  const nested = tyk(def, { method: "GET", target: "/api/me/api/keys" });
  assertReaches(nested, "/api/me/api/keys", "GET");
  assert.ok(nested.kind === "upstream" && reached(nested.url)?.fn === "me");
});

Deno.test("the gateway's path options and URL cleaning change no outcome", () => {
  const variants: Gateway[] = [
    { ...GATEWAY, prefixMatching: true },
    { ...GATEWAY, suffixMatching: true },
    { ...GATEWAY, prefixMatching: true, suffixMatching: true },
    { ...GATEWAY, skipUrlCleaning: false },
  ];
  const def = definition();
  const targets = [...publicSamples(), "/api/vaults//v1/x", "/api/me/../vaults/v1/x", "/health"];
  for (const gw of variants) {
    for (const target of targets) {
      const base = tyk(def, { method: "GET", target });
      let outcome = tyk(def, { method: "GET", target }, gw);
      if (outcome.kind === "redirect") {
        // gorilla/mux answers 301 to the cleaned path; the client follows it.
        outcome = tyk(def, { method: "GET", target: outcome.location }, gw);
        if (outcome.kind === "upstream") {
          const path = unescape(outcome.url.path);
          assert.equal(
            path,
            resolveGatewayPath(cleanPath(unescape(target.split("?")[0]!)))
              ?.functionPath,
          );
        } else assertRefused(outcome, target);
        continue;
      }
      assert.deepEqual(show(outcome), show(base), `${target} with ${JSON.stringify(gw)}`);
    }
  }
});

Deno.test("no `$secret_…` or `$tyk_…` label in a URL is ever expanded", () => {
  const def = definition();
  const leaked = (o: Outcome) =>
    o.kind === "upstream" &&
    [SECRET, ENV.TYK_SECRET_OTHER!, "STORE-SECRET", PEER].some((s) => urlString(o.url).includes(s));
  const hostile = [
    "/api/me?$secret_env.OTHER",
    "/api/me?x=$secret_env.TORVUS_GATEWAY_SECRET",
    "/api/keys/1/roll?a=1&b=$secret_vault.x/y",
    "/api/v1/vaults?$tyk_context.remote_addr",
    "/api/vaults/x?%24&$secret_file.etc",
  ];
  for (const target of hostile) {
    for (const method of FORWARDED_METHODS) {
      const outcome = tyk(def, { method, target });
      assertRefused(outcome, `${method} ${target}`, 400);
      assert.equal((outcome as { body: { code: string } }).body.code, "VALIDATION_FAILED");
    }
  }
  // Encoded, `$` is only a character: forwarded as sent, never expanded.
  const encoded = "/api/me?x=%24secret_env.OTHER&y=%24tyk_context.remote_addr";
  const outcome = tyk(def, { method: "GET", target: encoded });
  assertReaches(outcome, encoded, "GET");
  assert.ok(!leaked(outcome));
  // An escaped prefix and an encoded `$`: no rewrite takes it; it goes to target_url + its path,
  // i.e. to a function named after the prefix's first segment, which does not exist.
  const odd = tyk(def, { method: "GET", target: "/api/%6De?x=%24secret_env.OTHER" });
  assert.equal(odd.kind, "upstream");
  if (odd.kind === "upstream") {
    assert.equal(reached(odd.url)?.fn, "api");
    assert.ok(!(FUNCTIONS as readonly string[]).includes("api"), "no function is called api");
    assert.ok(!leaked(odd));
    assertGatewayHeaders(odd.headers, PEER, "the odd one");
  }
  // Without the pre middleware the model shows the hazard it closes: the client's label expands.
  const bare = definition();
  delete bare.custom_middleware;
  assert.ok(leaked(tyk(bare, { method: "GET", target: "/api/me?$secret_env.OTHER" })));
});

Deno.test("a client cannot move the functions to another region", () => {
  const def = definition();
  // Supabase honours forceFunctionRegion in the query as it does X-Region: refused, any case,
  // encoded or not, alone or among other parameters.
  const hostile = [
    "/api/v1/test?forceFunctionRegion=ap-southeast-2",
    "/api/me?x=1&forcefunctionregion=sa-east-1",
    "/api/keys?FORCEFUNCTIONREGION=us-west-1&y=2",
    "/api/v1/vaults?force%46unctionRegion=eu-west-1",
    "/api/vaults/x?forceFunctionRegion",
  ];
  for (const target of hostile) {
    for (const method of FORWARDED_METHODS) {
      const outcome = tyk(def, { method, target });
      assertRefused(outcome, `${method} ${target}`, 400);
      assert.equal((outcome as { body: { code: string } }).body.code, "VALIDATION_FAILED");
    }
  }
  // The name as a value, or inside another name, is only text.
  for (const target of ["/api/me?q=forceFunctionRegion", "/api/me?forceFunctionRegions=x"]) {
    assertReaches(tyk(def, { method: "GET", target }), target, "GET");
  }
  // A client's X-Region never reaches a function, also with region `any` (no header set).
  const any = load(JSON.stringify(tykExport({ region: "any" })), ENV);
  const outcome = tyk(any, {
    method: "GET",
    target: "/api/v1/test",
    headers: [["X-Region", "ap-southeast-2"]],
  });
  assert.ok(outcome.kind === "upstream" && !outcome.headers.has(REGION_HEADER));
});

Deno.test("the pre middleware is what keeps a client from choosing its address", () => {
  const js = Deno.readTextFileSync(new URL(PRE_MIDDLEWARE.file, root));
  for (const name of CLIENT_ADDRESS_HEADERS) assert.ok(js.includes(`"${name}"`), name);
  // Tyk's precedence, as modelled: X-Real-IP, then X-Forwarded-For, then the peer.
  const h = (pairs: Array<[string, string]>) => Header.from(pairs);
  assert.equal(
    realIP(h([["X-Real-IP", "198.51.100.1"], ["X-Forwarded-For", "198.51.100.2"]]), PEER_ADDR, 0),
    "198.51.100.1",
  );
  assert.equal(
    realIP(h([["X-Real-IP", "bad"], ["X-Forwarded-For", "198.51.100.2, 10.0.0.1"]]), PEER_ADDR, 0),
    "198.51.100.2",
  );
  assert.equal(
    realIP(h([["X-Forwarded-For", "198.51.100.2, 10.0.0.1"]]), PEER_ADDR, 1),
    "10.0.0.1",
  );
  assert.equal(realIP(h([["X-Forwarded-For", "junk"]]), PEER_ADDR, 0), PEER);
  assert.equal(realIP(h([]), PEER_ADDR, 0), PEER);
  // Without it, Tyk believes the client, and appends to its X-Forwarded-For when not removed.
  const bare = definition();
  delete bare.custom_middleware;
  const forged = tyk(bare, {
    method: "GET",
    target: "/api/me",
    headers: [["X-Real-IP", "198.51.100.1"]],
  });
  assert.ok(forged.kind === "upstream");
  assert.deepEqual(forged.headers.values(HEADERS.clientIp), ["198.51.100.1"]);
  // Without X-Forwarded-For in global_headers_remove, Tyk sends one: the peer appended to the
  // client's (which only the pre middleware deletes).
  for (const [middleware, expected] of [[true, PEER], [false, `198.51.100.2, ${PEER}`]] as const) {
    const appending = definition();
    if (!middleware) delete appending.custom_middleware;
    const version = Object.values(appending.version_data.versions)[0]!;
    version.global_headers_remove = version.global_headers_remove!.filter((n) =>
      n !== "X-Forwarded-For"
    );
    const appended = tyk(appending, {
      method: "GET",
      target: "/api/me",
      headers: [["X-Forwarded-For", "198.51.100.2"]],
    });
    assert.ok(appended.kind === "upstream");
    assert.deepEqual(appended.headers.values("X-Forwarded-For"), [expected]);
  }
  // And `Connection` would let a client drop the gateway's headers if it were not removed.
  const hopping = definition();
  const v2 = Object.values(hopping.version_data.versions)[0]!;
  v2.global_headers_remove = v2.global_headers_remove!.filter((n) => n !== "Connection");
  const dropped = tyk(hopping, {
    method: "GET",
    target: "/api/me",
    headers: [["Connection", "X-Torvus-Gateway-Secret"]],
  });
  assert.ok(dropped.kind === "upstream" && !dropped.headers.has(HEADERS.secret));
});

Deno.test("behind a load balancer that overwrites X-Real-IP, its address is the client's", () => {
  const def = definition();
  def.config_data = { ...def.config_data, torvus_client_address: "x-real-ip" };
  const lb = "10.0.0.5:40000";
  for (const target of publicSamples()) {
    for (const forged of FORGERIES) {
      const headers = [
        ...forged.filter(([n]) => canon(n) !== "X-Real-Ip"),
        [
          "X-Real-IP",
          "198.51.100.77",
        ] as const,
      ];
      assertReaches(
        tyk(def, { method: "GET", target, headers, peer: lb }),
        target,
        "GET",
        "198.51.100.77",
      );
    }
  }
});

Deno.test("without the secret in the gateway's environment, the functions refuse", () => {
  const def = definition({ ...ENV, [GATEWAY_SECRET_ENV]: "" });
  const outcome = tyk(def, { method: "GET", target: "/api/me" });
  assert.ok(outcome.kind === "upstream");
  assert.deepEqual(outcome.headers.values(HEADERS.secret), [`env://${GATEWAY_SECRET_ENV}`]);
  assert.deepEqual(policy.origin(outcome.headers.toHeaders(), undefined), {
    via: "refused",
    ip: undefined,
  });
});

Deno.test("the API's domain: other hosts do not reach it (enable_custom_domains)", () => {
  const def = definition();
  assert.equal(tyk(def, { method: "GET", target: "/api/me", host: "other.test" }).kind, "no_api");
  assertReaches(tyk(def, { method: "GET", target: "/api/me", host: DOMAIN }), "/api/me", "GET");
});

Deno.test("random URLs: refused, or forwarded exactly where resolveGatewayPath says", () => {
  const def = definition();
  let seed = 0x5eed;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const parts = [
    "api",
    "v1",
    "vaults",
    "keys",
    "me",
    "health",
    "test",
    "openapi.json",
    "",
    ".",
    "..",
    "x",
    "%2F",
    "%2e",
    "%24",
    "$",
    "%76%31",
    "roll",
    "torvus-api",
    "API",
    "v1x",
    "%20",
    "a?b=1",
  ];
  for (let i = 0; i < 20000; i++) {
    const n = 1 + random(5);
    let target = "/api";
    for (let k = 0; k < n; k++) target += "/" + parts[random(parts.length)];
    if (random(3) === 0) target = target.replace(/^\/api/, "");
    if (random(4) === 0) target += "?" + ["", "a=1", "$x", "%24", "b=/c"][random(5)];
    const method = FORWARDED_METHODS[random(FORWARDED_METHODS.length)]!;
    const outcome = tyk(def, { method, target, headers: FORGERIES[random(FORGERIES.length)]! });
    if (outcome.kind === "error") {
      assert.ok([400, 403].includes(outcome.status), `${method} ${target}`);
      continue;
    }
    let decoded: string;
    try {
      decoded = unescape(target.split("?")[0]!);
    } catch {
      assert.fail(`${target} is not a valid URL but was forwarded`);
    }
    assert.ok(resolveGatewayPath(decoded) !== undefined, `${method} ${target} is forwarded`);
    assert.ok(!/(^|\/)\.{1,2}(\/|$)|\/\/|\$/.test(decoded), `${target}: refused shapes`);
    assertReaches(outcome, target, method);
  }
});

Deno.test("the error templates give the API's format for what Tyk answers itself", () => {
  const messages = [
    "Requested endpoint is forbidden",
    "The request URL contains a dollar sign, which this API does not accept",
    "There was a problem proxying the request",
    "Upstream service reached hard timeout.",
  ];
  for (const status of [400, 403, 500, 502, 504]) {
    for (const message of messages) {
      assertRefused(tykError(status, message), `${status} ${message}`, status);
    }
  }
  assert.equal((tykError(403, "x").body as { code: string }).code, "NOT_FOUND");
});
