/**
 * The README's route table ("What it serves") says what the manifest serves: every operation at
 * its public gateway path, with its function, and nothing else. A route added without the README,
 * or a README row naming a path or method that does not exist, fails here.
 *
 * The table's first column lists `METHODS /path` items; an item starting with `…` continues the
 * previous item's path.
 *
 * @module
 */
import assert from "node:assert/strict";
import { MANIFEST } from "../supabase/functions/_shared/manifest.ts";
import { GATEWAY_ROUTES, isBelow } from "../supabase/functions/_shared/routes.ts";
import type { RouteSpec } from "../supabase/functions/_shared/http/spec.ts";

/** `GET /api/vaults/{id} → vaults` lines of the README's table. */
async function documented(): Promise<Set<string>> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.split("\n## What it serves")[1]?.split("\n## ")[0] ?? "";
  const out = new Set<string>();
  for (const row of section.split("\n").filter((l) => l.startsWith("| `"))) {
    const [paths = "", fn = ""] = row.split("|").slice(1).map((c) => c.trim());
    const name = fn.replace(/`/g, "");
    let previous = "";
    for (const item of paths.matchAll(/`([A-Z, ]+) ([^`]+)`/g)) {
      const path = item[2]!.startsWith("…") ? previous + item[2]!.slice(1) : item[2]!;
      for (const method of item[1]!.split(",").map((m) => m.trim())) {
        out.add(`${method} ${path} → ${name}`);
      }
      previous = path.replace(/\/(rotate|test|deliveries.*|revoke|roll|usage)$/, "");
    }
  }
  return out;
}

/** The same lines from the manifest: each operation at each public prefix of its function. */
function served(): Set<string> {
  const out = new Set<string>();
  for (const g of GATEWAY_ROUTES) {
    for (const route of MANIFEST[g.function].routes as readonly RouteSpec[]) {
      // As the security matrix: a prefix serves the routes of its own credential kind.
      if (route.auth !== g.credentials || !isBelow(route.path, g.target)) continue;
      const rest = route.path.slice(g.target.length).replace(/\/$/, "");
      const path = (g.path + rest).replace(/:([a-z_]+)/g, "{$1}");
      for (const method of Object.keys(route.methods)) out.add(`${method} ${path} → ${g.function}`);
    }
  }
  return out;
}

Deno.test("README: the route table lists exactly the manifest's operations at their gateway paths", async () => {
  const readme = await documented();
  const manifest = served();
  assert.deepEqual(
    [...manifest].filter((r) => !readme.has(r)).sort(),
    [],
    "served but not in the README",
  );
  assert.deepEqual(
    [...readme].filter((r) => !manifest.has(r)).sort(),
    [],
    "in the README but not served",
  );
});
