/**
 * A signed-in user's statements, as the resource handlers run them: in one transaction as the
 * caller under RLS ({@link asCaller}), timed as `db`, with the database's refusals turned into
 * catalogued errors. A valid token of a user deleted since it was issued fails a foreign key
 * (23503) on a write: "User not found", the answer `GET /api/me` gives that token.
 *
 * @module
 */
import { asCaller, sqlState, type Tx } from "../db/client.ts";
import type { UserPrincipal } from "../auth/principal.ts";
import type { HandlerContext } from "./spec.ts";
import { ApiError } from "../errors.ts";

/** The errors a resource's triggers and checks raise, by SQLSTATE (`TV409`: a conflict). */
export type Refusals = Readonly<Record<string, () => ApiError>>;

/** Runs `fn` as the request's user; a refusal listed in `refusals` becomes its error. */
export function asUser<T>(
  ctx: HandlerContext<UserPrincipal, unknown, unknown>,
  fn: (tx: Tx) => Promise<T>,
  refusals: Refusals = {},
): Promise<T> {
  return ctx.timing.measure("db", async () => {
    try {
      return await asCaller(ctx.services.sql, ctx.principal.claims, fn);
    } catch (error) {
      throw refused(error, refusals) ?? error;
    }
  });
}

/** The catalogued error of a database refusal, or undefined for any other failure. */
export function refused(error: unknown, refusals: Refusals = {}): ApiError | undefined {
  const state = sqlState(error);
  if (state === undefined) return undefined;
  const known = refusals[state];
  if (known) return known();
  if (state === "23503") return new ApiError("NOT_FOUND", { message: "User not found" });
  return undefined;
}
