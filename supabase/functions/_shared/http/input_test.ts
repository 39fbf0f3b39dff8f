import assert from "node:assert/strict";
import { z } from "zod";
import { readJson, readUpTo } from "./input.ts";
import { ApiError } from "./errors.ts";

const Body = z.strictObject({
  name: z.string(),
  description: z.string().optional(),
  tags: z.array(z.string()).optional(),
});

function post(body: string, type = "application/json"): Request {
  return new Request("http://localhost/", {
    method: "POST",
    headers: { "content-type": type },
    body,
  });
}

async function refusal(body: string): Promise<{ code: string; path: unknown; message: unknown }> {
  try {
    await readJson(post(body), Body);
  } catch (error) {
    assert.ok(error instanceof ApiError);
    const detail = (error.options.extra?.details as Array<Record<string, unknown>>)?.[0];
    return { code: error.code, path: detail?.path, message: detail?.message };
  }
  assert.fail(`accepted: ${body}`);
}

Deno.test("readJson() refuses lone surrogates with 400 naming the field", async () => {
  for (
    const [body, path] of [
      ['{"name":"\\ud800"}', "name"],
      ['{"name":"x\\udfff"}', "name"],
      ['{"name":"ok","description":"\\ud83d"}', "description"],
      ['{"name":"ok","tags":["a","\\udc00"]}', "tags.1"],
      ['{"name":"ok","\\ud800":"v"}', "(a key)"],
    ] as const
  ) {
    const r = await refusal(body);
    assert.equal(r.code, "VALIDATION_FAILED", body);
    assert.equal(r.path, path, body);
    assert.match(String(r.message), /valid Unicode/);
  }
});

Deno.test("readJson() keeps well-formed surrogate pairs exactly", async () => {
  const value = await readJson(
    post('{"name":"enc:\\ud83d\\ude00","tags":["\\ud83d\\udd12"]}'),
    Body,
  );
  assert.equal(value.name, "enc:\u{1F600}");
  assert.deepEqual(value.tags, ["\u{1F512}"]);
});

Deno.test("readJson() refuses NUL characters, which PostgreSQL text cannot hold", async () => {
  const r = await refusal('{"name":"a\\u0000b"}');
  assert.deepEqual([r.code, r.path], ["VALIDATION_FAILED", "name"]);
});

Deno.test("readJson() refuses bytes that are not UTF-8 as INVALID_JSON", async () => {
  const bytes = new Uint8Array([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]);
  await assert.rejects(
    readJson(
      new Request("http://localhost/", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: bytes,
      }),
      Body,
    ),
    (e: unknown) => e instanceof ApiError && e.code === "INVALID_JSON",
  );
});

Deno.test("readUpTo() stops at the bound", async () => {
  const stream = () => new Blob([new Uint8Array(100)]).stream();
  assert.equal((await readUpTo(stream(), 100))?.byteLength, 100);
  assert.equal(await readUpTo(stream(), 99), undefined);
  assert.equal((await readUpTo(null, 10))?.byteLength, 0);
});
