import assert from "node:assert/strict";
import { dechunk, requestBytes } from "./http1.ts";

Deno.test("requestBytes() refuses CR, LF and NUL in header names and values, and a broken request line", () => {
  const url = new URL("http://127.0.0.1/");
  const ok = requestBytes("POST", url, "/pipeline?x=1", { authorization: "Bearer t\tx" }, "[]");
  assert.match(
    new TextDecoder().decode(ok),
    /^POST \/pipeline\?x=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1\r\n/,
  );
  for (
    const [name, value] of [
      ["x-a", "1\r\nx-injected: 1"],
      ["x-a", "1\nx-injected: 1"],
      ["x-a", "1\r"],
      ["x-a", "a\u0000b"],
      ["x-a\r\nx-b", "1"],
      ["x a", "1"],
      ["", "1"],
    ]
  ) {
    assert.throws(
      () => requestBytes("POST", url, "/", { [name!]: value! }, ""),
      TypeError,
      JSON.stringify(name),
    );
  }
  assert.throws(() => requestBytes("POST", url, "/a b", {}, ""), TypeError);
  assert.throws(() => requestBytes("POST", url, "/\r\nGET /", {}, ""), TypeError);
  assert.throws(() => requestBytes("PO ST", url, "/", {}, ""), TypeError);
});

Deno.test("dechunk() decodes a whole body exactly, a partial one as far as it came, and names what is wrong", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const text = (d: { payload: Uint8Array }) => new TextDecoder().decode(d.payload);
  const whole = dechunk(bytes("3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\nNEXT"), 100);
  assert.deepEqual([text(whole), whole.done, whole.consumed, whole.error], [
    "abcde",
    true,
    34,
    undefined,
  ]);
  // As far as it came: the second chunk in part, no error.
  const part = dechunk(bytes("3\r\nabc\r\n5\r\nde"), 100);
  assert.deepEqual([text(part), part.done, part.error], ["abcde", false, undefined]);
  // Over the bound: what fits, and why it stopped.
  const over = dechunk(bytes("3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"), 5);
  assert.deepEqual([text(over), over.done, over.error], [
    "abcde",
    false,
    "the response is larger than 5 bytes",
  ]);
  assert.equal(dechunk(bytes("zz\r\nabc\r\n"), 100).error, "a chunk size is not hexadecimal");
  assert.equal(dechunk(bytes("3\r\nabcX\r\n"), 100).error, "a chunk is not terminated");
});
