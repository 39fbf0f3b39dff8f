/**
 * The exported Tyk definition (tools/gateway_export.ts) and the shipped middleware, run through
 * the model of Tyk Gateway (tools/gateway/tyk_model.ts): every public path reaches its function,
 * nothing else does, and no client can forge what the functions trust.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CLIENT_ADDRESS_HEADERS,
  FORWARDED_METHODS,
  GATEWAY_SECRET_ENV,
  HEADERS,
  PRE_MIDDLEWARE,
  REGION_HEADER,
  tykExport,
} from "../gateway_export.ts";
import {
  FUNCTIONS,
  GATEWAY_ROUTES,
  resolveGatewayPath,
} from "../../supabase/functions/_shared/routes.ts";
import { addressPolicy } from "../../supabase/functions/_shared/ip.ts";
import { ERRORS } from "../../supabase/functions/_shared/errors.ts";

import {
  canon,
  cleanPath,
  type Definition,
  definition,
  DOMAIN,
  ENV,
  exported,
  FUNCTIONS_BASE,
  FUNCTIONS_ORIGIN,
  GATEWAY,
  Gateway,
  GoURL,
  Header,
  load,
  Outcome,
  PEER,
  PEER_ADDR,
  realIP,
  REGION,
  root,
  SECRET,
  show,
  specsOf,
  tyk,
  tykError,
  unescape,
  urlString,
} from "./tyk_model.ts";

// Expectations

/** The function and path (decoded) an upstream URL reaches, if it is the functions' host. */
function reached(u: GoURL): { fn: string; path: string } | undefined {
  if (`${u.scheme}://${u.host}` !== FUNCTIONS_ORIGIN) return undefined;
  const base = new URL(FUNCTIONS_BASE).pathname;
  if (!u.path.startsWith(base + "/")) return undefined;
  const fn = u.path.slice(base.length + 1).split("/")[0]!;
  return { fn, path: u.path };
}

const policy = addressPolicy({
  gatewaySecret: SECRET,
  directAccess: "deny",
  directIpSource: { kind: "none" },
});

/** The headers every forwarded request carries, checked as the functions read them. */
function assertGatewayHeaders(h: Header, clientIp: string, what: string) {
  assert.deepEqual(h.values(HEADERS.secret), [SECRET], `${what}: the secret, once`);
  assert.deepEqual(h.values(HEADERS.clientIp), [clientIp], `${what}: the client's address`);
  assert.deepEqual(h.values(REGION_HEADER), [REGION], `${what}: the database's region, once`);
  for (const name of ["X-Forwarded-For", "X-Real-IP"]) {
    assert.ok(!h.has(name), `${what}: no ${name} upstream`);
  }
  assert.deepEqual(policy.origin(h.toHeaders(), undefined), { via: "gateway", ip: clientIp }, what);
}

/** Clients' claims about addresses and the gateway's headers, one set per request. */
const FORGERIES: ReadonlyArray<ReadonlyArray<readonly [string, string]>> = [
  [],
  [["X-Real-IP", "198.51.100.1"]],
  [["X-Forwarded-For", "198.51.100.2, 10.0.0.1"]],
  [["X-Forwarded-For", "198.51.100.3"], ["X-Forwarded-For", "198.51.100.4"]],
  [["X-Real-IP", "not-an-address"], ["X-Forwarded-For", "198.51.100.5"]],
  [["X-Real-IP", "2001:db8::1"], ["x-forwarded-for", "2001:db8::2"]],
  [["X-Torvus-Client-IP", "198.51.100.6"], ["x-torvus-client-ip", "198.51.100.7"]],
  [["X-Torvus-Gateway-Secret", "guess"], ["X-Torvus-Client-IP", "198.51.100.8"]],
  [["X-Torvus-Gateway-Secret", SECRET], ["X-Real-IP", "198.51.100.9"]],
  [["Connection", "X-Torvus-Gateway-Secret, X-Torvus-Client-IP"]],
  [["Connection", "keep-alive"], ["X-Forwarded-For", "198.51.100.10"]],
  [["X-Region", "ap-southeast-2"], ["x-region", "sa-east-1"]],
  [["Connection", "X-Region"]],
];

