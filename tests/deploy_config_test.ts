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
import { oauthServerSettings } from "../tools/auth/oauth_server.ts";

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

/** What the installed Supabase CLI says of a project folder's config.toml (`status` reads it). */
async function cliReadsConfig(dir: URL): Promise<string> {
  const cli = new URL("tools/toolchain/node_modules/.bin/supabase", ROOT).pathname;
  const out = await new Deno.Command(cli, {
    args: ["status", "--workdir", dir.pathname],
    env: { SUPABASE_ACCESS_TOKEN: "", DO_NOT_TRACK: "1" },
    stdin: "null",
  }).output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

Deno.test("deploy config: the CLI reads config.toml, [auth.oauth_server] as the stand-in does", async () => {
  const text = Deno.readTextFileSync(new URL("supabase/config.toml", ROOT));
  assert.deepEqual(oauthServerSettings(text), {
    enabled: true,
    authorizationPath: "/oauth/consent",
    allowDynamicRegistration: false,
    authorizationTtlSeconds: 600,
    defaultScope: "email",
  });
  // `supabase status` type-checks the whole file before it looks for Docker.
  assert.doesNotMatch(await cliReadsConfig(ROOT), /failed to read config/);
  const dir = await Deno.makeTempDir({ prefix: "torvus-config-" });
  try {
    await Deno.mkdir(`${dir}/supabase`);
    const broken = text.replace(/(\[auth\.oauth_server\]\nenabled = )true/, '$1"yes"');
    assert.notEqual(broken, text);
    await Deno.writeTextFile(`${dir}/supabase/config.toml`, broken);
    const said = await cliReadsConfig(new URL(`file://${dir}/`));
    assert.match(said, /failed to read config: Expected boolean/, "the check bites");
    assert.match(said, /oauth_server/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
