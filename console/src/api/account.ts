/**
 * The signed-in user's account (`GET /api/account`): their tier, and the tiers that name their
 * keys. Pages load it for themselves, so a session that ends and another user's sign-in never
 * see the previous account.
 */
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "./client.ts";
import type { components } from "./schema.gen.ts";
import { useAction } from "../ui/parts.tsx";

export type Account = components["schemas"]["Account"];
export type Tier = components["schemas"]["Tier"];

/** The account, loaded once per page; `error` is the failed call's, for an `ErrorNote`. */
export function useAccount(): { account: Account | null; error: unknown } {
  const [account, setAccount] = useState<Account | null>(null);
  const load = useAction(async () => setAccount(await unwrap(api.GET("/api/account"))));
  useEffect(() => void load.run(), []);
  return { account, error: load.error };
}

/** A tier's name as the pages show it: "free" → "Free". */
export function tierLabel(tier: Tier): string {
  return tier.name.charAt(0).toUpperCase() + tier.name.slice(1);
}

/** The label of the tier of that id, or its id while the account is not known. */
export function tierName(account: Account | null, id: string): string {
  const tier = account?.tiers.find((t) => t.id === id);
  return tier ? tierLabel(tier) : id;
}

/** Whether keys of this account may have an IP allowlist (the database's rule, as it says). */
export function allowsIpAllowlist(account: Account | null): boolean {
  return account?.tier.name === "enterprise";
}
