/**
 * `GET /api/usage`: the usage of all the caller's API keys, or of one (`key_id`) or one mode,
 * read as the caller (RLS) from the hourly rollups. A `key_id` the caller does not own (or that
 * does not exist) is a 404, as on `/api/keys/{id}/usage`.
 *
 * @module
 */
import type { Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import { UsageSchema } from "../_shared/schemas/usage.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { asCaller } from "../_shared/db/client.ts";
import { ApiError } from "../_shared/errors.ts";
import { readUsage, usageRange } from "../_shared/usage.ts";

/** The usage function's operations. */
export const operations: Implementations<typeof spec> = {
  async getUsage({ principal: user, query, services, timing }) {
    const range = usageRange(query, services.now());
    const body = await timing.measure(
      "db",
      () =>
        asCaller(
          services.sql,
          user.claims,
          async (tx) => {
            if (query.key_id !== undefined) {
              const [key] = await tx`select id from public.api_keys where id = ${query.key_id}`;
              if (!key) throw new ApiError("NOT_FOUND", { message: "API key not found" });
            }
            return await readUsage(tx, range, { keyId: query.key_id, mode: query.mode });
          },
        ),
    );
    return respond(UsageSchema, body);
  },
};
