/**
 * `GET /api/v1/test`: verifies an API key and describes it, as documented: `success`, `message`,
 * `key_info` (`key_id`, `key_name`, `user_id`, `tier_id`, `rate_limits`) and `timestamp`.
 *
 * @module
 */
import type { Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import { V1TestSchema } from "../_shared/schemas/identity.ts";
import { respond } from "../_shared/schemas/respond.ts";

/** The v1-test function's operations. */
export const operations: Implementations<typeof spec> = {
  testApiKey: ({ principal: key, services }) =>
    respond(V1TestSchema, {
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
      timestamp: new Date(services.now()).toISOString(),
    }),
};
