/**
 * `GET /api/usage`: the usage of all the caller's API keys, or of one (`key_id`) or one mode,
 * read as the caller (RLS) from the hourly rollups. A `key_id` the caller does not own (or that
 * does not exist) is a 404, as on `/api/keys/{id}/usage`.
 *
 * @module
 */
import type { Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import { ApiError } from "../_shared/errors.ts";
import { answerUsage } from "../_shared/usage.ts";

/** The usage function's operations. */
export const operations: Implementations<typeof spec> = {
  getUsage: (ctx) =>
    answerUsage(ctx, async (tx) => {
      const { key_id: keyId, mode } = ctx.query;
      if (keyId !== undefined) {
        const [key] = await tx`select id from public.api_keys where id = ${keyId}`;
        if (!key) throw new ApiError("NOT_FOUND", { message: "API key not found" });
      }
      return { keyId, mode };
    }),
};
