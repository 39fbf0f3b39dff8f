/**
 * The security matrix: every hostile credential of `_matrix.ts` against every route of its kind
 * (JWT cases × JWT routes, API-key cases × API-key routes), one test per case and one step per
 * route, each case from a client address of its own.
 *
 * Every refusal must carry the exact status, `code` and body of its family (JWT: `error`,
 * `message`, `statusCode`, `code`, `request_id`; API key: `error`, `message`, `code`,
 * `request_id`), the common headers, a `WWW-Authenticate` challenge, the per-IP rate-limit
 * headers counting down (failed authentications count against the client's 100 per hour), and
 * never echo the credential it was given.
 */
import assert from "node:assert/strict";
import { api, type ApiResponse, assertCommonHeaders, awayFromWindowEnd } from "./_harness.ts";
import { closeDb, newKey, newTier, newUser } from "./_fixtures.ts";
import { ALL_APP_SCOPES, appToken, grantApp, newApp, revokeApp } from "./_support/apps.ts";
import { headerMismatches } from "./_documented_headers.ts";
import {
  type AppScope,
  AUTHENTICATED_ROUTES,
  type Expectation,
  fixtures,
  freshIp,
  type HostileCase,
  JWT_CASES,
  KEY_CASES,
  type MatrixRoute,
  type Presented,
  requestInit,
  routeName,
  type Scope,
  trusted,
} from "./_matrix.ts";

const JWT_ROUTES = AUTHENTICATED_ROUTES.filter((r) => r.credential === "jwt");
const KEY_ROUTES = AUTHENTICATED_ROUTES.filter((r) => r.credential === "api_key");
const UNAUTHENTICATED_PER_HOUR = 100;

function test(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  ignore = false,
): void {
  Deno.test({ name, fn, ignore, sanitizeOps: false, sanitizeResources: false });
}

/** Asserts the hourly per-IP window: limit 100, `remaining` left, reset at the next hour. */
function assertIpWindow(r: ApiResponse, remaining: number): void {
  assert.equal(r.headers.get("x-ratelimit-limit"), String(UNAUTHENTICATED_PER_HOUR));
  assert.equal(r.headers.get("x-ratelimit-remaining"), String(remaining));
  const reset = Number(r.headers.get("x-ratelimit-reset"));
  const now = Date.now() / 1000;
  assert.ok(reset > now && reset <= now + 3600 + 1, `X-RateLimit-Reset ${reset} within the hour`);
  assert.equal(reset % 3600, 0, "the hourly window resets on the hour");
  assert.equal(r.headers.get("retry-after"), null, "no Retry-After below the limit");
}

/** Asserts that no credential comes back in the body or a header. */
function assertNoEcho(r: ApiResponse, secrets: readonly string[]): void {
  for (const secret of secrets) {
    assert.ok(!r.text.includes(secret), "the body echoes the presented credential");
    for (const [name, value] of r.headers) {
      assert.ok(!value.includes(secret), `header ${name} echoes the presented credential`);
    }
  }
}

function assertRefusal(
  r: ApiResponse,
  route: MatrixRoute,
  e: Expectation,
  presented: Presented,
  counted: number,
): void {
  assert.equal(r.status, e.status, `${routeName(route)}: ${r.text}`);
  assert.equal(r.headers.get("content-type"), "application/json");
  const requestId = r.headers.get("x-request-id");
  const expected: Record<string, unknown> = route.credential === "jwt"
    ? { error: e.error, message: e.message, statusCode: e.status, code: e.code }
    : { error: e.error, message: e.message, code: e.code };
  expected.request_id = requestId;
  assert.deepEqual(r.body, expected);
  assertCommonHeaders(r);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assertIpWindow(r, UNAUTHENTICATED_PER_HOUR - counted);

  const challenge = r.headers.get("www-authenticate");
  if (route.credential === "jwt") {
    assert.ok(challenge?.startsWith('Bearer realm="torvus"'), `WWW-Authenticate: ${challenge}`);
    if (e.challenge && "exact" in e.challenge) assert.equal(challenge, e.challenge.exact);
    if (e.challenge && "bearerError" in e.challenge) {
      assert.ok(
        challenge?.includes(`error="${e.challenge.bearerError}"`),
        `WWW-Authenticate has error="${e.challenge.bearerError}": ${challenge}`,
      );
    }
  } else if (e.status === 401) {
    assert.ok(challenge?.startsWith('ApiKey realm="torvus"'), `WWW-Authenticate: ${challenge}`);
  }
  assertNoEcho(r, presented.secrets);
}

