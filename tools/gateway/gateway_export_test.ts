/**
 * The gateway export (`tools/gateway_export.ts`): the committed files are exactly what the route
 * table exports today; every pattern admits a public path exactly where `resolveGatewayPath`
 * sends it (and nothing else), and every rewrite sends it (and its query) to the same function
 * path; the Tyk definition keeps to keys of Tyk's classic API definition, names its secret only
 * by `env://`, and its pre middleware is the shipped file. How Tyk runs it all is
 * `tools/gateway/tyk_model_test.ts`.
 */
import assert from "node:assert/strict";
import {
  CLIENT_ADDRESS_HEADERS,
  CLIENT_ADDRESS_MODES,
  exportRegion,
  FORWARDED_METHODS,
  FUNCTION_REGIONS,
  FUNCTIONS_URL,
  GATEWAY_SECRET_ENV,
  HEADERS,
  matchPattern,
  OUTPUT_FILES,
  pathPattern,
  PRE_MIDDLEWARE,
  REGION_HEADER,
  REGION_PLACEHOLDER,
  REMOVED_HEADERS,
  renderExports,
  rewriteTo,
  routesExport,
  segmentOtherThan,
  tykExport,
} from "../gateway_export.ts";
import { GATEWAY_ROUTES, resolveGatewayPath } from "../../supabase/functions/_shared/routes.ts";
import { CLIENT_IP_HEADER, GATEWAY_SECRET_HEADER } from "../../supabase/functions/_shared/ip.ts";
import { openApiDocument } from "../../supabase/functions/openapi/handler.ts";

const root = new URL("../../", import.meta.url);

interface Rewrite {
  disabled: boolean;
  path: string;
  method: string;
  match_pattern: string;
  rewrite_to: string;
}
interface Allowed {
  disabled: boolean;
  path: string;
  method: string;
  ignore_case: boolean;
}
interface Version {
  global_headers: Record<string, string>;
  global_headers_remove: string[];
  extended_paths: { white_list: Allowed[]; url_rewrites: Rewrite[] };
}

const version = (region?: string) =>
  (tykExport(region === undefined ? {} : { region }) as {
    version_data: { versions: { Default: Version } };
  }).version_data.versions.Default;

/** Where a rewrite sends `url` (escaped path and query), or undefined when it does not match. */
function apply(rule: Rewrite, url: string): string | undefined {
  const match = new RegExp(rule.match_pattern).exec(url);
  if (!match) return undefined;
  return rule.rewrite_to.replace(/\$(\d)/g, (_, i) => match[Number(i)] ?? "");
}

/** Shapes the Tyk definition refuses although `resolveGatewayPath` maps them. */
const refusedShape = (path: string) => /\/\/|(^|\/)\.{1,2}(\/|$)|\$/.test(path);

/** Sample public URLs around every prefix: the prefix, below it, near misses, excluded parts. */
function samples(): string[] {
  const out = new Set<string>();
  for (const { path } of GATEWAY_ROUTES) {
    for (
      const rest of [
        "",
        "/",
        "?limit=5&offset=0",
        "/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/00000000-0000-4000-8000-000000000000?x=1",
        "/a/roll",
        "/a/revoke/",
        "/v1",
        "/v1/",
        "/v1/abc?q=1",
        "//v1/abc",
        "//x",
        "/./v1",
        "/../v1",
        "/.../x",
        "/.x",
        "/..x",
        "/v",
        "/v2",
        "/v10",
        "/va",
        "/$x",
        "x",
        "-x/y",
        "/api/keys",
      ]
    ) out.add(path + rest);
  }
  for (const other of ["/", "/api", "/api/", "/functions/v1/health", "/health", "/vaults/v1/x"]) {
    out.add(other);
  }
  return [...out];
}

Deno.test("the committed gateway files are the export of the current route table", async () => {
  for (const [path, content] of renderExports()) {
    const committed = await Deno.readTextFile(new URL(path, root)).catch(() => "(missing)");
    assert.equal(committed, content, `${path} is stale: run deno task gateway:export`);
  }
  assert.deepEqual([...renderExports().keys()].sort(), Object.values(OUTPUT_FILES).sort());
});

