/**
 * Exports the public route table (`supabase/functions/_shared/routes.ts`) for a gateway:
 *
 * - `supabase/gateway/routes.json`: neutral, one entry per public path prefix (function,
 *   target inside it, upstream, credentials, methods, excluded sub-paths, the anchored pattern
 *   of the paths it admits) and the headers a gateway must remove and set;
 * - `supabase/gateway/tyk-api-definition.json`: a Tyk classic API definition (Tyk Gateway 5.3+)
 *   that admits only the public paths (`white_list`, anchored patterns), sends each to its
 *   function at `{SUPABASE_FUNCTIONS_URL}` (`url_rewrites`), runs the JSVM pre middleware
 *   `supabase/gateway/middleware/strip_client_addresses.js` (client-sent X-Real-IP and
 *   X-Forwarded-For removed before Tyk derives the client's address; URLs with `$` refused), and
 *   sends each function the shared secret (from the gateway's environment, `env://…`) and the
 *   client's address, with no X-Forwarded-For or X-Real-IP, and Supabase's `X-Region` header,
 *   which runs the functions in the database's region instead of the one nearest the caller.
 *   `{SUPABASE_FUNCTIONS_URL}`, `{TORVUS_API_DOMAIN}` and (by default) `{SUPABASE_FUNCTIONS_REGION}`
 *   are replaced on import; see supabase/gateway/README.md.
 *
 * `deno task gateway:export` writes both; `--check` only compares them with the committed files
 * and exits 1 on a difference. `--region <region>` (or `TORVUS_FUNCTIONS_REGION`) fills in the
 * region, and `--out <dir>` writes there instead (the committed files keep the placeholder).
 * `tools/gateway/gateway_export_test.ts` checks the committed files, and `tools/gateway/tyk_model_test.ts` runs
 * requests through a model of Tyk over the definition.
 *
 * @module
 */
import {
  GATEWAY_ROUTES,
  type GatewayRoute,
  isBelow,
} from "../supabase/functions/_shared/routes.ts";
import { MANIFEST } from "../supabase/functions/_shared/manifest.ts";
import type { RouteSpec } from "../supabase/functions/_shared/http/spec.ts";
import { CLIENT_IP_HEADER, GATEWAY_SECRET_HEADER } from "../supabase/functions/_shared/ip.ts";

/** Replaced by the deployment's functions URL when the definition is imported. */
export const FUNCTIONS_URL = "{SUPABASE_FUNCTIONS_URL}";
/** Replaced by the API's public host name (e.g. `api.torvus.example`) on import. */
export const API_DOMAIN = "{TORVUS_API_DOMAIN}";
/**
 * Supabase's request header that runs a function in a given region rather than the one nearest
 * the caller (supabase-js: `region` / `FunctionRegion`; the platform reports where it ran in the
 * `x-sb-edge-region` response header). Every rate-limit decision is a round trip to Redis and
 * every query one to the database, so the functions belong in their region: far from Redis the
 * limiter's 300 ms call deadline is reached and limits are skipped (docs/DEPLOY.md).
 */
export const REGION_HEADER = "X-Region";
/**
 * The regions Supabase can pin a function to (Regional Invocations guide). `any` sends no header:
 * the platform's default, the region nearest the caller.
 */
export const FUNCTION_REGIONS = [
  "ap-northeast-1",
  "ap-northeast-2",
  "ap-south-1",
  "ap-southeast-1",
  "ap-southeast-2",
  "ca-central-1",
  "eu-central-1",
  "eu-west-1",
  "eu-west-2",
  "eu-west-3",
  "sa-east-1",
  "us-east-1",
  "us-west-1",
  "us-west-2",
] as const;
/**
 * The committed definition's region: a placeholder replaced on import like the URL's, since no
 * region is right for every project (it is the project's database region, or the nearest one in
 * {@link FUNCTION_REGIONS}).
 */
export const REGION_PLACEHOLDER = "{SUPABASE_FUNCTIONS_REGION}";
/** The environment variable `deno task gateway:export` reads the region from. */
export const REGION_ENV = "TORVUS_FUNCTIONS_REGION";

/** Options of the export. */
export interface ExportOptions {
  /** A region of {@link FUNCTION_REGIONS}, `any`, or (default) {@link REGION_PLACEHOLDER}. */
  region?: string;
}

/** Checks a region for the export: one Supabase pins functions to, `any`, or the placeholder. */
export function exportRegion(region: string | undefined): string {
  if (region === undefined || region === "") return REGION_PLACEHOLDER;
  if (region === "any" || region === REGION_PLACEHOLDER) return region;
  if ((FUNCTION_REGIONS as readonly string[]).includes(region)) return region;
  throw new Error(
    `unknown functions region "${region}": one of ${FUNCTION_REGIONS.join(", ")}, or any`,
  );
}

