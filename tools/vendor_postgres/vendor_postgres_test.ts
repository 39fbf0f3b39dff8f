/**
 * The vendoring check (`tools/vendor_postgres.ts`, `deno task vendor:postgres check`, one of the
 * checks of `./scripts/test`): its comparison names every file that differs, a tarball whose
 * integrity is not the pinned one is refused, patches apply in order from a work folder inside
 * a git repository exactly as they would anywhere, and `diff` makes a patch that rebuilds the
 * folder. These run on small trees and a tarball made here; the check itself runs against the
 * registry's tarball. The committed patch set is held to its rules: numbered in order, each
 * saying what it is (fix, new behaviour, port) and where upstream stands, each in the README.
 */
import assert from "node:assert/strict";
import {
  compareTrees,
  describeDifference,
  isSame,
  readTree,
  selectFiles,
  sha512Integrity,
  type Tree,
  UpstreamRecord,
  writeTree,
} from "./tree.ts";
import { buildExpected, diffTrees, VendorError } from "./build.ts";
import { PATCHES, patchFiles, readRecord, VENDORED } from "../vendor_postgres.ts";

const text = new TextEncoder();
const treeOf = (files: Record<string, string>): Tree =>
  new Map(Object.entries(files).map(([path, body]) => [path, text.encode(body)]));
const asText = (tree: Tree) =>
  Object.fromEntries([...tree].map(([path, bytes]) => [path, new TextDecoder().decode(bytes)]));

