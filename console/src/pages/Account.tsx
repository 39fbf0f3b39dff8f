/** The account: who is signed in (from `/api/me`), the mode switch, and the tiers' limits. */
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client.ts";
import type { components } from "../api/schema.gen.ts";
import { ErrorNote, useAction, when } from "../ui/parts.tsx";
import { ModeSwitch } from "../ui/Layout.tsx";

/** The documented limits per tier (README, "Rate limits"); test keys get twice these. */
const TIERS = [
  ["Free", "10 / minute", "1,000 / day"],
  ["Professional", "60 / minute", "10,000 / day"],
  ["Enterprise", "300 / minute", "100,000 / day"],
] as const;

export function Account() {
  const [me, setMe] = useState<components["schemas"]["Me"] | null>(null);
  const load = useAction(async () => setMe(await unwrap(api.GET("/api/me"))));
  useEffect(() => void load.run(), []);
  return (
    <>
      <h1>Account</h1>
      <ErrorNote error={load.error} />
      <dl class="card">
        <dt>Email</dt>
        <dd>{me?.email ?? "…"}</dd>
        <dt>User id</dt>
        <dd>
          <code>{me?.id ?? "…"}</code>
        </dd>
        <dt>Member since</dt>
        <dd>{when(me?.created_at)}</dd>
      </dl>
      <h2>Mode</h2>
      <p>
        Test keys, test webhooks and their usage are kept apart from live ones, as in Stripe. The
        switch chooses which the pages show and create.
      </p>
      <ModeSwitch />
      <h2>Tiers and their limits</h2>
      <p>
        Each key has a tier (shown on the keys page); new accounts start on Free. Test keys get
        twice their tier's limits.
      </p>
      <table>
        <caption class="sr-only">Rate limits per tier</caption>
        <thead>
          <tr>
            <th scope="col">Tier</th>
            <th scope="col">Per minute</th>
            <th scope="col">Per day</th>
          </tr>
        </thead>
        <tbody>
          {TIERS.map(([tier, minute, day]) => (
            <tr key={tier}>
              <td>{tier}</td>
              <td>{minute}</td>
              <td>{day}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