/** Paths below a public prefix: ids, actions, queries, trailing slashes, near misses inside. */
const BELOW = [
  "",
  "/",
  "?limit=5&offset=0",
  "?",
  "/01ARZ3NDEKTSV4RRFFQ69G5FAV",
  "/01arz3ndektsv4rrffq69g5fav/",
  "/01ARZ3NDEKTSV4RRFFQ69G5FAV/roll",
  "/01ARZ3NDEKTSV4RRFFQ69G5FAV/revoke?x=1",
  "/00000000-0000-4000-8000-000000000000?x=1&y=%2F",
  "/v",
  "/v2",
  "/v10",
  "/va/v1",
  "/v1x",
  "/x/v1",
  "/a%20b",
  "/a%2Fb",
  "/...",
  "/.well-known",
  "/..x/y",
  "/api/keys",
  "?q=%24secret_env.OTHER",
];

/** The public URLs the model runs: every prefix with every tail that is still public. */
function publicSamples(): string[] {
  const out: string[] = [];
  for (const { path } of GATEWAY_ROUTES) {
    for (const rest of BELOW) {
      const target = path + rest;
      const decoded = unescape(target.split("?")[0]!);
      if (resolveGatewayPath(decoded) !== undefined) out.push(target);
    }
  }
  return out;
}

/** Asserts that a forwarded request reaches exactly where `resolveGatewayPath` says. */
function assertReaches(outcome: Outcome, target: string, method: string, clientIp = PEER) {
  const what = `${method} ${target}`;
  assert.equal(outcome.kind, "upstream", `${what} is forwarded: ${JSON.stringify(outcome)}`);
  if (outcome.kind !== "upstream") return;
  const [rawPath, ...q] = target.split("?");
  const expected = resolveGatewayPath(unescape(rawPath!))!;
  assert.equal(outcome.method, method, what);
  assert.equal(`${outcome.url.scheme}://${outcome.url.host}`, FUNCTIONS_ORIGIN, what);
  assert.equal(outcome.url.path, expected.functionPath, what);
  assert.equal(outcome.url.rawQuery, q.join("?"), `${what}: the query as sent`);
  assertGatewayHeaders(outcome.headers, clientIp, what);
}

/** Asserts a refusal by the gateway itself, in the API's error format. */
function assertRefused(outcome: Outcome, what: string, status = 403) {
  assert.equal(outcome.kind, "error", `${what} is refused: ${JSON.stringify(outcome)}`);
  if (outcome.kind !== "error") return;
  assert.equal(outcome.status, status, what);
  const body = outcome.body as { error: string; message: string; code: keyof typeof ERRORS };
  assert.equal(body.message, outcome.message, what);
  assert.equal(body.error, ERRORS[body.code].error, `${what}: a catalogued code and its error`);
}

/** Asserts that each target, by every forwarded method, is refused as a 400 VALIDATION_FAILED. */
function assertInvalidForEveryMethod(def: Definition, targets: readonly string[]) {
  for (const target of targets) {
    for (const method of FORWARDED_METHODS) {
      const outcome = tyk(def, { method, target });
      assertRefused(outcome, `${method} ${target}`, 400);
      assert.equal((outcome as { body: { code: string } }).body.code, "VALIDATION_FAILED");
    }
  }
}

// ---------------------------------------------------------------------------------------------

Deno.test("the model implements every setting the exported definition uses", () => {
  const def = definition();
  assert.equal(def.proxy.listen_path, "/");
  assert.equal(def.proxy.strip_listen_path, false);
  assert.equal(def.domain, DOMAIN);
  assert.equal(def.custom_middleware?.pre?.length, 1);
  assert.equal(def.custom_middleware?.pre?.[0]?.name, PRE_MIDDLEWARE.name);
  assert.equal(`supabase/gateway/${def.custom_middleware?.pre?.[0]?.path}`, PRE_MIDDLEWARE.file);
  assert.equal(def.CORS?.enable, false);
  assert.ok(def.enable_context_vars);
  specsOf(def, GATEWAY); // refuses lists it does not implement
  const version = Object.values(def.version_data.versions)[0]!;
  assert.equal(version.global_headers?.[HEADERS.secret], SECRET, "env:// replaced on load");
  assert.ok(!exported().includes(SECRET), "the secret is never in the file");
});

Deno.test("every public path and method reaches its function, whatever the client says", () => {
  const def = definition();
  const samples = publicSamples();
  assert.ok(samples.length > GATEWAY_ROUTES.length * 10, "samples below every prefix");
  for (const target of samples) {
    for (const method of FORWARDED_METHODS) {
      for (const headers of FORGERIES) {
        assertReaches(tyk(def, { method, target, headers }), target, method);
      }
    }
  }
  // IPv6 peers too.
  const outcome = tyk(def, {
    method: "GET",
    target: "/api/me",
    peer: "[2001:db8::7]:443",
    headers: [["X-Real-IP", "198.51.100.1"]],
  });
  assertReaches(outcome, "/api/me", "GET", "2001:db8::7");
});