/** A scratch folder inside a git repository, as `.local/` is inside this one. */
async function scratch(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "torvus-vendor-" });
  try {
    const init = await new Deno.Command("git", { args: ["init", "-q", dir] }).output();
    assert.ok(init.success, "git init");
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An npm-like tarball (`package/…`) of `files` and a record pinning its integrity. */
async function tarball(dir: string, files: Record<string, string>, select: string[]) {
  await writeTree(`${dir}/pack/package`, treeOf(files));
  const path = `${dir}/pkg.tgz`;
  const tar = await new Deno.Command("tar", {
    args: ["-czf", path, "-C", `${dir}/pack`, "package"],
  })
    .output();
  assert.ok(tar.success, "tar");
  const record: UpstreamRecord = {
    name: "pkg",
    version: "1.0.0",
    integrity: await sha512Integrity(await Deno.readFile(path)),
    files: select,
    local: [],
  };
  return { path, record };
}

const UPSTREAM = {
  "package.json": '{"name":"pkg"}\n',
  "src/a.js": "export const a = 1\nexport const b = 2\n",
  "src/b.js": "export default 'b'\n",
  "cjs/a.js": "exports.a = 1\n",
};
/** A patch as the committed ones are written: a header, then git's diff. */
const PATCH_A = `Subject: a is 3
Kind: fix
Upstream: none found

Explains the change.

diff --git a/src/a.js b/src/a.js
--- a/src/a.js
+++ b/src/a.js
@@ -1,2 +1,2 @@
-export const a = 1
+export const a = 3
 export const b = 2
`;

Deno.test("compareTrees() names changed, missing and extra files, each list sorted", () => {
  const expected = treeOf({ "z.js": "1", "a.js": "1", "m.js": "1", "gone.js": "" });
  const actual = treeOf({ "z.js": "2", "a.js": "1 ", "m.js": "1", "new.js": "", "b/c.js": "" });
  const difference = compareTrees(expected, actual);
  assert.deepEqual(difference, {
    changed: ["a.js", "z.js"],
    missing: ["gone.js"],
    extra: ["b/c.js", "new.js"],
  });
  assert.equal(isSame(difference), false);
  assert.deepEqual(describeDifference(difference), [
    "changed: a.js",
    "changed: z.js",
    "missing from the folder: gone.js",
    "not from the tarball or a patch: b/c.js",
    "not from the tarball or a patch: new.js",
  ]);
  assert.equal(isSame(compareTrees(expected, new Map(expected))), true);
});

Deno.test("selectFiles() takes whole folders and single files; a name matching nothing fails", () => {
  const tree = treeOf(UPSTREAM);
  assert.deepEqual([...selectFiles(tree, ["src/", "package.json"]).keys()].sort(), [
    "package.json",
    "src/a.js",
    "src/b.js",
  ]);
  assert.throws(() => selectFiles(tree, ["src/", "types/index.d.ts"]), /no "types\/index\.d\.ts"/);
});

Deno.test("sha512Integrity() is npm's Subresource Integrity string", async () => {
  assert.equal(
    await sha512Integrity(text.encode("abc")),
    "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
  );
});

Deno.test("buildExpected() applies the patches in order inside a git repository", async () => {
  await scratch(async (dir) => {
    const { path, record } = await tarball(dir, UPSTREAM, ["package.json", "src/"]);
    const rename = await diffTrees(
      treeOf({ "src/a.js": "export const a = 3\nexport const b = 2\n" }),
      treeOf({ "src/c.js": "export const a = 3\nexport const b = 2\n" }),
      `${dir}/d`,
    );
    assert.match(rename, /rename from src\/a\.js/);
    await Deno.writeTextFile(`${dir}/0001-a.patch`, PATCH_A);
    await Deno.writeTextFile(`${dir}/0002-rename.patch`, `Subject: renamed\n\n${rename}`);
    const built = await buildExpected(
      record,
      path,
      [`${dir}/0001-a.patch`, `${dir}/0002-rename.patch`],
      `${dir}/work`,
    );
    assert.deepEqual(asText(built), {
      "package.json": '{"name":"pkg"}\n',
      "src/b.js": "export default 'b'\n",
      "src/c.js": "export const a = 3\nexport const b = 2\n",
    });
  });
});

Deno.test("buildExpected() refuses a tarball whose integrity is not the pinned one", async () => {
  await scratch(async (dir) => {
    const { path, record } = await tarball(dir, UPSTREAM, ["src/"]);
    const other = await sha512Integrity(text.encode("another release"));
    await assert.rejects(
      () => buildExpected({ ...record, integrity: other }, path, [], `${dir}/work`),
      (e: Error) => e instanceof VendorError && e.message.includes(`pinned "${other}"`),
    );
    await assert.rejects(Deno.stat(`${dir}/work/extracted/package`), Deno.errors.NotFound);
  });
});

Deno.test("buildExpected() names the patch that does not apply", async () => {
  await scratch(async (dir) => {
    const { path, record } = await tarball(dir, UPSTREAM, ["src/"]);
    await Deno.writeTextFile(`${dir}/0001-a.patch`, PATCH_A);
    await Deno.writeTextFile(`${dir}/0002-again.patch`, PATCH_A);
    const patches = [`${dir}/0001-a.patch`, `${dir}/0002-again.patch`];
    await assert.rejects(
      () => buildExpected(record, path, patches, `${dir}/work`),
      (e: Error) => e instanceof VendorError && e.message.startsWith("0002-again.patch does not"),
    );
  });
});

Deno.test("diffTrees() makes the patch that turns the tarball into the folder", async () => {
  await scratch(async (dir) => {
    const { path, record } = await tarball(dir, UPSTREAM, ["src/", "package.json"]);
    const folder = treeOf({
      "package.json": '{"name":"pkg","type":"module"}\n',
      "src/a.js": "import x from 'node:x'\nexport const a = 1\nexport const b = 2\n",
      "src/new.js": "export {}\n",
    });
    const upstream = selectFiles(treeOf(UPSTREAM), record.files);
    await Deno.writeTextFile(`${dir}/0001.patch`, await diffTrees(upstream, folder, `${dir}/d`));
    const built = await buildExpected(record, path, [`${dir}/0001.patch`], `${dir}/work`);
    assert.deepEqual(describeDifference(compareTrees(built, folder)), []);
  });
});

Deno.test("the committed patches are numbered in order and each says its kind and upstream", async () => {
  const record = await readRecord();
  assert.ok(UpstreamRecord.safeParse(record).success);
  const readme = await Deno.readTextFile(`${VENDORED}/README.md`);
  const files = await patchFiles();
  assert.ok(files.length > 0, "patches exist");
  for (const [i, file] of files.entries()) {
    const name = file.slice(PATCHES.length + 1);
    assert.match(name, new RegExp(`^${String(i + 1).padStart(4, "0")}-[a-z0-9-]+\\.patch$`));
    const body = await Deno.readTextFile(file);
    const header = body.slice(0, body.indexOf("\ndiff --git "));
    assert.match(header, /^Subject: \S.*\nKind: (fix|new|port) /, `${name}: Subject, then Kind`);
    assert.match(
      header,
      /\nUpstream: (https:\/\/github\.com\/\S+|none found)/,
      `${name}: Upstream`,
    );
    assert.ok(readme.includes(name), `${name} is listed in the vendored README`);
  }
  for (const path of record.local) await Deno.stat(`${VENDORED}/${path}`);
  const folder = await readTree(VENDORED, (path) => record.local.includes(path));
  assert.ok(folder.has("src/index.js") && folder.has("types/index.esm.d.ts"));
});