/**
 * The gateway process's environment variable holding the shared secret. The definition says
 * `env://TORVUS_GATEWAY_SECRET`, which Tyk (5.3+) replaces with its value when it loads the
 * definition; the functions compare it with their own TORVUS_GATEWAY_SECRET.
 */
export const GATEWAY_SECRET_ENV = "TORVUS_GATEWAY_SECRET";

/** Every method a gateway forwards: a function answers 405 itself for those it lacks. */
export const FORWARDED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/** Go's canonical form of a header name (`x-torvus-client-ip` → `X-Torvus-Client-Ip`). */
const canonicalHeader = (name: string) =>
  name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash, c: string) => dash + c.toUpperCase());

/** The headers, as the exported files spell them (names are case-insensitive). */
export const HEADERS = {
  secret: canonicalHeader(GATEWAY_SECRET_HEADER),
  clientIp: canonicalHeader(CLIENT_IP_HEADER).replace(/-Ip$/, "-IP"),
  forwardedFor: "X-Forwarded-For",
  realIp: "X-Real-IP",
} as const;

/**
 * The client-sent headers Tyk derives a client's address from (request/real_ip.go: X-Real-IP,
 * then X-Forwarded-For, then the TCP peer). The pre middleware deletes them before Tyk does.
 */
export const CLIENT_ADDRESS_HEADERS = [HEADERS.realIp, HEADERS.forwardedFor] as const;

/**
 * Removed from every request before the gateway's own are set (`global_headers_remove`):
 * X-Forwarded-For there also stops Tyk appending the peer to it when it proxies; `X-Region` so a
 * client cannot send the functions far from Redis and the database (with region `any` too);
 * `Connection` so a client cannot name the gateway's headers as hop-by-hop ones for the proxy
 * to drop.
 */
export const REMOVED_HEADERS = [
  HEADERS.forwardedFor,
  HEADERS.realIp,
  HEADERS.clientIp,
  HEADERS.secret,
  REGION_HEADER,
  "Connection",
] as const;

/** The JSVM pre middleware: its object name in the file, and where Tyk loads it from. */
export const PRE_MIDDLEWARE = {
  name: "torvusStripClientAddresses",
  /** In this repository. */
  file: "supabase/gateway/middleware/strip_client_addresses.js",
  /** In the definition: relative to the gateway's working directory (`/opt/tyk-gateway`). */
  path: "middleware/strip_client_addresses.js",
} as const;

/**
 * `config_data.torvus_client_address`, read by the pre middleware: `peer` (the TCP peer is the
 * client: X-Real-IP is deleted too) or `x-real-ip` (a load balancer in front of Tyk, the only
 * way to it, overwrites X-Real-IP with its own peer: X-Real-IP is kept).
 */
export const CLIENT_ADDRESS_MODES = ["peer", "x-real-ip"] as const;

/** The files the export writes, relative to the repository root. */
export const OUTPUT_FILES = {
  routes: "supabase/gateway/routes.json",
  tyk: "supabase/gateway/tyk-api-definition.json",
} as const;

type Json = Record<string, unknown>;

/** The other mounts of a route's function below its target: they own those paths. */
const deeperMounts = (route: GatewayRoute) =>
  GATEWAY_ROUTES.filter((other) =>
    other.function === route.function && other.target.startsWith(route.target + "/")
  );

/** Sub-paths of a prefix that other routes own (`/api/vaults/v1` is not `/api/vaults`'s). */
export function excludedSegments(route: GatewayRoute): string[] {
  return deeperMounts(route).map((other) => {
    const rest = other.target.slice(route.target.length + 1);
    if (rest.includes("/")) {
      throw new Error(`cannot export "${other.target}" below "${route.target}": one segment only`);
    }
    return rest;
  });
}

