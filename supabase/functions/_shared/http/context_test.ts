import assert from "node:assert/strict";
import { pathOf } from "./context.ts";

Deno.test("pathOf() reads a URL's path as the URL parser does", () => {
  const urls = [
    "http://localhost/functions/v1/v1-test",
    "http://127.0.0.1:54321/functions/v1/vaults/v1/01JBG7XKQM9F3Y8W2Z5N4P1R6T?limit=10",
    "https://abc.supabase.co/me#top",
    "http://localhost/",
    "http://localhost",
    "http://localhost?x=/y",
    "http://localhost//double//slashes/",
    "http://localhost/functions/v1/me/../v1-test",
    "http://localhost/functions/v1/%6De",
    "http://localhost/a b/ü",
    "http://localhost/a\\b",
    "http://user@localhost:8000/x/./y",
    "http://[::1]:8000/api/keys/KEY_1",
  ];
  for (const url of urls) assert.equal(pathOf(url), new URL(url).pathname, url);
});
