/**
 * `GET /api/me`: the caller's `{ id, email, created_at }`, read from the database as the
 * caller (RLS, via `current_user_profile()`), never from the token alone.
 *
 * @module
 */
import type { Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import { MeSchema } from "../_shared/schemas/identity.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { ApiError } from "../_shared/errors.ts";
import { asCaller } from "../_shared/db/client.ts";

interface ProfileRow {
  id: string;
  email: string | null;
  created_at: Date;
}

/** The me function's operations. */
export const operations: Implementations<typeof spec> = {
  async getMe({ principal: user, services, timing }) {
    const rows = await timing.measure(
      "db",
      () =>
        asCaller(
          services.sql,
          user.claims,
          (tx) => tx<ProfileRow[]>`select id, email, created_at from public.current_user_profile()`,
        ),
    );
    const row = rows[0];
    if (!row) throw new ApiError("NOT_FOUND", { message: "User not found" });
    return respond(MeSchema, {
      id: row.id,
      email: row.email,
      created_at: row.created_at.toISOString(),
    });
  },
};
