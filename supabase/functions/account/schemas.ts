/**
 * The account of the signed-in user: who they are, their tier, and the tiers of their keys.
 *
 * @module
 */
import { z } from "zod";
import { components } from "../_shared/schemas/component.ts";
import { Ulid } from "../_shared/schemas/common.ts";
import { MeSchema } from "../_shared/schemas/identity.ts";

/** Most tiers an account answer lists: its own and one per key it ever held, at most. */
export const MAX_TIERS = 1000;

const PerMinute = z.int32().min(1).meta({
  description: "Requests a key may make per minute",
});
const PerDay = z.int32().min(1).meta({
  description: "Requests a key may make per day",
});

/** A subscription tier and the rate limits of its keys (test keys have their own, twice). */
export const TierSchema = z.object({
  id: Ulid.meta({ description: "The tier's id, as keys show it in `tier_id`" }),
  name: z.string().max(40).regex(/^[a-z0-9][a-z0-9_-]{0,39}$/).meta({
    examples: ["free"],
  }),
  requests_per_minute: PerMinute,
  requests_per_day: PerDay,
  test_requests_per_minute: PerMinute,
  test_requests_per_day: PerDay,
}).meta({ description: "A tier and the limits of its live and test keys" })
  .register(
    components,
    { id: "Tier" },
  );

/** `GET /api/account` 200. */
export const AccountSchema = MeSchema.extend({
  tier: TierSchema.meta({
    description: "The account's tier: new keys take it",
  }),
  tiers: z.array(TierSchema).max(MAX_TIERS).meta({
    description: "The account's tier and those of its keys (an operator may move a key to " +
      "another), fewest requests first: what names each key's `tier_id`",
  }),
}).meta({ description: "The signed-in user's account" }).register(components, {
  id: "Account",
});