Deno.test("paths outside the public table, and other methods, are refused by Tyk", () => {
  const def = definition();
  const tricky = [
    "/",
    "/health",
    "/me",
    "/vaults/v1/x",
    "/functions/v1/health",
    "/api",
    "/api/",
    "/api/vaults/v1",
    "/api/vaults/v1/",
    "/api/vaults/v1/x",
    "/api/vaults//v1/x",
    "/api/vaults/%76%31/x",
    "/api/vaults%2Fv1/x",
    "/api/vaults/./v1/x",
    "/api/me/../vaults/v1/x",
    "/api/me/%2e%2e/keys",
    "/api/me//x",
    "/api/mexyz",
    "/api/v1/testx",
    "/api/v1",
    "/API/ME",
    "/torvus-api/api/me",
    "/torvus-api/",
    "/api/me/$secret_env.OTHER",
    "/api/me/%24secret_env.OTHER",
  ];
  for (const target of tricky) {
    for (const method of [...FORWARDED_METHODS, "TRACE", "PROPFIND"]) {
      assertRefused(tyk(def, { method, target }), `${method} ${target}`);
    }
  }
  for (const target of publicSamples()) {
    for (const method of ["TRACE", "CONNECT", "PROPFIND", "get"]) {
      assertRefused(tyk(def, { method, target }), `${method} ${target}`);
    }
  }
  // A path another route's unanchored pattern would once have taken reaches its own function.
  const nested = tyk(def, { method: "GET", target: "/api/me/api/keys" });
  assertReaches(nested, "/api/me/api/keys", "GET");
  assert.ok(nested.kind === "upstream" && reached(nested.url)?.fn === "me");
});

Deno.test("the gateway's path options and URL cleaning change no outcome", () => {
  const variants: Gateway[] = [
    { ...GATEWAY, prefixMatching: true },
    { ...GATEWAY, suffixMatching: true },
    { ...GATEWAY, prefixMatching: true, suffixMatching: true },
    { ...GATEWAY, skipUrlCleaning: false },
  ];
  const def = definition();
  const targets = [...publicSamples(), "/api/vaults//v1/x", "/api/me/../vaults/v1/x", "/health"];
  for (const gw of variants) {
    for (const target of targets) {
      const base = tyk(def, { method: "GET", target });
      let outcome = tyk(def, { method: "GET", target }, gw);
      if (outcome.kind === "redirect") {
        // gorilla/mux answers 301 to the cleaned path; the client follows it.
        outcome = tyk(def, { method: "GET", target: outcome.location }, gw);
        if (outcome.kind === "upstream") {
          const path = unescape(outcome.url.path);
          assert.equal(
            path,
            resolveGatewayPath(cleanPath(unescape(target.split("?")[0]!)))
              ?.functionPath,
          );
        } else assertRefused(outcome, target);
        continue;
      }
      assert.deepEqual(show(outcome), show(base), `${target} with ${JSON.stringify(gw)}`);
    }
  }
});

Deno.test("no `$secret_…` or `$tyk_…` label in a URL is ever expanded", () => {
  const def = definition();
  const leaked = (o: Outcome) =>
    o.kind === "upstream" &&
    [SECRET, ENV.TYK_SECRET_OTHER!, "STORE-SECRET", PEER].some((s) => urlString(o.url).includes(s));
  const hostile = [
    "/api/me?$secret_env.OTHER",
    "/api/me?x=$secret_env.TORVUS_GATEWAY_SECRET",
    "/api/keys/1/roll?a=1&b=$secret_vault.x/y",
    "/api/v1/vaults?$tyk_context.remote_addr",
    "/api/vaults/x?%24&$secret_file.etc",
  ];
  assertInvalidForEveryMethod(def, hostile);
  // Encoded, `$` is only a character: forwarded as sent, never expanded.
  const encoded = "/api/me?x=%24secret_env.OTHER&y=%24tyk_context.remote_addr";
  const outcome = tyk(def, { method: "GET", target: encoded });
  assertReaches(outcome, encoded, "GET");
  assert.ok(!leaked(outcome));
  // An escaped prefix and an encoded `$`: no rewrite takes it; it goes to target_url + its path,
  // i.e. to a function named after the prefix's first segment, which does not exist.
  const odd = tyk(def, { method: "GET", target: "/api/%6De?x=%24secret_env.OTHER" });
  assert.equal(odd.kind, "upstream");
  if (odd.kind === "upstream") {
    assert.equal(reached(odd.url)?.fn, "api");
    assert.ok(!(FUNCTIONS as readonly string[]).includes("api"), "no function is called api");
    assert.ok(!leaked(odd));
    assertGatewayHeaders(odd.headers, PEER, "the odd one");
  }
  // Without the pre middleware the model shows the hazard it closes: the client's label expands.
  const bare = definition();
  delete bare.custom_middleware;
  assert.ok(leaked(tyk(bare, { method: "GET", target: "/api/me?$secret_env.OTHER" })));
});

