/**
 * What the vendored postgres.js must be, rebuilt from its sources: the npm tarball of the pinned
 * release (fetched with npm, checked against the pinned integrity before it is opened), the
 * vendored files taken from it, and the patches applied in order with `git apply`. npm, tar and
 * git are what a clone of this repository already has; nothing is installed.
 *
 * @module
 */
import { run } from "../stack/process.ts";
import {
  readTree,
  selectFiles,
  sha512Integrity,
  type Tree,
  type UpstreamRecord,
  writeTree,
} from "./tree.ts";

/** A step that failed, with a one-line reason for the user; the CLI prints it and exits 1. */
export class VendorError extends Error {
  override name = "VendorError";
}

/**
 * git run apart from any repository and any user configuration: the work folders sit inside
 * this repository (under `.local/`), where `git apply` would otherwise take paths relative to
 * the repository's top and skip the ones outside the current folder, and a user's
 * `apply.whitespace = fix` would rewrite the patched lines.
 */
function isolatedGit(args: string[], cwd: string) {
  return run("git", args, {
    cwd,
    env: {
      GIT_CEILING_DIRECTORIES: cwd.slice(0, cwd.lastIndexOf("/")),
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "vendor",
      GIT_AUTHOR_EMAIL: "vendor@localhost",
      GIT_COMMITTER_NAME: "vendor",
      GIT_COMMITTER_EMAIL: "vendor@localhost",
    },
  });
}

/** Fetches the release's tarball into `dir` with npm (its cache, else the registry). */
export async function packTarball(record: UpstreamRecord, dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const spec = `${record.name}@${record.version}`;
  const out = await run("npm", ["pack", spec, "--json", "--ignore-scripts", "--loglevel=error"], {
    cwd: dir,
  });
  if (!out.success) throw new VendorError(`npm pack ${spec} failed: ${out.stderr.trim()}`);
  const [packed] = JSON.parse(out.stdout) as { filename: string }[];
  if (packed === undefined) throw new VendorError(`npm pack ${spec} named no tarball`);
  return `${dir}/${packed.filename}`;
}

/** Refuses a tarball whose sha512 is not the pinned one (a republished or altered release). */
export async function verifyIntegrity(tarball: Uint8Array, record: UpstreamRecord) {
  const actual = await sha512Integrity(tarball);
  if (actual !== record.integrity) {
    throw new VendorError(
      `${record.name}@${record.version}: the tarball's integrity is "${actual}", ` +
        `pinned "${record.integrity}"`,
    );
  }
}

/**
 * The vendored files as the pinned tarball and the patches make them. `work` is an empty
 * scratch folder (the tarball is extracted and patched there); patches apply in the order given.
 */
export async function buildExpected(
  record: UpstreamRecord,
  tarballPath: string,
  patches: readonly string[],
  work: string,
): Promise<Tree> {
  await verifyIntegrity(await Deno.readFile(tarballPath), record);
  const extracted = `${work}/extracted`;
  await Deno.mkdir(extracted, { recursive: true });
  const tar = await run("tar", ["-xzf", tarballPath, "-C", extracted]);
  if (!tar.success) throw new VendorError(`tar could not extract the tarball: ${tar.stderr}`);
  let tree: Tree;
  try {
    tree = selectFiles(await readTree(`${extracted}/package`), record.files);
  } catch (error) {
    throw new VendorError(`${record.name}@${record.version}: ${(error as Error).message}`);
  }
  const patched = `${work}/patched`;
  await writeTree(patched, tree);
  for (const patch of patches) {
    const out = await isolatedGit(["apply", "--whitespace=nowarn", patch], patched);
    if (!out.success) {
      const name = patch.slice(patch.lastIndexOf("/") + 1);
      throw new VendorError(`${name} does not apply: ${out.stderr.trim()}`);
    }
  }
  return await readTree(patched);
}

/**
 * A patch (git's format, renames detected) that turns `from` into `to`: how a change made in
 * the vendored folder becomes the next patch file. `work` is an empty scratch folder.
 */
export async function diffTrees(from: Tree, to: Tree, work: string): Promise<string> {
  const repo = `${work}/diff`;
  await writeTree(repo, from);
  for (
    const args of [["init", "-q"], ["add", "-A"], ["commit", "-q", "--allow-empty", "-m", "from"]]
  ) {
    const out = await isolatedGit(args, repo);
    if (!out.success) throw new VendorError(`git ${args[0]} failed: ${out.stderr.trim()}`);
  }
  for (const path of from.keys()) await Deno.remove(`${repo}/${path}`);
  await writeTree(repo, to);
  await isolatedGit(["add", "-A"], repo);
  const out = await isolatedGit(["diff", "--cached", "-M", "--no-color"], repo);
  if (!out.success) throw new VendorError(`git diff failed: ${out.stderr.trim()}`);
  return out.stdout;
}
