/**
 * `GET /api/account`: the caller's profile, their account's tier and the tiers of their keys,
 * read from the database as the caller (RLS: a user reads their own account row and keys; tiers
 * are public).
 *
 * @module
 */
import type { Implementations } from "../_shared/http/spec.ts";
import type { spec } from "./spec.ts";
import { AccountSchema, MAX_TIERS, TierSchema } from "./schemas.ts";
import { respond } from "../_shared/schemas/respond.ts";
import { ApiError } from "../_shared/errors.ts";
import { asUser } from "../_shared/http/as_user.ts";
import { type RowOf, rowShape } from "../_shared/db/rows.ts";
import { MeSchema } from "../_shared/schemas/identity.ts";

/** The profile, then its account's tier: null when the sign-up trigger made no account row. */
type AccountRow = RowOf<typeof MeSchema> & { tier_id: string | null };
const PROFILE = rowShape<typeof MeSchema, AccountRow>(MeSchema, { table: "p" });

const TIER = rowShape(TierSchema);
type TierRow = RowOf<typeof TierSchema>;

/** Tiers in the order the answer lists them (the query puts the account's own first). */
function fewestFirst(a: TierRow, b: TierRow): number {
  return a.requests_per_minute - b.requests_per_minute ||
    a.requests_per_day - b.requests_per_day ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The account function's operations. */
export const operations: Implementations<typeof spec> = {
  async getAccount(ctx) {
    const [account, tiers] = await asUser(ctx, async (tx) => {
      const [account] = await tx<AccountRow[]>`
        select ${tx.unsafe(PROFILE.columns)}, a.tier_id
        from public.current_user_profile() p
        left join public.accounts a on a.user_id = p.id`;
      if (!account) return [undefined, []] as const;
      const own = account.tier_id;
      const tiers = await tx<TierRow[]>`
        select ${tx.unsafe(TIER.columns)} from public.tiers
        where id = ${own} or id in (select tier_id from public.api_keys)
        order by id = ${own} desc nulls last, requests_per_minute limit ${MAX_TIERS}`;
      return [account, tiers.sort(fewestFirst)] as const;
    });
    if (!account) {
      throw new ApiError("NOT_FOUND", { message: "User not found" });
    }
    const tier = tiers.find((t) => t.id === account.tier_id);
    if (!tier) {
      throw new ApiError("NOT_FOUND", { message: "Account not found" });
    }
    return respond(AccountSchema, {
      ...PROFILE.present(account),
      tier: TIER.present(tier),
      tiers: tiers.map(TIER.present),
    });
  },
};
