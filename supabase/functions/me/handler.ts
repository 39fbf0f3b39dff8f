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
import { asUser } from "../_shared/http/as_user.ts";
import { isoText } from "../_shared/db/rows.ts";

interface ProfileRow {
  id: string;
  email: string | null;
  created_at: string;
}

/** The profile as the API shows it, the instant formatted by PostgreSQL (db/rows.ts). */
export const PROFILE = `select id, email, ${
  isoText("created_at")
} as created_at from public.current_user_profile()`;

/** The me function's operations. */
export const operations: Implementations<typeof spec> = {
  async getMe(ctx) {
    const rows = await asUser(ctx, (tx) => tx.unsafe<ProfileRow[]>(PROFILE));
    const row = rows[0];
    if (!row) throw new ApiError("NOT_FOUND", { message: "User not found" });
    return respond(MeSchema, { id: row.id, email: row.email, created_at: row.created_at });
  },
};
