/**
 * Each function loads its own spec and nothing of the others': its module graph (what the Edge
 * Runtime bundles) holds its own `spec.ts` and no other function's, and never the manifest,
 * which would bring every function's schemas. The one exception is `openapi`, whose document
 * describes every function: it loads them all, through the manifest.
 */
import assert from "node:assert/strict";
import { FUNCTIONS, MANIFEST } from "./manifest.ts";

const functionsDir = new URL("../", import.meta.url);

/** The local modules of `index.ts`'s graph, as paths relative to `supabase/functions/`. */
async function moduleGraph(name: string): Promise<string[]> {
  const entry = new URL(`${name}/index.ts`, functionsDir);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "info",
      "--json",
      // No lock file beside the function: the run must leave the tree as it found it.
      "--no-lock",
      "--config",
      new URL(`${name}/deno.json`, functionsDir).pathname,
      entry.pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: Array<{ specifier: string }>;
  };
  return info.modules.map((m) => m.specifier)
    .filter((s) => s.startsWith(functionsDir.href))
    .map((s) => s.slice(functionsDir.href.length));
}

for (const name of FUNCTIONS.filter((f) => f !== "openapi")) {
  Deno.test(`${name}: its bundle holds its own spec and no other function's`, async () => {
    const graph = await moduleGraph(name);
    assert.ok(graph.includes(`${name}/spec.ts`), `${name}/spec.ts is not loaded`);
    assert.ok(!graph.includes("_shared/manifest.ts"), "the manifest is loaded");
    const others = FUNCTIONS.filter((f) => f !== name).map((f) => `${f}/spec.ts`);
    assert.deepEqual(graph.filter((m) => others.includes(m)), []);
  });
}

Deno.test("openapi: its bundle holds every function's spec, for the document", async () => {
  const graph = await moduleGraph("openapi");
  for (const name of FUNCTIONS) assert.ok(graph.includes(`${name}/spec.ts`), name);
});

Deno.test("the manifest gathers each function's spec under its folder's name", async () => {
  for (const name of FUNCTIONS) {
    const { spec } = await import(`../${name}/spec.ts`);
    assert.equal(MANIFEST[name], spec, name);
  }
});
