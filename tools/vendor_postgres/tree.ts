/**
 * Files of a directory as data, and what the vendoring check compares: the vendored folder
 * against the published tarball with the patches applied, byte for byte. Kept free of npm, tar
 * and git so that `tools/vendor_postgres/vendor_postgres_test.ts` can state its rules on small trees.
 *
 * @module
 */
import { z } from "zod";

/** A directory's files: path relative to it (with `/`) → contents. */
export type Tree = Map<string, Uint8Array>;

/**
 * The pinned upstream (`postgres-patches/upstream.json`): which release, the npm tarball's
 * `integrity` (Subresource Integrity, sha512) as the registry publishes it, which of the
 * tarball's files are vendored (`dir/` takes all below it), and the folder's own files that come
 * from no tarball (its README) and so are not compared.
 */
export const UpstreamRecord = z.strictObject({
  name: z.string().min(1),
  version: z.string().regex(/^\d+\.\d+\.\d+$/, "an exact version"),
  integrity: z.string().regex(/^sha512-[A-Za-z0-9+/]{86}==$/, "sha512-<base64 of 64 bytes>"),
  files: z.array(z.string().min(1)).min(1),
  local: z.array(z.string().min(1)),
});
export type UpstreamRecord = z.infer<typeof UpstreamRecord>;

/** Reads every file below `dir`, skipping the relative paths `skip` names (and what is below). */
export async function readTree(dir: string, skip: (path: string) => boolean = () => false) {
  const tree: Tree = new Map();
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(rel === "" ? dir : `${dir}/${rel}`)) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (skip(path)) continue;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile) tree.set(path, await Deno.readFile(`${dir}/${path}`));
      else throw new Error(`"${dir}/${path}" is neither a file nor a directory`);
    }
  };
  await walk("");
  return tree;
}

/** Writes a tree below `dir`, creating folders as needed. */
export async function writeTree(dir: string, tree: Tree): Promise<void> {
  for (const [path, bytes] of tree) {
    const at = `${dir}/${path}`;
    await Deno.mkdir(at.slice(0, at.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(at, bytes);
  }
}

/**
 * The files of `tree` that `selection` names: a path taken as is, or a folder (ending in `/`)
 * taken with everything below it. A name that matches nothing is an error, so a release that
 * moved a file fails the check instead of vendoring less.
 */
export function selectFiles(tree: Tree, selection: readonly string[]): Tree {
  const out: Tree = new Map();
  for (const name of selection) {
    const matches = [...tree.keys()].filter((path) =>
      name.endsWith("/") ? path.startsWith(name) : path === name
    );
    if (matches.length === 0) throw new Error(`the tarball has no "${name}"`);
    for (const path of matches) out.set(path, tree.get(path)!);
  }
  return out;
}

/** How a folder differs from what it should hold; every list sorted. */
export interface TreeDifference {
  /** In both, with other contents. */
  changed: string[];
  /** Expected, absent from the folder. */
  missing: string[];
  /** In the folder, expected nowhere. */
  extra: string[];
}

/** Compares what a folder should hold with what it holds, byte for byte. */
export function compareTrees(expected: Tree, actual: Tree): TreeDifference {
  const changed: string[] = [];
  const missing: string[] = [];
  for (const [path, bytes] of expected) {
    const found = actual.get(path);
    if (found === undefined) missing.push(path);
    else if (!sameBytes(bytes, found)) changed.push(path);
  }
  const extra = [...actual.keys()].filter((path) => !expected.has(path));
  return { changed: changed.sort(), missing: missing.sort(), extra: extra.sort() };
}

/** Whether a comparison found nothing. */
export const isSame = (d: TreeDifference) =>
  d.changed.length + d.missing.length + d.extra.length === 0;

/** One line per differing file, for the check's report. */
export function describeDifference(d: TreeDifference): string[] {
  return [
    ...d.changed.map((path) => `changed: ${path}`),
    ...d.missing.map((path) => `missing from the folder: ${path}`),
    ...d.extra.map((path) => `not from the tarball or a patch: ${path}`),
  ];
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The Subresource Integrity string (`sha512-…`) npm publishes as a tarball's `integrity`. */
export async function sha512Integrity(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", bytes as BufferSource));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return `sha512-${btoa(binary)}`;
}
