/**
 * The local static server of the console build (`tools/console.ts`): the build's `_headers`
 * (its CSP) on every answer, `index.html` for the app's routes, hashed assets cached for good,
 * nothing outside the build directory, and a clear 503 before any build.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { consoleHandler, parseHeaders } from "../tools/console.ts";

const HEADERS = `/*
  Content-Security-Policy: default-src 'none'; script-src 'self'; frame-ancestors 'none'
  X-Content-Type-Options: nosniff
`;

async function withBuild(fn: (dir: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "torvus-console-" });
  const dir = join(base, "build");
  try {
    // A file beside the build, which no path may reach.
    await Deno.writeTextFile(join(base, "secret.txt"), "SECRET");
    await Deno.mkdir(join(dir, "assets"), { recursive: true });
    await Deno.writeTextFile(join(dir, "_headers"), HEADERS);
    await Deno.writeTextFile(join(dir, "index.html"), "<!doctype html><title>console</title>");
    await Deno.writeTextFile(join(dir, "assets", "index-abc.js"), "export {};");
    await fn(dir);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

const get = (dir: string, path: string, method = "GET") =>
  consoleHandler(dir)(new Request(`http://127.0.0.1:29333${path}`, { method }));

Deno.test("_headers: the /* block's headers", () => {
  assert.deepEqual(parseHeaders(`${HEADERS}/other\n  X-Other: no\n`), [
    ["Content-Security-Policy", "default-src 'none'; script-src 'self'; frame-ancestors 'none'"],
    ["X-Content-Type-Options", "nosniff"],
  ]);
});

Deno.test("console server: routes get index.html with the build's headers", async () => {
  await withBuild(async (dir) => {
    for (const path of ["/", "/keys", "/usage?granularity=day"]) {
      const r = await get(dir, path);
      assert.equal(r.status, 200, path);
      assert.equal(await r.text(), "<!doctype html><title>console</title>");
      assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(r.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
      assert.equal(r.headers.get("cache-control"), "no-cache");
    }
  });
});

Deno.test("console server: hashed assets are cached for good; unknown files are 404", async () => {
  await withBuild(async (dir) => {
    const js = await get(dir, "/assets/index-abc.js");
    assert.equal(js.status, 200);
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    await js.body?.cancel();
    const missing = await get(dir, "/assets/gone.js");
    assert.equal(missing.status, 404);
    assert.ok(missing.headers.get("content-security-policy"));
    await missing.body?.cancel();
  });
});

Deno.test("console server: nothing outside the build, no _headers, GET and HEAD only", async () => {
  await withBuild(async (dir) => {
    for (const path of ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"]) {
      const r = await get(dir, path);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(await r.text(), /SECRET/, path);
    }
    const headers = await get(dir, "/_headers");
    assert.equal(await headers.text(), "<!doctype html><title>console</title>");
    const bad = await get(dir, "/%E0%A4%A");
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const post = await get(dir, "/", "POST");
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
    const head = await get(dir, "/keys", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
  });
});

Deno.test("console server: before any build, 503 saying how to build", async () => {
  const dir = await Deno.makeTempDir({ prefix: "torvus-console-empty-" });
  try {
    const r = await get(dir, "/");
    assert.equal(r.status, 503);
    assert.match(await r.text(), /not built/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
