/**
 * Helpers of the webhook suites: endpoints made through the API, deliveries read back, and
 * deliveries verified with the reference verifiers on npm (`standardwebhooks`, svix's
 * `Webhook`), never only with the API's own code.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { api, type ApiResponse, type TestUser } from "../_harness.ts";
import { waitFor } from "./dev_server.ts";
import type { Received } from "./receiver.ts";

/** Calls the API as `user` with a JSON body. */
export function asUser(
  user: TestUser,
  method: string,
  path: string,
  body?: unknown,
  ip?: string,
): Promise<ApiResponse> {
  const headers: Record<string, string> = { Authorization: `Bearer ${user.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return api(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(ip === undefined ? {} : { ip }),
  });
}

/** An endpoint as created (with its secret). */
export interface Endpoint {
  id: string;
  secret: string;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Creates an endpoint through the API (201 asserted). */
export async function createEndpoint(
  user: TestUser,
  body: { url: string; events: string[]; mode?: "live" | "test"; description?: string },
): Promise<Endpoint> {
  const r = await asUser(user, "POST", "/api/webhooks", body);
  assert.equal(r.status, 201, r.text);
  return { id: r.body.id, secret: r.body.secret, body: r.body };
}

/** The endpoint's deliveries, newest first. */
// deno-lint-ignore no-explicit-any
export async function deliveries(user: TestUser, id: string): Promise<any[]> {
  const r = await asUser(user, "GET", `/api/webhooks/${id}/deliveries?limit=100`);
  assert.equal(r.status, 200, r.text);
  return r.body.data;
}

/** Waits until the endpoint's deliveries satisfy `ok`; returns them. */
export async function deliveriesWhen(
  user: TestUser,
  id: string,
  // deno-lint-ignore no-explicit-any
  ok: (list: any[]) => boolean,
  timeoutMs: number,
  // deno-lint-ignore no-explicit-any
): Promise<any[]> {
  // deno-lint-ignore no-explicit-any
  let last: any[] = [];
  await waitFor("deliveries", async () => ok(last = await deliveries(user, id)), timeoutMs, 200)
    .catch((error) => {
      throw new Error(`${(error as Error).message}: ${JSON.stringify(last)}`);
    });
  return last;
}

/** Waits until the endpoint's newest delivery has succeeded; returns it. */
// deno-lint-ignore no-explicit-any
export async function succeeded(user: TestUser, id: string, timeoutMs = 5_000): Promise<any> {
  const [newest] = await deliveriesWhen(user, id, (l) => l[0]?.status === "succeeded", timeoutMs);
  return newest;
}

/**
 * Verifies a delivery with both reference verifiers and returns the event. Throws when either
 * refuses it.
 */
// deno-lint-ignore no-explicit-any
export function verified(secret: string, request: Received): any {
  const event = new Webhook(secret).verify(request.body, request.headers);
  // svix's verify (2.x) returns nothing; it throws when the signature does not match.
  new SvixWebhook(secret).verify(request.body, request.headers);
  return event;
}

/** Whether both reference verifiers refuse the delivery with this secret. */
export function refusedBy(secret: string, request: Received): boolean {
  let refusals = 0;
  try {
    new Webhook(secret).verify(request.body, request.headers);
  } catch {
    refusals++;
  }
  try {
    new SvixWebhook(secret).verify(request.body, request.headers);
  } catch {
    refusals++;
  }
  return refusals === 2;
}