Deno.test("a segment pattern admits every segment but the forbidden ones", () => {
  const rx = new RegExp(`^${segmentOtherThan([".", "..", "v1"], "/$")}$`);
  for (const s of ["x", "v", "v2", "v10", "v1x", "va", "...", ".x", "..x", "V1", "%76%31"]) {
    assert.match(s, rx, s);
  }
  for (const s of ["", ".", "..", "v1", "a/b", "a$", "$"]) assert.doesNotMatch(s, rx, s);
});

Deno.test("the allow list and the rewrites agree with resolveGatewayPath", () => {
  const { white_list, url_rewrites } = version().extended_paths;
  assert.equal(white_list.length, GATEWAY_ROUTES.length * FORWARDED_METHODS.length);
  assert.equal(url_rewrites.length, white_list.length);
  for (const method of FORWARDED_METHODS) {
    const allowed = white_list.filter((w) => w.method === method);
    const rules = url_rewrites.filter((r) => r.method === method);
    for (const url of samples()) {
      const [pathname] = url.split("?");
      const query = url.slice(pathname!.length);
      const expected = resolveGatewayPath(pathname!);
      const admitted = allowed.some((w) => new RegExp(w.path).test(pathname!));
      // Tyk takes the first rule whose path matches (here at most one does).
      const taken = rules.filter((r) => new RegExp(r.path).test(pathname!));
      if (expected === undefined || refusedShape(pathname!)) {
        assert.ok(!admitted, `${method} ${url} is not admitted`);
        assert.deepEqual(taken, [], `${method} ${url}: no rewrite`);
        continue;
      }
      assert.ok(admitted, `${method} ${url} is admitted`);
      assert.equal(taken.length, 1, `${method} ${url}: one rewrite`);
      const upstream = FUNCTIONS_URL + expected.functionPath.slice("/functions/v1".length) +
        query;
      assert.equal(apply(taken[0]!, url), upstream, `${method} ${url}`);
    }
  }
});

