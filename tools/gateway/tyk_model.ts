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
 *
 * The tests of the gateway definition run requests through it: tools/gateway/tyk_model_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { GATEWAY_SECRET_ENV, REGION_PLACEHOLDER, tykExport } from "../gateway_export.ts";

export const root = new URL("../../", import.meta.url);

/** What an operator puts in place of the placeholders on import. */
export const FUNCTIONS_ORIGIN = "https://abcdefghijklmnopqrst.supabase.co";
export const FUNCTIONS_BASE = `${FUNCTIONS_ORIGIN}/functions/v1`;
export const DOMAIN = "api.torvus.test";
/** The database's region, which the functions are pinned to. */
export const REGION = "eu-west-2";
export const SECRET = "5f2b8c0e9d7a4136b1e0c2d4f6a8b0c2e4f6a8b0c2d4e6f8";
/** The gateway's environment: the secret, and one `$secret_env.` label could reach. */
export const ENV: Record<string, string> = {
  [GATEWAY_SECRET_ENV]: SECRET,
  [`TYK_SECRET_${GATEWAY_SECRET_ENV}`]: SECRET,
  TYK_SECRET_OTHER: "other-secret-value",
};
export const PEER = "203.0.113.7";
export const PEER_ADDR = `${PEER}:51234`;

// ---------------------------------------------------------------------------------------------
// Go's net/http and net/url, as far as the model needs them

/** http.CanonicalHeaderKey for token names. */
export function canon(name: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return name;
  return name.toLowerCase().replace(
    /(^|-)([a-z])/g,
    (_, d: string, c: string) => d + c.toUpperCase(),
  );
}

