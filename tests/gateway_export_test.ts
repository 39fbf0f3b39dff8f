/**
 * The gateway export (`tools/gateway_export.ts`): the committed files are exactly what the route
 * table exports today, and every Tyk rewrite sends a public path (and its query) to the same
 * function path as `resolveGatewayPath`, the dev server's router, and nothing else.
 */
import assert from "node:assert/strict";
import {
  FORWARDED_METHODS,
  FUNCTIONS_URL,
  OUTPUT_FILES,
  renderExports,
  routesExport,
  tykExport,
} from "../tools/gateway_export.ts";
import { GATEWAY_ROUTES, resolveGatewayPath } from "../supabase/functions/_shared/routes.ts";
import { openApiDocument } from "../supabase/functions/openapi/handler.ts";

const root = new URL("../", import.meta.url);

interface Rewrite {
  path: string;
  method: string;
  match_pattern: string;
  rewrite_to: string;
}

const rewrites = () => {
  const tyk = tykExport() as {
    version_data: { versions: { Default: { extended_paths: { url_rewrites: Rewrite[] } } } };
  };
  return tyk.version_data.versions.Default.extended_paths.url_rewrites;
};

/** Where a rewrite sends `url` (path and query), or undefined when it does not match. */
function apply(rule: Rewrite, url: string): string | undefined {
  const match = new RegExp(rule.match_pattern).exec(url);
  if (!match) return undefined;
  return rule.rewrite_to.replace(/\$(\d)/g, (_, i) => match[Number(i)] ?? "");
}

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
        "/v1",
        "/v1/",
        "/v1/abc?q=1",
        "/v",
        "/v2",
        "/v10",
        "/va",
        "x",
        "-x/y",
      ]
    ) out.add(path + rest);
  }
  out.add("/api");
  out.add("/api/");
  out.add("/functions/v1/health");
  return [...out];
}

Deno.test("the committed gateway files are the export of the current route table", async () => {
  for (const [path, content] of renderExports()) {
    const committed = await Deno.readTextFile(new URL(path, root)).catch(() => "(missing)");
    assert.equal(committed, content, `${path} is stale: run deno task gateway:export`);
  }
  assert.deepEqual([...renderExports().keys()].sort(), Object.values(OUTPUT_FILES).sort());
});

Deno.test("every Tyk rewrite sends a public path where resolveGatewayPath does", () => {
  const rules = rewrites();
  assert.equal(rules.length, GATEWAY_ROUTES.length * FORWARDED_METHODS.length);
  for (const method of FORWARDED_METHODS) {
    const mine = rules.filter((r) => r.method === method);
    for (const url of samples()) {
      const [pathname] = url.split("?");
      const query = url.slice(pathname!.length);
      const expected = resolveGatewayPath(pathname!);
      const hits = mine.map((rule) => apply(rule, url)).filter((to) => to !== undefined);
      if (expected === undefined) {
        assert.deepEqual(hits, [], `${method} ${url} is no gateway path; no rule may take it`);
        continue;
      }
      const upstream = FUNCTIONS_URL + expected.functionPath.slice("/functions/v1".length) +
        query;
      assert.deepEqual(hits, [upstream], `${method} ${url}`);
    }
  }
});

Deno.test("the rewrites compile as RE2 would read them: no lookaround, no backreferences", () => {
  for (const rule of rewrites()) {
    assert.doesNotMatch(rule.match_pattern, /\(\?[=!<]|\\[1-9]/, rule.match_pattern);
    assert.ok(rule.rewrite_to.startsWith(`${FUNCTIONS_URL}/`), rule.rewrite_to);
  }
});

Deno.test("routes.json lists every route with the methods the API reference documents", () => {
  const exported = routesExport() as {
    routes: Array<{ path: string; function: string; methods: string[]; excludes: string[] }>;
  };
  assert.deepEqual(exported.routes.map((r) => r.path), GATEWAY_ROUTES.map((r) => r.path));
  const paths = openApiDocument().paths as Record<string, Record<string, unknown>>;
  for (const [template, item] of Object.entries(paths)) {
    const owner = exported.routes.find((r) =>
      (template === r.path || template.startsWith(r.path + "/")) &&
      !r.excludes.some((e) => template === e || template.startsWith(e + "/"))
    );
    assert.ok(owner, `${template} has a gateway route`);
    for (const method of Object.keys(item).filter((k) => k !== "parameters")) {
      assert.ok(owner.methods.includes(method.toUpperCase()), `${method} ${template} is listed`);
    }
  }
});
