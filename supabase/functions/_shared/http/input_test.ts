import assert from "node:assert/strict";
import { z } from "zod";
import {
  MAX_DETAIL_MESSAGE,
  MAX_DETAIL_PATH,
  MAX_DETAILS,
  parseQuery,
  readJson,
  readUpTo,
} from "./input.ts";
import { MAX_MESSAGE_LENGTH } from "../schemas/errors.ts";
import { ApiError } from "../errors.ts";

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
  // Each body, and the field its lone surrogate is in.
  const surrogates = {
    '{"name":"\\ud800"}': "name",
    '{"name":"x\\udfff"}': "name",
    '{"name":"ok","description":"\\ud83d"}': "description",
    '{"name":"ok","tags":["a","\\udc00"]}': "tags.1",
    '{"name":"ok","\\ud800":"v"}': "(a key)",
  };
  for (const [body, path] of Object.entries(surrogates)) {
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

/** The ApiError `fn` throws. */
function thrown(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ApiError);
    return error;
  }
  assert.fail("accepted");
}

Deno.test("a 400 lists at most MAX_DETAILS fields, each path and message cut to its bound", async () => {
  // 150 unknown fields in a small body: the answer names the first 100.
  const fields = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`f${i}`, 1]));
  const many = await readJson(post(JSON.stringify({ name: "n", ...fields })), Body).then(
    () => assert.fail("accepted"),
    (error: ApiError) => error,
  );
  const details = many.options.extra?.details as Array<{ path: string; message: string }>;
  assert.equal(details.length, MAX_DETAILS);
  assert.deepEqual(details[0], { path: "f0", message: "unknown field" });
  assert.deepEqual(details[MAX_DETAILS - 1], { path: "f99", message: "unknown field" });

  // A field name one past the path bound is cut, marked with an ellipsis; one at it is not.
  const Query = z.strictObject({});
  const at = "q".repeat(MAX_DETAIL_PATH);
  const atBound = thrown(() => parseQuery(new URL(`http://localhost/?${at}=1`), Query));
  assert.equal((atBound.options.extra?.details as Array<{ path: string }>)[0]!.path, at);
  const past = thrown(() => parseQuery(new URL(`http://localhost/?${at}q=1`), Query));
  const cut = (past.options.extra?.details as Array<{ path: string }>)[0]!.path;
  assert.equal(cut.length, MAX_DETAIL_PATH);
  assert.equal(cut, "q".repeat(MAX_DETAIL_PATH - 1) + "…");
  assert.ok(past.message.length <= MAX_MESSAGE_LENGTH);

  // A message longer than its bound (a handler's own, say) is cut the same way.
  const Long = z.strictObject({ name: z.string().refine(() => false, "m".repeat(600)) });
  const long = await readJson(post('{"name":"n"}'), Long).then(
    () => assert.fail("accepted"),
    (error: ApiError) => error,
  );
  const message = (long.options.extra?.details as Array<{ message: string }>)[0]!.message;
  assert.equal(message.length, MAX_DETAIL_MESSAGE);
  assert.ok(long.message.length <= MAX_MESSAGE_LENGTH);
});