/** http.Header: canonical keys, several values each. */
export class Header {
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

export const isAlnum = (c: string) => /^[A-Za-z0-9]$/.test(c);

/** url.shouldEscape in encodePath mode. */
export function shouldEscape(c: string): boolean {
  if (isAlnum(c) || "-_.~".includes(c)) return false;
  return !"$&+,/:;=@".includes(c);
}

/** url.unescape: %XX decoded, an invalid escape an error. */
export function unescape(s: string): string {
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
export function escapePath(path: string): string {
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
export function validEncoded(s: string): boolean {
  for (const c of s) {
    if ("!$&'()*+,;=:@[]%".includes(c)) continue;
    if (c.charCodeAt(0) >= 0x80 || shouldEscape(c)) return false;
  }
  return true;
}

export interface GoURL {
  scheme: string;
  host: string;
  path: string;
  rawPath: string;
  rawQuery: string;
  forceQuery: boolean;
}

/** url.URL.setPath. */
export function withPath(u: Omit<GoURL, "path" | "rawPath">, escaped: string): GoURL {
  const path = unescape(escaped);
  return { ...u, path, rawPath: escaped === escapePath(path) ? "" : escaped };
}

/** url.URL.EscapedPath. */
export function escapedPath(u: GoURL): string {
  if (u.rawPath !== "" && validEncoded(u.rawPath)) {
    try {
      if (unescape(u.rawPath) === u.path) return u.rawPath;
    } catch { /* not a valid encoding */ }
  }
  return escapePath(u.path);
}

/** url.URL.String for what the model handles (absolute, or a path and query). */
export function urlString(u: GoURL): string {
  const head = u.scheme === "" ? "" : `${u.scheme}://${u.host}`;
  return head + escapedPath(u) + (u.forceQuery || u.rawQuery !== "" ? "?" + u.rawQuery : "");
}

/** url.Parse (absolute or a path), or url.ParseRequestURI (`request`: no fragment cut). */
export function parseURL(raw: string, request = false): GoURL {
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
export function parseIP(text: string): string | undefined {
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
export function hostOf(remoteAddr: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(remoteAddr);
  if (bracketed) return bracketed[1]!;
  const plain = /^([^:]+):\d+$/.exec(remoteAddr);
  return plain ? plain[1]! : "";
}

/** gorilla/mux cleanPath: path.Clean, keeping a final slash. */
export function cleanPath(p: string): string {
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
export function jsEscape(s: string): string {
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
export interface Definition {
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
export interface Gateway {
  env: Record<string, string>;
  enableCustomDomains: boolean;
  prefixMatching: boolean;
  suffixMatching: boolean;
  skipUrlCleaning: boolean;
  ignoreEndpointCase: boolean;
  xffDepth: number;
}

export const GATEWAY: Gateway = {
  env: ENV,
  enableCustomDomains: true,
  prefixMatching: false,
  suffixMatching: false,
  skipUrlCleaning: true,
  ignoreEndpointCase: false,
  xffDepth: 0,
};

/** Imports the definition as an operator does, then loads it as Tyk does (`env://`). */
export function load(text: string, env: Record<string, string>): Definition {
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

export const exported = () => JSON.stringify(tykExport());
export const definition = (env = ENV) => load(exported(), env);

/** httputil.PreparePathRegexp, compiled as Go would (the model's patterns are RE2 and JS alike). */
export function compilePath(pattern: string, gw: Gateway, ignoreCase: boolean): RegExp {
  const open = (pattern.match(/\{/g) ?? []).length, close = (pattern.match(/\}/g) ?? []).length;
  if (open > 0 && open === close) pattern = pattern.replace(/\{([^}]+)\}/g, "([^/]+)");
  if (pattern.includes("/*")) {
    pattern = pattern.replaceAll("/*/", "/[^/]+/").replaceAll("/*", "/.*");
  }
  if (gw.prefixMatching && pattern.startsWith("/")) pattern = "^" + pattern;
  if (gw.suffixMatching && !pattern.endsWith("$")) pattern = pattern + "$";
  return new RegExp(pattern, ignoreCase || gw.ignoreEndpointCase ? "i" : "");
}

export type Status = "white_list" | "url_rewrite";
export interface Spec {
  status: Status;
  rx: RegExp;
  method: string;
  rewrite?: NonNullable<
    Definition["version_data"]["versions"][string]["extended_paths"]["url_rewrites"]
  >[number];
}

/** The version's compiled specs in Tyk's order (getExtendedPathSpecs: white_list, …, url_rewrites). */
export function specsOf(def: Definition, gw: Gateway): Spec[] {
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
export function matchesPath(spec: Spec, path: string, def: Definition): boolean {
  const listen = def.proxy.listen_path;
  let clean = path.startsWith(listen) ? path.slice(listen.length) : path;
  if (!clean.startsWith("/")) clean = "/" + clean;
  return spec.rx.test(clean) || spec.rx.test(path);
}

/** The JSVM pre middleware: the shipped file, run with a stand-in for Tyk's core JS. */
export type Jsvm = (request: Record<string, unknown>, session: unknown, spec: unknown) => string;
export const jsvmCache = new Map<string, Jsvm>();

export function loadJsvm(file: string, name: string): Jsvm {
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
export function realIP(h: Header, remoteAddr: string, xffDepth: number): string {
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
export const storeSecret = (kind: string, key: string) => `STORE-SECRET(${kind}:${key})`;

/** Gateway.ReplaceTykVariables. */
export function replaceTykVariables(
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
export interface ClientRequest {
  method: string;
  /** The request target as sent: escaped path and query. */
  target: string;
  headers?: ReadonlyArray<readonly [string, string]>;
  /** The TCP peer (`ip:port`). */
  peer?: string;
  host?: string;
}

/** What comes of it. */
export type Outcome =
  | { kind: "upstream"; method: string; url: GoURL; headers: Header }
  | { kind: "error"; status: number; message: string; body: unknown }
  | { kind: "redirect"; location: string }
  | { kind: "no_api" };

/** Tyk's error answer (ErrorHandler.HandleError): error_<code>.json, else error.json. */
export function tykError(status: number, message: string): Extract<Outcome, { kind: "error" }> {
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
export function paramsOf(rawQuery: string): Record<string, string[]> {
  const params: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(rawQuery)) (params[k] ??= []).push(v);
  return params;
}

/** An outcome as plain data, to compare two. */
export function show(o: Outcome): unknown {
  return o.kind === "upstream" ? { ...o, url: urlString(o.url), headers: o.headers.toObject() } : o;
}

/** One request through the gateway. */
export function tyk(def: Definition, req: ClientRequest, gw: Gateway = GATEWAY): Outcome {
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
