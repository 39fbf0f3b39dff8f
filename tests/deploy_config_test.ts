/**
 * What `supabase functions deploy` reads, held against the code: every function folder is in
 * the route table's list and in config.toml (with the platform's JWT gate off), and carries a
 * `deno.json` whose imports are the root import map's, so the CLI bundles each function with
 * exactly the versions the tests ran.
 *
 * @module
 */
import assert from "node:assert/strict";
import { FUNCTIONS } from "../supabase/functions/_shared/routes.ts";
import { EDGE_DENO, EDGE_DENO_ENV } from "../tools/runtime/edge_deno.ts";

const ROOT = new URL("../", import.meta.url);
const FUNCTIONS_DIR = new URL("supabase/functions/", ROOT);

const folders = [...Deno.readDirSync(FUNCTIONS_DIR)]
  .filter((e) => e.isDirectory && !e.name.startsWith("_") && !e.name.startsWith("."))
  .map((e) => e.name)
  .sort();

/** `[functions.<name>]` tables and their keys, from config.toml. */
function configTables(): Map<string, Map<string, string>> {
  const tables = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of Deno.readTextFileSync(new URL("supabase/config.toml", ROOT)).split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    const table = /^\[functions\.([A-Za-z0-9_-]+)\]$/.exec(line);
    if (table) {
      current = new Map();
      tables.set(table[1]!, current);
    } else if (line.startsWith("[")) {
      current = undefined;
    } else if (current && line.includes("=")) {
      const [k, v] = line.split("=").map((p) => p.trim());
      current.set(k!, v!);
    }
  }
  return tables;
}

Deno.test("deploy config: every function folder is a listed function, and the reverse", () => {
  assert.deepEqual(folders, [...FUNCTIONS].sort());
  for (const name of folders) {
    Deno.statSync(new URL(`${name}/index.ts`, FUNCTIONS_DIR));
  }
});

Deno.test("deploy config: config.toml has each function with verify_jwt = false", () => {
  const tables = configTables();
  assert.deepEqual([...tables.keys()].sort(), folders);
  for (const [name, keys] of tables) {
    assert.equal(keys.get("verify_jwt"), "false", `${name}: the functions check credentials`);
  }
});

Deno.test("deploy config: each function's deno.json maps the root's imports", () => {
  const root = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))).imports as Record<
    string,
    string
  >;
  for (const name of folders) {
    const own = JSON.parse(Deno.readTextFileSync(new URL(`${name}/deno.json`, FUNCTIONS_DIR)));
    const imports = own.imports as Record<string, string>;
    assert.ok(Object.keys(imports).length > 0, `${name}/deno.json has imports`);
    for (const [specifier, target] of Object.entries(imports)) {
      const expected = root[specifier];
      assert.ok(expected !== undefined, `${name}: ${specifier} is not in the root import map`);
      // A local path is relative to the file that declares it.
      const resolved = target.startsWith(".")
        ? new URL(target, new URL(`${name}/`, FUNCTIONS_DIR)).href
        : target;
      const wanted = expected.startsWith(".") ? new URL(expected, ROOT).href : expected;
      assert.equal(resolved, wanted, `${name}: ${specifier}`);
    }
  }
});

Deno.test("deploy config: each function's graph resolves with its own deno.json on Deno 2.1", async () => {
  for (const name of folders) {
    const out = await new Deno.Command(EDGE_DENO, {
      args: [
        "info",
        "--no-lock",
        "--json",
        "--config",
        new URL(`${name}/deno.json`, FUNCTIONS_DIR).pathname,
        new URL(`${name}/index.ts`, FUNCTIONS_DIR).pathname,
      ],
      env: EDGE_DENO_ENV,
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `${name}: ${new TextDecoder().decode(out.stderr)}`);
    const info = JSON.parse(text) as { modules: Array<{ specifier: string; error?: string }> };
    const broken = info.modules.filter((m) => m.error !== undefined);
    assert.deepEqual(broken, [], `${name}: every import resolves`);
  }
});