Deno.test("a client cannot move the functions to another region", () => {
  const def = definition();
  // Supabase honours forceFunctionRegion in the query as it does X-Region: refused, any case,
  // encoded or not, alone or among other parameters.
  const hostile = [
    "/api/v1/test?forceFunctionRegion=ap-southeast-2",
    "/api/me?x=1&forcefunctionregion=sa-east-1",
    "/api/keys?FORCEFUNCTIONREGION=us-west-1&y=2",
    "/api/v1/vaults?force%46unctionRegion=eu-west-1",
    "/api/vaults/x?forceFunctionRegion",
  ];
  assertInvalidForEveryMethod(def, hostile);
  // The name as a value, or inside another name, is only text.
  for (const target of ["/api/me?q=forceFunctionRegion", "/api/me?forceFunctionRegions=x"]) {
    assertReaches(tyk(def, { method: "GET", target }), target, "GET");
  }
  // A client's X-Region never reaches a function, also with region `any` (no header set).
  const any = load(JSON.stringify(tykExport({ region: "any" })), ENV);
  const outcome = tyk(any, {
    method: "GET",
    target: "/api/v1/test",
    headers: [["X-Region", "ap-southeast-2"]],
  });
  assert.ok(outcome.kind === "upstream" && !outcome.headers.has(REGION_HEADER));
});

Deno.test("the pre middleware is what keeps a client from choosing its address", () => {
  const js = Deno.readTextFileSync(new URL(PRE_MIDDLEWARE.file, root));
  for (const name of CLIENT_ADDRESS_HEADERS) assert.ok(js.includes(`"${name}"`), name);
  // Tyk's precedence, as modelled: X-Real-IP, then X-Forwarded-For, then the peer.
  const h = (pairs: Array<[string, string]>) => Header.from(pairs);
  assert.equal(
    realIP(h([["X-Real-IP", "198.51.100.1"], ["X-Forwarded-For", "198.51.100.2"]]), PEER_ADDR, 0),
    "198.51.100.1",
  );
  assert.equal(
    realIP(h([["X-Real-IP", "bad"], ["X-Forwarded-For", "198.51.100.2, 10.0.0.1"]]), PEER_ADDR, 0),
    "198.51.100.2",
  );
  assert.equal(
    realIP(h([["X-Forwarded-For", "198.51.100.2, 10.0.0.1"]]), PEER_ADDR, 1),
    "10.0.0.1",
  );
  assert.equal(realIP(h([["X-Forwarded-For", "junk"]]), PEER_ADDR, 0), PEER);
  assert.equal(realIP(h([]), PEER_ADDR, 0), PEER);
  // Without it, Tyk believes the client, and appends to its X-Forwarded-For when not removed.
  const bare = definition();
  delete bare.custom_middleware;
  const forged = tyk(bare, {
    method: "GET",
    target: "/api/me",
    headers: [["X-Real-IP", "198.51.100.1"]],
  });
  assert.ok(forged.kind === "upstream");
  assert.deepEqual(forged.headers.values(HEADERS.clientIp), ["198.51.100.1"]);
  // Without X-Forwarded-For in global_headers_remove, Tyk sends one: the peer appended to the
  // client's (which only the pre middleware deletes).
  for (const [middleware, expected] of [[true, PEER], [false, `198.51.100.2, ${PEER}`]] as const) {
    const appending = definition();
    if (!middleware) delete appending.custom_middleware;
    const version = Object.values(appending.version_data.versions)[0]!;
    version.global_headers_remove = version.global_headers_remove!.filter((n) =>
      n !== "X-Forwarded-For"
    );
    const appended = tyk(appending, {
      method: "GET",
      target: "/api/me",
      headers: [["X-Forwarded-For", "198.51.100.2"]],
    });
    assert.ok(appended.kind === "upstream");
    assert.deepEqual(appended.headers.values("X-Forwarded-For"), [expected]);
  }
  // And `Connection` would let a client drop the gateway's headers if it were not removed.
  const hopping = definition();
  const v2 = Object.values(hopping.version_data.versions)[0]!;
  v2.global_headers_remove = v2.global_headers_remove!.filter((n) => n !== "Connection");
  const dropped = tyk(hopping, {
    method: "GET",
    target: "/api/me",
    headers: [["Connection", "X-Torvus-Gateway-Secret"]],
  });
  assert.ok(dropped.kind === "upstream" && !dropped.headers.has(HEADERS.secret));
});