function matrix(kind: string, cases: readonly HostileCase[], routes: readonly MatrixRoute[]) {
  for (const c of cases) {
    const title = `${kind} matrix: ${c.name}` + (c.bug ? ` [ignored, known bug: ${c.bug}]` : "");
    test(title, async (t) => {
      const f = await fixtures();
      const presented = await c.build(f);
      // Every step counts exactly against one address's hourly window.
      await awayFromWindowEnd(3600, 5);
      const ip = freshIp();
      let counted = 0;
      for (const route of routes) {
        await t.step({
          name: routeName(route),
          fn: async () => {
            const { path, init } = requestInit(route, ip, presented);
            const r = await api(path, init);
            if (c.transportRejected) {
              // Refused by the HTTP server before the API sees it (no X-Request-ID, not counted).
              assert.ok(r.status >= 400 && r.status < 500, `4xx expected, got ${r.status}`);
              assertNoEcho(r, presented.secrets);
              return;
            }
            counted++;
            assertRefusal(r, route, c.expect!, presented, counted);
          },
        });
      }
    }, c.bug !== undefined);
  }
}

matrix("JWT", JWT_CASES, JWT_ROUTES);
matrix("API key", KEY_CASES, KEY_ROUTES);

function assertReached(r: ApiResponse, route: MatrixRoute): void {
  const where = `${routeName(route)}: ${r.status} ${r.text}`;
  if (route.ok.length > 0) assert.ok(route.ok.includes(r.status), where);
  assert.ok(r.status < 500 && ![401, 403, 405, 419].includes(r.status), where);
  assert.notEqual(r.body?.message, "Route not found", where);
  assertCommonHeaders(r);
}

