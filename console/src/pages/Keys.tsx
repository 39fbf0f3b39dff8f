/**
 * API keys of the current mode: the list, a form to create one (shown once, with a copy button
 * and a warning), revoke (after a confirmation) and roll (the old key keeps working for a grace
 * period). Works with the keyboard alone: a form, native controls and a native modal dialog.
 */
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client.ts";
import {
  type Account,
  allowsIpAllowlist,
  tierLabel,
  tierName,
  useAccount,
} from "../api/account.ts";
import { type components, keyScopeValues } from "../api/schema.gen.ts";
import { mode } from "../ui/state.ts";
import {
  ActionForm,
  Checkboxes,
  Confirm,
  ErrorNote,
  Field,
  ShowOnce,
  Table,
  useAction,
  when,
} from "../ui/parts.tsx";

type Key = components["schemas"]["ApiKey"];
type Scope = components["schemas"]["KeyScope"];
const SCOPES = keyScopeValues;
const GRACE = [
  [0, "none (stop at once)"],
  [3600, "1 hour"],
  [86400, "24 hours"],
  [604800, "7 days"],
] as const;

export function Keys() {
  const [keys, setKeys] = useState<Key[] | null>(null);
  const [shown, setShown] = useState<{ label: string; value: string } | null>(null);
  const [confirm, setConfirm] = useState<{ key: Key; action: "revoke" | "roll" } | null>(null);
  const [grace, setGrace] = useState(86400);
  const { account, error: accountError } = useAccount();

  const load = useAction(async () => {
    const list = await unwrap(
      api.GET("/api/keys", { params: { query: { mode: mode.value, limit: 100 } } }),
    );
    setKeys(list.data);
  });
  useEffect(() => void load.run(), [mode.value]);

  const act = useAction(async (key: Key, action: "revoke" | "roll") => {
    setConfirm(null);
    const path = { params: { path: { id: key.id } } };
    if (action === "revoke") {
      await unwrap(api.POST("/api/keys/{id}/revoke", path));
    } else {
      const rolled = await unwrap(
        api.POST("/api/keys/{id}/roll", { ...path, body: { grace_period_seconds: grace } }),
      );
      setShown({ label: `New key for "${rolled.name}"`, value: rolled.key });
    }
    await load.run();
  });

  return (
    <>
      <h1>API keys ({mode.value})</h1>
      {shown && <ShowOnce label={shown.label} value={shown.value} onDone={() => setShown(null)} />}
      <CreateKey
        account={account}
        onCreated={async (created) => {
          setShown({ label: `Your new key "${created.name}"`, value: created.key });
          await load.run();
        }}
      />
      <h2>Your {mode.value} keys</h2>
      <ErrorNote error={load.error ?? act.error ?? accountError} />
      {keys === null
        ? <p>Loading…</p>
        : keys.length === 0
        ? <p>No {mode.value} keys yet.</p>
        : (
          <Table
            caption="API keys"
            columns={[
              "Name",
              "Prefix",
              "Mode",
              "Tier",
              "Scopes",
              "Status",
              "Created",
              "Last used",
              "Expires",
              "Actions",
            ]}
          >
            {keys.map((key) => (
              <tr key={key.id}>
                <td>{key.name}</td>
                <td>
                  <code>{key.start}…</code>
                </td>
                <td>{key.mode}</td>
                <td>
                  <span title={key.tier_id}>{tierName(account, key.tier_id)}</span>
                </td>
                <td>{key.scopes.join(", ")}</td>
                <td>
                  <span class={`status ${key.status}`}>{key.status}</span>
                </td>
                <td>{when(key.created_at)}</td>
                <td>{when(key.last_used_at)}</td>
                <td>{key.expires_at ? when(key.expires_at) : "never"}</td>
                <td class="row">
                  {key.status === "active" && (
                    <>
                      <button
                        type="button"
                        class="secondary"
                        aria-label={`Roll ${key.name}`}
                        onClick={() => setConfirm({ key, action: "roll" })}
                      >
                        Roll
                      </button>
                      <button
                        type="button"
                        class="danger"
                        aria-label={`Revoke ${key.name}`}
                        onClick={() => setConfirm({ key, action: "revoke" })}
                      >
                        Revoke
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      {confirm && (
        <Confirm
          title={confirm.action === "revoke"
            ? `Revoke "${confirm.key.name}"?`
            : `Roll "${confirm.key.name}"?`}
          confirmLabel={confirm.action === "revoke" ? "Revoke the key" : "Roll the key"}
          onCancel={() => setConfirm(null)}
          onConfirm={() => void act.run(confirm.key, confirm.action)}
        >
          {confirm.action === "revoke"
            ? <p>Requests with this key are refused from the next one on. This cannot be undone.</p>
            : (
              <label>
                The old key keeps working for
                <select
                  value={grace}
                  onChange={(e) => setGrace(Number(e.currentTarget.value))}
                >
                  {GRACE.map(([s, label]) => <option value={s} key={s}>{label}</option>)}
                </select>
              </label>
            )}
        </Confirm>
      )}
    </>
  );
}

function CreateKey({ account, onCreated }: {
  account: Account | null;
  onCreated: (k: components["schemas"]["CreatedApiKey"]) => Promise<void>;
}) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["read"]);
  const [expiry, setExpiry] = useState<"90d" | "1y" | "never">("90d");
  const [allowlist, setAllowlist] = useState("");
  const create = useAction(async () => {
    const ips = allowlist.split(/[\s,]+/).filter((s) => s !== "");
    const created = await unwrap(api.POST("/api/keys", {
      body: {
        name: name.trim(),
        mode: mode.value,
        scopes,
        expires_in: expiry,
        ...(ips.length > 0 ? { ip_allowlist: ips } : {}),
      },
    }));
    // Only a success clears the form: nothing typed is lost by a failed request.
    setName("");
    setAllowlist("");
    await onCreated(created);
  });
  return (
    <ActionForm
      class="card"
      aria-labelledby="create-key-title"
      onSubmit={() => void create.run()}
    >
      <h2 id="create-key-title">Create a {mode.value} key</h2>
      <Field label="Name" name="name" required maxLength={100} value={name} onValue={setName} />
      <Checkboxes
        legend="Scopes"
        name="scopes"
        options={SCOPES}
        chosen={scopes}
        onChosen={setScopes}
      />
      <label>
        Expires
        <select
          name="expires_in"
          value={expiry}
          onChange={(e) => setExpiry(e.currentTarget.value as typeof expiry)}
        >
          <option value="90d">in 90 days</option>
          <option value="1y">in a year</option>
          <option value="never">never</option>
        </select>
      </label>
      {allowsIpAllowlist(account)
        ? (
          <label>
            IP allowlist (CIDR ranges, one per line; empty: anywhere)
            <textarea
              name="ip_allowlist"
              rows={2}
              value={allowlist}
              onInput={(e) => setAllowlist(e.currentTarget.value)}
            />
          </label>
        )
        : (
          <p class="muted">
            IP allowlists come with the Enterprise tier
            {account ? `; this account is on ${tierLabel(account.tier)}.` : "."}
          </p>
        )}
      <button type="submit" disabled={create.busy}>Create key</button>
      <ErrorNote error={create.error} />
    </ActionForm>
  );
}
