/**
 * Runs a case of the hostile catalogue in-process: a route of the case's kind behind the real
 * pipeline and admission, with fake services, and checks the answer the case expects.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHandler, type Handler } from "../http/pipeline.ts";
import type { Services } from "../services.ts";
import type { AnyHandler, AuthKind, FunctionSpec, OperationSpec, RouteSpec } from "../http/spec.ts";
import type { CatalogueFixtures, HostileCase } from "./hostile.ts";
import { catalogueFixtures, fakeServices } from "./fakes.ts";

/**
 * A function of one route, `GET /`, whose operation is `probe`, with these credentials; `route`
 * and `op` refine the route and its operation.
 */
export function probeSpec(
  auth: AuthKind,
  route: Partial<Omit<RouteSpec, "auth" | "methods">> = {},
  op: Partial<OperationSpec> = {},
): FunctionSpec {
  const probe = {
    id: "probe",
    tag: "T",
    summary: "probe",
    success: { status: 200, description: "" },
  };
  return {
    gateway: [],
    routes: [{ path: "/", auth, ...route, methods: { GET: { ...probe, ...op } } }],
  };
}

/** The function of {@link probeSpec} with these credentials, whose operation is `handler`. */
export function probeHandler(
  services: Services,
  handler: AnyHandler,
  auth: AuthKind = "none",
): Handler {
  return createHandler({
    name: "probe",
    spec: probeSpec(auth),
    implementations: { probe: handler },
    boot: { services, shutdown: () => Promise.resolve() },
  });
}

/** A test that runs every case of a catalogue, each as a step, on a route of its kind. */
export function catalogueTest(
  auth: "jwt" | "api_key",
  cases: readonly HostileCase[],
): (t: Deno.TestContext) => Promise<void> {
  return async (t) => {
    const f = await fakeServices();
    const fixtures = await catalogueFixtures(f);
    const handler = probeHandler(f.services, () => Response.json({ reached: true }), auth);
    for (const c of cases) await t.step(c.name, () => runCase(handler, c, fixtures));
  };
}

/** Presents a case's credentials and checks the documented answer, in-process. */
async function runCase(
  handler: Handler,
  c: HostileCase,
  f: CatalogueFixtures,
): Promise<void> {
  const presented = await c.build(f);
  const response = await handler(
    new Request(`http://localhost/functions/v1/probe${presented.query ?? ""}`, {
      headers: presented.headers,
    }),
  );
  const text = await response.text();
  // Without an HTTP server in front, an oversized token reaches the API and is refused there.
  const expect = c.expect ?? {
    status: 401,
    code: "INVALID_AUTH_TOKEN",
    error: "Unauthorized",
    message: "Invalid or missing authentication token",
  };
  const body = JSON.parse(text);
  assert.equal(response.status, expect.status, `${c.name}: ${text}`);
  assert.equal(body.code, expect.code, c.name);
  assert.equal(body.error, expect.error, c.name);
  assert.equal(body.message, expect.message, c.name);
  assert.equal(body.request_id, response.headers.get("x-request-id"));
  if (c.credential === "jwt") assert.equal(body.statusCode, expect.status);
  const challenge = response.headers.get("www-authenticate") ?? "";
  if (expect.challenge && "exact" in expect.challenge) {
    assert.equal(challenge, expect.challenge.exact, c.name);
  } else if (expect.challenge) {
    assert.ok(
      challenge.includes(`error="${expect.challenge.bearerError}"`),
      `${c.name}: ${challenge}`,
    );
  }
  const echoed = [text, ...[...response.headers].map(([k, v]) => `${k}: ${v}`)].join("\n");
  for (const secret of presented.secrets) {
    assert.ok(!echoed.includes(secret), `${c.name}: a credential came back`);
  }
}