/** The methods the function implements below a prefix (and OPTIONS, which it answers). */
function methodsOf(route: GatewayRoute): string[] {
  const deeper = deeperMounts(route);
  const methods = new Set<string>(["OPTIONS"]);
  for (const spec of MANIFEST[route.function].routes as readonly RouteSpec[]) {
    if (isBelow(spec.path, route.target) && !deeper.some((d) => isBelow(spec.path, d.target))) {
      for (const m of Object.keys(spec.methods)) methods.add(m);
    }
  }
  if (methods.size === 1) throw new Error(`no route of "${route.function}" below ${route.path}`);
  return FORWARDED_METHODS.filter((m) => methods.has(m));
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const escapeInClass = (text: string) => text.replace(/[\\\]^[-]/g, "\\$&");

/** Characters that end a segment of a decoded path: `$` is never admitted (see the README). */
const PATH_STOP = "/$";
/** The same in the escaped URL Tyk's rewriter matches, where `?` starts the query. */
const URL_STOP = "/?$";
/** Segments no public path may have: a proxy or the platform could resolve them. */
const DOT_SEGMENTS = [".", ".."];

/**
 * A regular expression for one non-empty path segment of characters other than `stop`, equal
 * to none of `forbidden`. Spelled out as a tree of prefixes, since RE2 (Go) has no lookahead.
 */
export function segmentOtherThan(forbidden: readonly string[], stop: string): string {
  const anyChar = `[^${escapeInClass(stop)}]`;
  const node = (prefix: string): string => {
    const next = [
      ...new Set(
        forbidden.filter((f) => f.length > prefix.length && f.startsWith(prefix))
          .map((f) => f[prefix.length]!),
      ),
    ].sort();
    const options = [`[^${escapeInClass(next.join("") + stop)}]${anyChar}*`];
    for (const c of next) options.push(escape(c) + node(prefix + c));
    const endsHere = prefix !== "" && !forbidden.includes(prefix);
    if (endsHere) return `(?:${options.join("|")})?`;
    return options.length === 1 ? options[0]! : `(?:${options.join("|")})`;
  };
  return node("");
}

/** The rest of a path below a prefix: nothing, `/`, or non-empty segments (and a final `/`). */
function restPattern(route: GatewayRoute, stop: string): string {
  const first = segmentOtherThan([...DOT_SEGMENTS, ...excludedSegments(route)], stop);
  const next = segmentOtherThan(DOT_SEGMENTS, stop);
  return `(?:/${first}(?:/${next})*)?/?`;
}

/**
 * The decoded request paths a route admits, anchored at both ends (so neither Tyk's
 * unanchored matching nor its prefix/suffix options change it): the prefix, or the prefix and
 * non-empty segments, none `.` or `..`, the first not one another route owns, without `$`.
 * Tyk matches it (`white_list`, `url_rewrites[].path`) against the decoded `r.URL.Path`.
 */
export function pathPattern(route: GatewayRoute): string {
  const pattern = `^${escape(route.path)}${restPattern(route, PATH_STOP)}$`;
  // Tyk's path compiler would rewrite `{…}` (mux parameters) and `/*`.
  if (/[{}]/.test(pattern) || pattern.includes("/*")) {
    throw new Error(`Tyk would rewrite the path pattern ${pattern}`);
  }
  return pattern;
}

/**
 * The regular expression a rewrite matches against the request URL (escaped path and query, as
 * Tyk's rewriter sees it): `$1` the rest of the path, `$2` the query. Neither capture can hold
 * `$`, which Tyk would expand as a `$secret_…`/`$tyk_…` label after substituting them.
 */
export function matchPattern(route: GatewayRoute): string {
  return `^${escape(route.path)}(${restPattern(route, URL_STOP)})(\\?[^$]*)?$`;
}

const upstream = (route: GatewayRoute) => `${FUNCTIONS_URL}/${route.function}${route.target}`;

/** Where a rewrite sends a route's paths: `$1` and `$2` from `matchPattern`. */
export function rewriteTo(route: GatewayRoute): string {
  return `${upstream(route)}$1$2`;
}

/** The neutral export. */
export function routesExport(options: ExportOptions = {}): Json {
  const region = exportRegion(options.region);
  return {
    $comment: "Generated by `deno task gateway:export` from " +
      "supabase/functions/_shared/routes.ts; do not edit. A request whose decoded path matches " +
      "a route's `path_pattern` goes to `upstream` + the rest of its path and its query, for " +
      "every method in `methods` (the function answers 405 itself for the others it lacks); " +
      "`excludes` are sub-paths other entries own. Any other path, and any URL with `$`, is " +
      "answered by the gateway and never forwarded.",
    functions_url: FUNCTIONS_URL,
    headers: {
      $comment: "On every forwarded request: remove `remove` whatever the client sent, then set " +
        "`set`. The functions never read X-Forwarded-For or X-Real-IP; they take " +
        `${HEADERS.clientIp} as the client's address only with the right ${HEADERS.secret}. ` +
        "The address is the gateway's own view of the client (its TCP peer, or a header a " +
        "load balancer in front of it overwrites), never one the client sent. A gateway that " +
        "honours `Connection` must not let it drop the headers it sets. " +
        `${REGION_HEADER} runs the functions in the database's region (Supabase's header); a ` +
        "client's own is removed, and a query naming `forceFunctionRegion` refused.",
      remove: [
        HEADERS.forwardedFor,
        HEADERS.realIp,
        HEADERS.clientIp,
        HEADERS.secret,
        REGION_HEADER,
      ],
      set: {
        [HEADERS.secret]: `the value of ${GATEWAY_SECRET_ENV} (the gateway's secret store)`,
        [HEADERS.clientIp]: "the client's address as the gateway saw it",
        ...regionHeaders(region),
      },
    },
    routes: GATEWAY_ROUTES.map((route) => ({
      path: route.path,
      path_pattern: pathPattern(route),
      function: route.function,
      target: route.target,
      upstream: upstream(route),
      credentials: route.credentials,
      methods: methodsOf(route),
      excludes: excludedSegments(route).map((s) => `${route.path}/${s}`),
    })),
  };
}

/** The region header the gateway sets: none for `any`. */
function regionHeaders(region: string): Record<string, string> {
  return region === "any" ? {} : { [REGION_HEADER]: region };
}

/** The Tyk classic API definition. */
export function tykExport(options: ExportOptions = {}): Json {
  const region = exportRegion(options.region);
  const entries = GATEWAY_ROUTES.flatMap((route) =>
    FORWARDED_METHODS.map((method) => ({ route, method }))
  );
  return {
    name: "Torvus API",
    api_id: "torvus-api",
    slug: "torvus-api",
    active: true,
    // The functions authenticate (JWT or X-API-Key) and rate-limit every request themselves.
    use_keyless: true,
    strip_auth_data: false,
    disable_rate_limit: true,
    disable_quota: true,
    // The functions answer CORS and preflights; OPTIONS is on the allow list for every path.
    CORS: { enable: false, options_passthrough: false },
    // `$tyk_context.remote_addr` below.
    enable_context_vars: true,
    // Effective only with `enable_custom_domains` in tyk.conf.
    domain: API_DOMAIN,
    config_data: { torvus_client_address: CLIENT_ADDRESS_MODES[0] },
    custom_middleware: {
      driver: "otto",
      pre: [{
        name: PRE_MIDDLEWARE.name,
        path: PRE_MIDDLEWARE.path,
        require_session: false,
        raw_body_only: false,
      }],
    },
    proxy: {
      listen_path: "/",
      // Only for a request no rewrite takes, which the allow list leaves none of.
      target_url: FUNCTIONS_URL,
      strip_listen_path: false,
      preserve_host_header: false,
      disable_strip_slash: false,
    },
    version_data: {
      not_versioned: true,
      default_version: "Default",
      versions: {
        Default: {
          name: "Default",
          use_extended_paths: true,
          ignore_endpoint_case: false,
          global_headers_disabled: false,
          global_headers_remove: [...REMOVED_HEADERS],
          global_headers: {
            [HEADERS.secret]: `env://${GATEWAY_SECRET_ENV}`,
            // Computed after the pre middleware deleted X-Real-IP and X-Forwarded-For.
            [HEADERS.clientIp]: "$tyk_context.remote_addr",
            ...regionHeaders(region),
          },
          extended_paths: {
            white_list: entries.map(({ route, method }) => ({
              disabled: false,
              path: pathPattern(route),
              method,
              ignore_case: false,
            })),
            url_rewrites: entries.map(({ route, method }) => ({
              disabled: false,
              path: pathPattern(route),
              method,
              match_pattern: matchPattern(route),
              rewrite_to: rewriteTo(route),
            })),
          },
        },
      },
    },
  };
}

/** Every output file's content (as committed with the default options). */
export function renderExports(options: ExportOptions = {}): Map<string, string> {
  const text = (value: unknown) => JSON.stringify(value, null, 2) + "\n";
  return new Map([
    [OUTPUT_FILES.routes, text(routesExport(options))],
    [OUTPUT_FILES.tyk, text(tykExport(options))],
  ]);
}

/** `--name value` or `--name=value` from the command line. */
function option(args: readonly string[], name: string): string | undefined {
  const at = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (at < 0) return undefined;
  const arg = args[at]!;
  return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[at + 1];
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  const check = Deno.args.includes("--check");
  const out = option(Deno.args, "--out");
  let region: string;
  try {
    region = exportRegion(option(Deno.args, "--region") ?? Deno.env.get(REGION_ENV));
  } catch (error) {
    console.error(`gateway export: ${(error as Error).message}`);
    Deno.exit(2);
  }
  let stale = 0;
  for (const [path, content] of renderExports({ region })) {
    const file = out === undefined
      ? new URL(path, root)
      : new URL(path.split("/").pop()!, new URL(out.replace(/\/?$/, "/"), `file://${Deno.cwd()}/`));
    if (check) {
      const current = await Deno.readTextFile(file).catch(() => undefined);
      if (current !== content) {
        console.error(`gateway export: ${path} is out of date; run deno task gateway:export`);
        stale++;
      }
      continue;
    }
    await Deno.mkdir(new URL(".", file), { recursive: true });
    await Deno.writeTextFile(file, content);
    console.log(`gateway export: wrote ${out === undefined ? path : file.pathname}`);
  }
  if (stale > 0) Deno.exit(1);
}
