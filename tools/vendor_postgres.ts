/**
 * Keeps `supabase/functions/_vendor/postgres` reproducible: it must equal the npm tarball of
 * the release pinned in `supabase/functions/_vendor/postgres-patches/upstream.json` (its
 * integrity checked) with that folder's patches applied in order.
 *
 *   deno task vendor:postgres check   exits 1 and names each file that differs
 *   deno task vendor:postgres apply   rewrites the folder from the tarball and the patches
 *   deno task vendor:postgres diff    prints the folder's changes beyond the patches as a patch
 *   deno task vendor:postgres diff <name>
 *                                     writes them as the next patch file, `NNNN-<name>.patch`,
 *                                     under a header to fill in (how an edit becomes a patch)
 *
 * `./scripts/test` runs `check` as one of its checks. The tarball comes through npm (its cache,
 * else the registry); scratch files live in `.local/vendor-postgres` and are removed at the end.
 * Upgrading is described in the vendored folder's README.
 *
 * @module
 */
import { buildExpected, diffTrees, packTarball, VendorError } from "./vendor_postgres/build.ts";
import {
  compareTrees,
  describeDifference,
  isSame,
  readTree,
  type Tree,
  UpstreamRecord,
} from "./vendor_postgres/tree.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
/** The vendored copy, as deno.json's import map points at it. */
export const VENDORED = `${ROOT}/supabase/functions/_vendor/postgres`;
/** The pinned upstream and the patches, beside the copy (no function imports them). */
export const PATCHES = `${ROOT}/supabase/functions/_vendor/postgres-patches`;
const WORK = `${ROOT}/.local/vendor-postgres`;

/** The pinned upstream record. */
export async function readRecord(): Promise<UpstreamRecord> {
  const parsed = UpstreamRecord.safeParse(
    JSON.parse(await Deno.readTextFile(`${PATCHES}/upstream.json`)),
  );
  if (!parsed.success) {
    throw new VendorError(`${PATCHES}/upstream.json: ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}

/** The patch files, in the order they apply (their names start with a 4-digit number). */
export async function patchFiles(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(PATCHES)) {
    if (entry.name.endsWith(".patch")) names.push(entry.name);
  }
  return names.sort().map((name) => `${PATCHES}/${name}`);
}

/** The folder as it is, without its own files (`local` in the record). */
function readVendored(record: UpstreamRecord): Promise<Tree> {
  return readTree(VENDORED, (path) => record.local.includes(path));
}

/** Rewrites the folder's upstream files to `expected`, leaving its own files alone. */
async function rewrite(record: UpstreamRecord, expected: Tree): Promise<string[]> {
  const difference = compareTrees(expected, await readVendored(record));
  for (const path of difference.extra) await Deno.remove(`${VENDORED}/${path}`);
  for (const path of [...difference.changed, ...difference.missing]) {
    const at = `${VENDORED}/${path}`;
    await Deno.mkdir(at.slice(0, at.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(at, expected.get(path)!);
  }
  return describeDifference(difference);
}

/**
 * Writes `patch` as the next numbered patch file, under a header to fill in (the test of the
 * patch set refuses the placeholders).
 */
async function writePatch(record: UpstreamRecord, name: string, patch: string): Promise<string> {
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) {
    throw new VendorError(`a patch name is lowercase words joined by "-", not "${name}"`);
  }
  if (patch === "") throw new VendorError("the folder has no change beyond the patches");
  const number = String((await patchFiles()).length + 1).padStart(4, "0");
  const file = `${PATCHES}/${number}-${name}.patch`;
  const header = [
    "Subject: <what it changes, in one line>",
    `Kind: <fix|new|port> (<a defect of ${record.name}@${record.version}, or …>)`,
    "Upstream: <https://github.com/porsager/postgres/issues/…, or: none found>",
    "",
    "<Why it is here, and the test that shows it.>",
    "",
    "",
  ].join("\n");
  await Deno.writeTextFile(file, header + patch, { createNew: true });
  return file.slice(ROOT.length + 1);
}

async function main(command: string | undefined, name: string | undefined): Promise<number> {
  if (command !== "check" && command !== "apply" && command !== "diff") {
    console.error("usage: deno task vendor:postgres check | apply | diff [name of a new patch]");
    return 2;
  }
  const record = await readRecord();
  await Deno.remove(WORK, { recursive: true }).catch(() => {});
  try {
    const tarball = await packTarball(record, `${WORK}/npm`);
    const expected = await buildExpected(record, tarball, await patchFiles(), WORK);
    const label = `${record.name}@${record.version}`;
    if (command === "apply") {
      const written = await rewrite(record, expected);
      console.log(`vendor: ${label} + patches written (${written.length} file(s) changed)`);
      for (const line of written) console.log(`  ${line}`);
      return 0;
    }
    if (command === "diff") {
      const patch = await diffTrees(expected, await readVendored(record), WORK);
      if (name === undefined) await Deno.stdout.write(new TextEncoder().encode(patch));
      else {console.log(
          `vendor: wrote ${await writePatch(record, name, patch)}; fill in its header`,
        );}
      return 0;
    }
    const difference = compareTrees(expected, await readVendored(record));
    if (isSame(difference)) {
      console.log(`vendor: the folder is ${label} + ${(await patchFiles()).length} patches`);
      return 0;
    }
    console.error(`vendor: the folder is not ${label} + its patches:`);
    for (const line of describeDifference(difference)) console.error(`  ${line}`);
    console.error("  (deno task vendor:postgres diff prints the difference as a patch)");
    return 1;
  } finally {
    await Deno.remove(WORK, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args[0], Deno.args[1]));
  } catch (error) {
    if (!(error instanceof VendorError)) throw error;
    console.error(`vendor: ${error.message}`);
    Deno.exit(1);
  }
}
