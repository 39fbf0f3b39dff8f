/**
 * `GET /api/v1/test`: verifies an API key and describes it, as documented: `success`, `message`,
 * `key_info` (`key_id`, `key_name`, `user_id`, `tier_id`, `rate_limits`) and `timestamp`.
 * Any other method is answered 405 with `Allow: GET, OPTIONS`.
 *
 * @module
 */
import { defineFunction, keyOf, type RequestContext, type RouteSpec } from "../_shared/http/app.ts";
import { V1TestSchema } from "../_shared/schemas/identity.ts";
import { respond } from "../_shared/schemas/respond.ts";

function test(ctx: RequestContext): Promise<Response> {
  const key = keyOf(ctx);
  return Promise.resolve(respond(V1TestSchema, {
    success: true,
    message: "Authentication successful",
    key_info: {
      key_id: key.keyId,
      key_name: key.keyName,
      user_id: key.userId,
      tier_id: key.tierId,
      rate_limits: {
        requests_per_day: key.limits.perDay,
        requests_per_minute: key.limits.perMinute,
      },
    },
    timestamp: new Date().toISOString(),
  }));
}

/** The v1-test function's routes. */
export const routes: readonly RouteSpec[] = [
  { path: "/", auth: "api_key", methods: { GET: { handler: test } } },
];

/** The v1-test function's handler. */
export const handler = defineFunction("v1-test", routes);