Deno.test("behind a load balancer that overwrites X-Real-IP, its address is the client's", () => {
  const def = definition();
  def.config_data = { ...def.config_data, torvus_client_address: "x-real-ip" };
  const lb = "10.0.0.5:40000";
  for (const target of publicSamples()) {
    for (const forged of FORGERIES) {
      const headers = [
        ...forged.filter(([n]) => canon(n) !== "X-Real-Ip"),
        [
          "X-Real-IP",
          "198.51.100.77",
        ] as const,
      ];
      assertReaches(
        tyk(def, { method: "GET", target, headers, peer: lb }),
        target,
        "GET",
        "198.51.100.77",
      );
    }
  }
});

Deno.test("without the secret in the gateway's environment, the functions refuse", () => {
  const def = definition({ ...ENV, [GATEWAY_SECRET_ENV]: "" });
  const outcome = tyk(def, { method: "GET", target: "/api/me" });
  assert.ok(outcome.kind === "upstream");
  assert.deepEqual(outcome.headers.values(HEADERS.secret), [`env://${GATEWAY_SECRET_ENV}`]);
  assert.deepEqual(policy.origin(outcome.headers.toHeaders(), undefined), {
    via: "refused",
    ip: undefined,
  });
});

Deno.test("the API's domain: other hosts do not reach it (enable_custom_domains)", () => {
  const def = definition();
  assert.equal(tyk(def, { method: "GET", target: "/api/me", host: "other.test" }).kind, "no_api");
  assertReaches(tyk(def, { method: "GET", target: "/api/me", host: DOMAIN }), "/api/me", "GET");
});

Deno.test("random URLs: refused, or forwarded exactly where resolveGatewayPath says", () => {
  const def = definition();
  let seed = 0x5eed;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const parts = [
    "api",
    "v1",
    "vaults",
    "keys",
    "me",
    "health",
    "test",
    "openapi.json",
    "",
    ".",
    "..",
    "x",
    "%2F",
    "%2e",
    "%24",
    "$",
    "%76%31",
    "roll",
    "torvus-api",
    "API",
    "v1x",
    "%20",
    "a?b=1",
  ];
  for (let i = 0; i < 20000; i++) {
    const n = 1 + random(5);
    let target = "/api";
    for (let k = 0; k < n; k++) target += "/" + parts[random(parts.length)];
    if (random(3) === 0) target = target.replace(/^\/api/, "");
    if (random(4) === 0) target += "?" + ["", "a=1", "$x", "%24", "b=/c"][random(5)];
    const method = FORWARDED_METHODS[random(FORWARDED_METHODS.length)]!;
    const outcome = tyk(def, { method, target, headers: FORGERIES[random(FORGERIES.length)]! });
    if (outcome.kind === "error") {
      assert.ok([400, 403].includes(outcome.status), `${method} ${target}`);
      continue;
    }
    let decoded: string;
    try {
      decoded = unescape(target.split("?")[0]!);
    } catch {
      assert.fail(`${target} is not a valid URL but was forwarded`);
    }
    assert.ok(resolveGatewayPath(decoded) !== undefined, `${method} ${target} is forwarded`);
    assert.ok(!/(^|\/)\.{1,2}(\/|$)|\/\/|\$/.test(decoded), `${target}: refused shapes`);
    assertReaches(outcome, target, method);
  }
});

Deno.test("the error templates give the API's format for what Tyk answers itself", () => {
  const messages = [
    "Requested endpoint is forbidden",
    "The request URL contains a dollar sign, which this API does not accept",
    "There was a problem proxying the request",
    "Upstream service reached hard timeout.",
  ];
  for (const status of [400, 403, 500, 502, 504]) {
    for (const message of messages) {
      assertRefused(tykError(status, message), `${status} ${message}`, status);
    }
  }
  assert.equal((tykError(403, "x").body as { code: string }).code, "NOT_FOUND");
});