test("control: a valid token reaches every JWT route (1,000/hour user window)", async (t) => {
  const f = await fixtures();
  const token = await trusted(f);
  const ip = freshIp();
  for (const route of JWT_ROUTES) {
    await t.step({
      name: routeName(route),
      fn: async () => {
        const { path, init } = requestInit(route, ip, {
          headers: { authorization: `Bearer ${token}` },
          secrets: [],
        });
        const r = await api(path, init);
        assertReached(r, route);
        assert.equal(r.headers.get("x-ratelimit-limit"), "1000");
      },
    });
  }
  await t.step("the scheme is case-insensitive: bearer <token>", async () => {
    const r = await api("/api/me", { ip, headers: { authorization: `bearer ${token}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.id, f.user.userId);
  });
});

test("control: a valid key with every scope reaches every API-key route", async (t) => {
  const f = await fixtures();
  const ip = freshIp();
  for (const key of [f.keys.live, f.keys.test]) {
    for (const route of KEY_ROUTES) {
      await t.step(`${key.key.slice(0, 8)}… ${routeName(route)}`, async () => {
        const { path, init } = requestInit(route, ip, {
          headers: { "x-api-key": key.key },
          secrets: [],
        });
        const r = await api(path, init);
        assertReached(r, route);
        // The key's own tier (1,000/minute, 100,000/day): the minute window is the tighter.
        assert.equal(r.headers.get("x-ratelimit-limit"), "1000");
      });
    }
  }
});

/** For each scope, a key with every other scope (1,000 requests a minute). */
async function keysLacking(): Promise<Map<Scope, string>> {
  const tier = await newTier(1000, 100_000);
  const all: Scope[] = ["read", "write", "delete"];
  const lacking = new Map<Scope, string>();
  for (const scope of all) {
    const k = await newKey({ mode: "live", tier, scopes: all.filter((s) => s !== scope) });
    lacking.set(scope, k.key);
  }
  return lacking;
}

test("API key matrix: a key without the route's scope gets 403 INSUFFICIENT_SCOPE", async (t) => {
  const lacking = await keysLacking();
  const ip = freshIp();
  for (const route of KEY_ROUTES.filter((r) => r.scope !== undefined)) {
    await t.step(`${routeName(route)} needs ${route.scope}`, async () => {
      const key = lacking.get(route.scope!)!;
      const { path, init } = requestInit(route, ip, { headers: { "x-api-key": key }, secrets: [] });
      const r = await api(path, init);
      assert.equal(r.status, 403, r.text);
      assert.deepEqual(r.body, {
        error: "forbidden",
        message: `API key lacks the '${route.scope}' scope`,
        code: "INSUFFICIENT_SCOPE",
        required_scope: route.scope,
        request_id: r.headers.get("x-request-id"),
      });
      assertCommonHeaders(r);
      // Counted against the key (it authenticated), not the client's address.
      assert.equal(r.headers.get("x-ratelimit-limit"), "1000");
      assertNoEcho(r, [key]);
    });
  }
});

// Valid credentials with hostile content never end in a 5xx:
// - a validly signed token whose user no longer exists (deleted while the token lives on) gets
//   404 "User not found" where a write needs the user;
// - a NUL character in a vault's name (or description/tags), or in a new API key's name, is
//   400 VALIDATION_FAILED (PostgreSQL text cannot hold it), on POST and PATCH alike.

test(
  "no valid-credential request with hostile content ends in a 5xx",
  async (t) => {
    const f = await fixtures();
    const ip = freshIp();
    const ghost = await trusted(f, { sub: crypto.randomUUID() });
    for (const route of JWT_ROUTES) {
      await t.step(`deleted user: ${routeName(route)}`, async () => {
        const { path, init } = requestInit(route, ip, {
          headers: { authorization: `Bearer ${ghost}` },
          secrets: [],
        });
        const r = await api(path, init);
        assert.ok(r.status < 500, `${r.status} ${r.text}`);
      });
    }
    const token = await trusted(f);
    const nul = "a\u0000b";
    const named = AUTHENTICATED_ROUTES.filter((r) =>
      r.body !== undefined && !/\/(revoke|roll)$/.test(r.path)
    );
    for (const route of named) {
      const body = route.path.includes("key") ? { name: nul, mode: "test" } : { name: nul };
      await t.step(`NUL in a name: ${routeName(route)}`, async () => {
        const headers: Record<string, string> = route.credential === "jwt"
          ? { authorization: `Bearer ${token}` }
          : { "x-api-key": f.keys.live.key };
        const { path, init } = requestInit({ ...route, body }, ip, { headers, secrets: [] });
        const r = await api(path, init);
        assert.ok(r.status < 500, `${r.status} ${r.text}`);
      });
    }
  },
);

// The headers the OpenAPI document lists for each answer are the ones the API sends: on every
// route of the matrix, at both of its paths, accepted (valid credentials), refused (none, and a
// key without the scope), for a method the path lacks (405) and the CORS preflight (OPTIONS),
// nothing sent is undocumented and nothing documented as always sent is missing.
test("documented headers: every route sends exactly the headers the document lists", async (t) => {
  const f = await fixtures();
  const served = await api("/api/openapi.json", { ip: freshIp() });
  assert.equal(served.status, 200, served.text.slice(0, 300));
  const document = served.body;
  const token = await trusted(f);
  const lacking = await keysLacking();
  const apps = await appTokens();
  for (const route of AUTHENTICATED_ROUTES) {
    await t.step(routeName(route), async () => {
      // An address of its own: the refusals count against its hourly window of 100.
      const ip = freshIp();
      const valid = route.credential === "jwt"
        ? { authorization: `Bearer ${token}` }
        : { "x-api-key": f.keys.live.key };
      const asked: Array<[string, Record<string, string>, string?]> = [
        ["accepted", valid],
        ["no credential", {}],
        ["a method the path lacks", valid, "PUT"],
        ["the CORS preflight", {}, "OPTIONS"],
      ];
      if (route.scope) {
        asked.push(["without the scope", { "x-api-key": lacking.get(route.scope)! }]);
      }
      if (route.credential === "jwt") {
        asked.push(["an app's token", { authorization: `Bearer ${apps.granted}` }]);
        asked.push(["an app's token without a grant", { authorization: `Bearer ${apps.revoked}` }]);
        if (route.appScope) {
          const lacks = apps.lacking.get(route.appScope)!;
          asked.push(["an app's token without the scope", { authorization: `Bearer ${lacks}` }]);
        }
      }
      for (const [what, headers, method] of asked) {
        const { path, init } = requestInit(route, ip, { headers, secrets: [] });
        const r = await api(path, { ...init, ...(method ? { method } : {}) });
        assert.ok(r.status < 500, `${what}: ${r.status} ${r.text}`);
        const problems = headerMismatches(document, method ?? route.method, route.template, r);
        assert.deepEqual(problems, [], `${what}: ${path}`);
      }
    });
  }
});

// --- third-party apps' tokens on every JWT route ---------------------------------------------------

/** The app tier's minute: what an admitted app's answers report. */
const APP_PER_MINUTE = 1000;

/** Each scope with a valid grant of every other scope (writing and deleting need reading). */
const LACKING: Readonly<Record<AppScope, readonly AppScope[]>> = {
  "vaults:read": ["profile:read"],
  "vaults:write": ["vaults:read", "vaults:delete", "profile:read"],
  "vaults:delete": ["vaults:read", "vaults:write", "profile:read"],
  "profile:read": ["vaults:read", "vaults:write", "vaults:delete"],
};

interface AppTokens {
  /** A grant of every scope. */
  granted: string;
  /** No grant at all. */
  ungranted: string;
  /** A grant, revoked. */
  revoked: string;
  /** For each scope, a grant of every other. */
  lacking: Map<AppScope, string>;
}

let appTokensPromise: Promise<AppTokens> | undefined;

/** One user's tokens of apps in each state of their grant. */
function appTokens(): Promise<AppTokens> {
  appTokensPromise ??= (async () => {
    const tier = await newTier(APP_PER_MINUTE, 100_000);
    const user = await newUser();
    const [granted, ungranted, revoked] = await Promise.all([1, 2, 3].map(() => newApp({ tier })));
    await grantApp(user, granted!);
    await grantApp(user, revoked!);
    await revokeApp(user, revoked!);
    const lacking = new Map<AppScope, string>();
    for (const scope of ALL_APP_SCOPES) {
      const app = await newApp({ tier });
      await grantApp(user, app, LACKING[scope]);
      lacking.set(scope, await appToken(user, app.clientId));
    }
    return {
      granted: await appToken(user, granted!.clientId),
      ungranted: await appToken(user, ungranted!.clientId),
      revoked: await appToken(user, revoked!.clientId),
      lacking,
    };
  })();
  return appTokensPromise;
}

const NOT_ACCEPTED: Expectation = {
  status: 403,
  error: "Forbidden",
  message: "This route does not accept tokens issued to third-party apps",
  code: "APP_TOKEN_NOT_ACCEPTED",
  challenge: {
    exact: 'Bearer realm="torvus", error="insufficient_scope", ' +
      'error_description="This route does not accept tokens issued to third-party apps"',
  },
};
const NO_GRANT: Expectation = {
  status: 401,
  error: "Unauthorized",
  message: "The user has not granted this app access, or revoked it",
  code: "APP_GRANT_NOT_ACTIVE",
  challenge: {
    exact: 'Bearer realm="torvus", error="invalid_token", ' +
      `error_description="The user's grant to this app is not active"`,
  },
};

for (const state of ["ungranted", "revoked"] as const) {
  test(`app matrix: a token whose grant is ${state === "ungranted" ? "absent" : "revoked"}`, async (t) => {
    const tokens = await appTokens();
    const token = tokens[state];
    const presented = { headers: { authorization: `Bearer ${token}` }, secrets: [token] };
    await awayFromWindowEnd(3600, 5);
    const ip = freshIp();
    let counted = 0;
    for (const route of JWT_ROUTES) {
      await t.step(routeName(route), async () => {
        const { path, init } = requestInit(route, ip, presented);
        const r = await api(path, init);
        counted++;
        assertRefusal(r, route, route.appScope ? NO_GRANT : NOT_ACCEPTED, presented, counted);
      });
    }
  });
}

test("app matrix: a granted token reaches the routes apps may use, no account route", async (t) => {
  const { granted } = await appTokens();
  const presented = { headers: { authorization: `Bearer ${granted}` }, secrets: [granted] };
  await awayFromWindowEnd(3600, 5);
  const ip = freshIp();
  let counted = 0;
  for (const route of JWT_ROUTES) {
    await t.step(`${routeName(route)}${route.appScope ? ` (${route.appScope})` : ""}`, async () => {
      const { path, init } = requestInit(route, ip, presented);
      const r = await api(path, init);
      if (!route.appScope) {
        counted++;
        assertRefusal(r, route, NOT_ACCEPTED, presented, counted);
        return;
      }
      assertReached(r, route);
      assert.equal(r.headers.get("x-ratelimit-limit"), String(APP_PER_MINUTE), "the app's minute");
      assertNoEcho(r, [granted]);
    });
  }
  const appRoutes = JWT_ROUTES.filter((r) => r.appScope);
  for (const kind of ["me", "vaults"]) {
    assert.ok(appRoutes.some((r) => r.path.split("/")[2] === kind), `apps reach /api/${kind}`);
  }
});

test("app matrix: a grant without the route's scope gets 403 insufficient_scope", async (t) => {
  const { lacking } = await appTokens();
  const ip = freshIp();
  for (const route of JWT_ROUTES.filter((r) => r.appScope !== undefined)) {
    await t.step(`${routeName(route)} needs ${route.appScope}`, async () => {
      const token = lacking.get(route.appScope!)!;
      const { path, init } = requestInit(route, ip, {
        headers: { authorization: `Bearer ${token}` },
        secrets: [token],
      });
      const r = await api(path, init);
      const message = `The app's grant lacks the '${route.appScope}' scope`;
      assert.equal(r.status, 403, r.text);
      assert.deepEqual(r.body, {
        error: "forbidden",
        message,
        statusCode: 403,
        code: "INSUFFICIENT_SCOPE",
        required_scope: route.appScope,
        request_id: r.headers.get("x-request-id"),
      });
      assert.equal(
        r.headers.get("www-authenticate"),
        `Bearer realm="torvus", error="insufficient_scope", scope="${route.appScope}", ` +
          `error_description="${message}"`,
      );
      assertCommonHeaders(r);
      // Counted against the app's budget for its user, not the client's address.
      assert.equal(r.headers.get("x-ratelimit-limit"), String(APP_PER_MINUTE));
      assertNoEcho(r, [token]);
    });
  }
});

test("matrix covers every route of the gateway table", () => {
  const kinds = new Set(AUTHENTICATED_ROUTES.map((r) => `${r.credential} ${r.path.split("/")[2]}`));
  for (const expected of ["api_key v1", "jwt me", "jwt vaults", "jwt keys"]) {
    assert.ok(kinds.has(expected), `no ${expected} route in the matrix`);
  }
});

test("matrix: close the database connection", async () => {
  await closeDb();
});