Deno.test("the patterns compile as Tyk reads them", () => {
  const { white_list, url_rewrites } = version().extended_paths;
  for (const entry of [...white_list, ...url_rewrites]) {
    // Tyk rewrites `{…}` into `([^/]+)` and `/*` into `/.*`, and anchors nothing itself.
    assert.doesNotMatch(entry.path, /[{}]|\/\*/, entry.path);
    assert.match(entry.path, /^\^\/.*\$$/, `${entry.path} is anchored`);
    assert.equal(entry.disabled, false);
  }
  for (const rule of url_rewrites) {
    for (const rx of [rule.path, rule.match_pattern]) {
      // RE2 (Go): no lookaround, no backreferences.
      assert.doesNotMatch(rx, /\(\?[=!<]|\\[1-9]/, rx);
    }
    assert.ok(rule.rewrite_to.startsWith(`${FUNCTIONS_URL}/`), rule.rewrite_to);
    assert.deepEqual(rule.rewrite_to.match(/\$/g), ["$", "$"], "only $1 and $2");
    assert.ok(rule.rewrite_to.endsWith("$1$2"), rule.rewrite_to);
    const route = GATEWAY_ROUTES.find((r) => pathPattern(r) === rule.path)!;
    assert.equal(rule.match_pattern, matchPattern(route));
    assert.equal(rule.rewrite_to, rewriteTo(route));
  }
  for (const entry of white_list) assert.equal(entry.ignore_case, false);
});

/** The keys of Tyk's classic API definition (apidef/api_definitions.go) the export may use. */
const CLASSIC_KEYS: Record<string, readonly string[]> = {
  "": [
    "name",
    "api_id",
    "slug",
    "active",
    "use_keyless",
    "strip_auth_data",
    "disable_rate_limit",
    "disable_quota",
    "CORS",
    "enable_context_vars",
    "domain",
    "domain_disabled",
    "config_data",
    "custom_middleware",
    "proxy",
    "version_data",
  ],
  CORS: ["enable", "options_passthrough"],
  custom_middleware: ["pre", "driver"],
  "custom_middleware.pre[]": ["name", "path", "require_session", "raw_body_only"],
  proxy: [
    "listen_path",
    "target_url",
    "strip_listen_path",
    "preserve_host_header",
    "disable_strip_slash",
  ],
  version_data: ["not_versioned", "default_version", "versions"],
  "version_data.versions.*": [
    "name",
    "use_extended_paths",
    "global_headers",
    "global_headers_remove",
    "global_headers_disabled",
    "ignore_endpoint_case",
    "extended_paths",
  ],
  "version_data.versions.*.extended_paths": ["white_list", "url_rewrites"],
  "version_data.versions.*.extended_paths.white_list[]": [
    "disabled",
    "path",
    "method",
    "ignore_case",
  ],
  "version_data.versions.*.extended_paths.url_rewrites[]": [
    "disabled",
    "path",
    "method",
    "match_pattern",
    "rewrite_to",
  ],
};

Deno.test("the Tyk definition keeps to the classic API definition's keys", () => {
  const check = (value: unknown, at: string) => {
    if (Array.isArray(value)) {
      for (const item of value) check(item, `${at}[]`);
      return;
    }
    const keys = CLASSIC_KEYS[at];
    if (keys === undefined || value === null || typeof value !== "object") return;
    for (const [key, inner] of Object.entries(value)) {
      assert.ok(keys.includes(key), `${at || "(top)"}.${key} is a classic definition key`);
      const next = at === "version_data" && key === "versions"
        ? "version_data.versions"
        : at === "version_data.versions"
        ? "version_data.versions.*"
        : at === ""
        ? key
        : `${at}.${key}`;
      if (at === "version_data" && key === "versions") {
        for (const v of Object.values(inner as object)) check(v, "version_data.versions.*");
        continue;
      }
      check(inner, next);
    }
  };
  const tyk = tykExport();
  check(tyk, "");
  // No method_actions: an empty one would make an allow-list entry match nothing.
  assert.doesNotMatch(JSON.stringify(tyk), /method_actions/);
});

Deno.test("the secret is only named (env://), and the headers are the functions'", () => {
  const text = renderExports().get(OUTPUT_FILES.tyk)!;
  // Tyk replaces `env://([^"]+)` when it loads the definition: the whole value, nothing else.
  assert.deepEqual(text.match(/env:\/\/[^"]*/g), [`env://${GATEWAY_SECRET_ENV}`]);
  assert.doesNotMatch(text, /\$secret_/);
  const v = version();
  assert.deepEqual(v.global_headers, {
    [HEADERS.secret]: `env://${GATEWAY_SECRET_ENV}`,
    [HEADERS.clientIp]: "$tyk_context.remote_addr",
    [REGION_HEADER]: REGION_PLACEHOLDER,
  });
  assert.equal(HEADERS.secret.toLowerCase(), GATEWAY_SECRET_HEADER);
  assert.equal(HEADERS.clientIp.toLowerCase(), CLIENT_IP_HEADER);
  const removed = v.global_headers_remove.map((h) => h.toLowerCase());
  for (const name of [GATEWAY_SECRET_HEADER, CLIENT_IP_HEADER, "x-forwarded-for", "x-real-ip"]) {
    assert.ok(removed.includes(name), `${name} is removed first`);
  }
  assert.deepEqual(v.global_headers_remove, [...REMOVED_HEADERS]);
  // routes.json tells other gateways the same.
  const neutral = routesExport() as { headers: { remove: string[]; set: Record<string, string> } };
  assert.deepEqual(Object.keys(neutral.headers.set).sort(), Object.keys(v.global_headers).sort());
  for (const name of neutral.headers.remove) assert.ok(removed.includes(name.toLowerCase()));
});

Deno.test("the pre middleware is the shipped ECMAScript 5 file the definition names", async () => {
  const tyk = tykExport() as {
    custom_middleware: { driver: string; pre: Array<{ name: string; path: string }> };
    config_data: { torvus_client_address: string };
  };
  assert.equal(tyk.custom_middleware.driver, "otto");
  assert.deepEqual(
    tyk.custom_middleware.pre.map((p) => [p.name, p.path]),
    [[PRE_MIDDLEWARE.name, PRE_MIDDLEWARE.path]],
  );
  assert.ok(PRE_MIDDLEWARE.file.endsWith(PRE_MIDDLEWARE.path));
  assert.equal(tyk.config_data.torvus_client_address, CLIENT_ADDRESS_MODES[0]);
  const js = await Deno.readTextFile(new URL(PRE_MIDDLEWARE.file, root));
  assert.match(js, new RegExp(`^var ${PRE_MIDDLEWARE.name} = new TykJS\\.TykMiddleware\\.`, "m"));
  for (const name of CLIENT_ADDRESS_HEADERS) assert.ok(js.includes(`"${name}"`), name);
  for (const mode of CLIENT_ADDRESS_MODES.slice(1)) assert.ok(js.includes(`"${mode}"`), mode);
  // otto runs ECMAScript 5.
  const code = js.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
  assert.doesNotMatch(code, /=>|`|\b(let|const|class)\b|\.\.\./);
});

Deno.test("routes.json lists every route with the methods the API reference documents", () => {
  const exported = routesExport() as {
    routes: Array<
      {
        path: string;
        path_pattern: string;
        function: string;
        methods: string[];
        excludes: string[];
      }
    >;
  };
  assert.deepEqual(exported.routes.map((r) => r.path), GATEWAY_ROUTES.map((r) => r.path));
  assert.deepEqual(exported.routes.map((r) => r.path_pattern), GATEWAY_ROUTES.map(pathPattern));
  const paths = openApiDocument().paths as Record<string, Record<string, unknown>>;
  for (const [template, item] of Object.entries(paths)) {
    const owner = exported.routes.find((r) =>
      (template === r.path || template.startsWith(r.path + "/")) &&
      !r.excludes.some((e) => template === e || template.startsWith(e + "/"))
    );
    assert.ok(owner, `${template} has a gateway route`);
    assert.match(template.replace(/\{[^}]+\}/g, "x"), new RegExp(owner.path_pattern), template);
    for (const method of Object.keys(item).filter((k) => k !== "parameters")) {
      assert.ok(owner.methods.includes(method.toUpperCase()), `${method} ${template} is listed`);
    }
  }
});

Deno.test("the definition pins the functions to the region chosen at export", () => {
  // The committed files hold the placeholder, replaced on import like the functions' URL.
  assert.equal(version().global_headers[REGION_HEADER], REGION_PLACEHOLDER);
  assert.equal(exportRegion(undefined), REGION_PLACEHOLDER);
  assert.equal(exportRegion(""), REGION_PLACEHOLDER);
  for (const region of FUNCTION_REGIONS) {
    const v = version(region);
    assert.equal(v.global_headers[REGION_HEADER], region);
    // Set after the client's own is removed, so the gateway's is the only one.
    assert.ok(v.global_headers_remove.includes(REGION_HEADER));
    const neutral = routesExport({ region }) as { headers: { set: Record<string, string> } };
    assert.equal(neutral.headers.set[REGION_HEADER], region);
    assert.match(renderExports({ region }).get(OUTPUT_FILES.tyk)!, new RegExp(`"${region}"`));
  }
  // `any`: the platform's default (nearest the caller); a client still cannot choose.
  const any = version("any");
  assert.equal(any.global_headers[REGION_HEADER], undefined);
  assert.ok(any.global_headers_remove.includes(REGION_HEADER));
  // Supabase's list as its guide gives it; anything else is refused at export.
  assert.equal(FUNCTION_REGIONS.length, 14);
  for (const bad of ["eu-central-2", "us-east-2", "EU-WEST-1", "eu-west-1 ", "{x}"]) {
    assert.throws(() => exportRegion(bad), /unknown functions region/, bad);
  }
});

Deno.test("gateway:export --region writes a definition with the region filled in", async () => {
  const out = await Deno.makeTempDir({ prefix: "torvus-gateway-export-" });
  try {
    const run = (args: string[], env: Record<string, string> = {}) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          `--allow-write=${out}`,
          "--allow-env",
          "tools/gateway_export.ts",
          ...args,
        ],
        cwd: new URL(".", root).pathname,
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
    const written = await run(["--region", "eu-west-2", "--out", out]);
    assert.ok(written.success, new TextDecoder().decode(written.stderr));
    const tyk = JSON.parse(await Deno.readTextFile(`${out}/tyk-api-definition.json`));
    assert.equal(tyk.version_data.versions.Default.global_headers[REGION_HEADER], "eu-west-2");
    // The environment variable does the same; the option wins over it.
    const fromEnv = await run(["--out", out], { TORVUS_FUNCTIONS_REGION: "ap-south-1" });
    assert.ok(fromEnv.success);
    const routes = JSON.parse(await Deno.readTextFile(`${out}/routes.json`));
    assert.equal(routes.headers.set[REGION_HEADER], "ap-south-1");
    const refused = await run(["--region", "mars-1", "--out", out]);
    assert.equal(refused.code, 2);
    assert.match(new TextDecoder().decode(refused.stderr), /unknown functions region "mars-1"/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
