/**
 * Authorized apps: the third-party apps the user granted access (`GET /api/grants`): the app,
 * the API scopes granted, when, and the app's last request. Revoke (after a confirmation) revokes
 * the grant with the API, whose tokens the app holds are refused from their next request, then
 * Supabase Auth's grant (supabase-js `auth.oauth.revokeGrant`), so the app's refresh fails too.
 */
import { useEffect, useState } from "preact/hooks";
import { supabase } from "../auth.ts";
import { api, unwrap } from "../api/client.ts";
import type { components } from "../api/schema.gen.ts";
import { Confirm, ErrorNote, Table, useAction, when } from "../ui/parts.tsx";
import { AppIdentity } from "../ui/AppLogo.tsx";
import { SCOPE_TEXT } from "./Consent.tsx";

type Grant = components["schemas"]["Grant"];

export function AuthorizedApps() {
  const [grants, setGrants] = useState<Grant[] | null>(null);
  const [confirm, setConfirm] = useState<Grant | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const load = useAction(async () => {
    const list = await unwrap(api.GET("/api/grants", { params: { query: { limit: 100 } } }));
    setGrants(list.data);
  });
  useEffect(() => void load.run(), []);

  const revoke = useAction(async (grant: Grant) => {
    setConfirm(null);
    setDone(null);
    await unwrap(api.POST("/api/grants/{id}/revoke", { params: { path: { id: grant.id } } }));
    await load.run();
    // Supabase Auth's grant: its sessions end, so the app cannot refresh.
    const { error } = await supabase.auth.oauth.revokeGrant({ clientId: grant.client_id });
    if (error !== null) {
      throw new Error(
        `${grant.app.name} can no longer use its tokens, but Supabase Auth did not end its ` +
          `sessions (${error.message}): revoke again`,
      );
    }
    setDone(`${grant.app.name} no longer has access to your account.`);
  });

  return (
    <>
      <h1>Authorized apps</h1>
      <p>
        Apps you allowed to use your Torvus account. Revoking one stops it at once: its next request
        is refused, and it cannot renew its access.
      </p>
      {done && <p role="status">{done}</p>}
      <ErrorNote error={load.error ?? revoke.error} />
      {grants === null
        ? <p>Loading…</p>
        : grants.length === 0
        ? <p>No app has access to your account.</p>
        : (
          <Table
            caption="Authorized apps"
            columns={["App", "Access", "Granted", "Last used", "Actions"]}
          >
            {grants.map((grant) => (
              <tr key={grant.id}>
                <td>
                  <AppIdentity
                    name={grant.app.name}
                    logo={grant.app.logo_uri}
                    website={grant.app.website}
                    small
                  />
                </td>
                <td>
                  <ul>
                    {grant.scopes.map((s) => (
                      <li key={s}>
                        {SCOPE_TEXT[s]} <code>{s}</code>
                      </li>
                    ))}
                  </ul>
                </td>
                <td>{when(grant.granted_at)}</td>
                <td>{grant.last_used_at ? when(grant.last_used_at) : "never"}</td>
                <td>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke ${grant.app.name}`}
                    disabled={revoke.busy}
                    onClick={() => setConfirm(grant)}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </Table>
        )}
      {confirm && (
        <Confirm
          title={`Revoke the access of ${confirm.app.name}?`}
          confirmLabel="Revoke access"
          onCancel={() => setConfirm(null)}
          onConfirm={() => void revoke.run(confirm)}
        >
          <p>
            Its requests are refused from the next one on. To use it again, you will authorize it
            again.
          </p>
        </Confirm>
      )}
    </>
  );
}
