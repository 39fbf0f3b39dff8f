import assert from "node:assert/strict";
import { CreateApp, redirectUriProblem, UpdateApp } from "./schemas.ts";

const valid = {
  name: "Acme sync",
  redirect_uris: ["https://acme.example/callback"],
  scopes: ["vaults:read"],
};

/** The paths of the issues of a failed parse, joined with dots. */
function failedPaths(
  result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } },
) {
  assert.equal(result.success, false);
  return result.error!.issues.map((i) => i.path.join("."));
}

Deno.test("redirect URIs: what Supabase Auth accepts, and why it refuses the rest", () => {
  for (
    const ok of [
      "https://acme.example/callback",
      "https://acme.example:8443/cb?x=1",
      "myapp://callback",
      "com.acme.app://oauth/done",
      "http://localhost:3000/cb",
      "http://127.0.0.1/cb",
      "http://[::1]:8080/cb",
    ]
  ) assert.equal(redirectUriProblem(ok), undefined, ok);
  const refused: Array<[string, RegExp]> = [
    ["/relative", /absolute/],
    ["not a uri", /absolute/],
    ["http://acme.example/cb", /plain http/],
    ["http://10.0.0.1/cb", /plain http/],
    ["https://acme.example/cb#frag", /fragment/],
    ["https://acme.example/cb#", /fragment/],
    ["javascript://x/%0aalert(1)", /javascript/],
    ["data://text/plain,hi", /data/],
    ["file:///etc/passwd", /file|host/],
    ["myapp:/callback", /host/],
    ["myapp:callback", /host/],
  ];
  for (const [uri, why] of refused) {
    assert.match(redirectUriProblem(uri) ?? "", why, uri);
  }
});

Deno.test("CreateApp: defaults, and each bad field named", () => {
  const parsed = CreateApp.parse(valid);
  assert.deepEqual(parsed, { ...valid, client_type: "confidential" });
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ name: " " }, "name"],
    [{ name: "x".repeat(101) }, "name"],
    [{ redirect_uris: [] }, "redirect_uris"],
    [{
      redirect_uris: Array.from(
        { length: 11 },
        (_, i) => `https://a.example/${i}`,
      ),
    }, "redirect_uris"],
    [
      { redirect_uris: ["https://a.example/cb", "https://a.example/cb"] },
      "redirect_uris",
    ],
    [
      { redirect_uris: ["https://a.example/cb", "http://a.example/cb"] },
      "redirect_uris.1",
    ],
    [
      { redirect_uris: [`https://a.example/${"x".repeat(2048)}`] },
      "redirect_uris.0",
    ],
    [{ scopes: [] }, "scopes"],
    [{ scopes: ["vaults:admin"] }, "scopes.0"],
    [{ scopes: ["vaults:read", "vaults:read"] }, "scopes"],
    [{ scopes: ["vaults:write"] }, "scopes"],
    [{ client_type: "secret" }, "client_type"],
    [{ website: "http://acme.example" }, "website"],
    [{ logo_uri: "javascript:alert(1)" }, "logo_uri"],
    [{ owner_id: "someone" }, ""],
  ];
  for (const [change, path] of cases) {
    const paths = failedPaths(CreateApp.safeParse({ ...valid, ...change }));
    assert.ok(
      paths.includes(path),
      `${JSON.stringify(change)} names ${path}: ${paths}`,
    );
  }
});

Deno.test("UpdateApp: something to change; null clears the website and logo", () => {
  assert.deepEqual(UpdateApp.parse({ website: null }), { website: null });
  assert.deepEqual(failedPaths(UpdateApp.safeParse({})), [""]);
  // The type of client does not change: an unknown key, and then nothing left to change.
  assert.ok(failedPaths(UpdateApp.safeParse({ client_type: "public" })).includes(""));
});
