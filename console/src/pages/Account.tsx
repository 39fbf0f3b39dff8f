/**
 * The account: who is signed in, the account's tier with the limits of its live and test keys
 * (`/api/account`), the tiers of keys an operator moved elsewhere, and the mode switch.
 */
import { type Tier, tierLabel, useAccount } from "../api/account.ts";
import { ErrorNote, when } from "../ui/parts.tsx";
import { ModeSwitch } from "../ui/Layout.tsx";

const count = (n: number) => n.toLocaleString("en-US");

export function Account() {
  const { account, error } = useAccount();
  return (
    <>
      <h1>Account</h1>
      <ErrorNote error={error} />
      <dl class="card">
        <dt>Email</dt>
        <dd>{account?.email ?? "…"}</dd>
        <dt>User id</dt>
        <dd>
          <code>{account?.id ?? "…"}</code>
        </dd>
        <dt>Member since</dt>
        <dd>{when(account?.created_at)}</dd>
        <dt>Tier</dt>
        <dd>{account ? tierLabel(account.tier) : "…"}</dd>
      </dl>
      <h2>Mode</h2>
      <p>
        Test keys, test webhooks and their usage are kept apart from live ones, as in Stripe. The
        switch chooses which the pages show and create.
      </p>
      <ModeSwitch />
      <h2>Rate limits</h2>
      <p>
        New keys take the account's tier. An operator may move a key to another tier; the keys page
        names each key's.
      </p>
      {account && <Limits tiers={account.tiers} own={account.tier.id} />}
    </>
  );
}

function Limits({ tiers, own }: { tiers: Tier[]; own: string }) {
  return (
    <table>
      <caption class="sr-only">Rate limits of the account's tiers</caption>
      <thead>
        <tr>
          <th scope="col">Tier</th>
          <th scope="col">Live keys, per minute</th>
          <th scope="col">Live keys, per day</th>
          <th scope="col">Test keys, per minute</th>
          <th scope="col">Test keys, per day</th>
        </tr>
      </thead>
      <tbody>
        {tiers.map((tier) => (
          <tr key={tier.id}>
            <th scope="row">
              {tierLabel(tier)}
              {tier.id === own ? " (the account's)" : ""}
            </th>
            <td>{count(tier.requests_per_minute)}</td>
            <td>{count(tier.requests_per_day)}</td>
            <td>{count(tier.test_requests_per_minute)}</td>
            <td>{count(tier.test_requests_per_day)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
