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
import { type RowOf, rowShape } from "../_shared/db/rows.ts";

const ME = rowShape(MeSchema);

/** The profile as the API shows it, the instant formatted by PostgreSQL (db/rows.ts). */
export const PROFILE = `select ${ME.columns} from public.current_user_profile()`;

/** The me function's operations. */
export const operations: Implementations<typeof spec> = {
  async getMe(ctx) {
    const rows = await asUser(ctx, (tx) => tx.unsafe<RowOf<typeof MeSchema>[]>(PROFILE));
    const row = rows[0];
    if (!row) throw new ApiError("NOT_FOUND", { message: "User not found" });
    return respond(MeSchema, ME.present(row));
  },
};
