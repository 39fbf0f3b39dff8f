/**
 * The OAuth consent page (`/oauth/consent?authorization_id=…`, where Supabase Auth sends a user
 * whom a third-party app asks for access). Signs the user in if needed (on this page, so the
 * authorization id stays), reads the authorization with supabase-js: when the user already
 * consented Supabase answers only where to go back, and the page goes there at once; otherwise
 * it shows the app (name, logo, website, developer, from `/api/grants/apps/{client_id}`) and the
 * API scopes it asks for, which the user may narrow (writing or deleting vaults comes with
 * reading them). Approve records the grant (`POST /api/grants`), then approves with Supabase
 * Auth and follows its redirect; Deny denies and follows its redirect (`access_denied`).
 */
import { useEffect, useState } from "preact/hooks";
import type { OAuthAuthorizationDetails } from "@supabase/supabase-js";
import { session, supabase } from "../auth.ts";
import { api, ApiError, unwrap } from "../api/client.ts";
import type { components } from "../api/schema.gen.ts";
import { ActionForm, ErrorNote, useAction } from "../ui/parts.tsx";
import { AppIdentity } from "../ui/AppLogo.tsx";
import { SignIn } from "./SignIn.tsx";

type ConsentApp = components["schemas"]["ConsentApp"];
type AppScope = components["schemas"]["AppScope"];

/** What each API scope lets an app do, as the user reads it. */
export const SCOPE_TEXT: Record<AppScope, string> = {
  "vaults:read": "Read your vaults",
  "vaults:write": "Create and change your vaults",
  "vaults:delete": "Delete your vaults",
  "profile:read": "See your profile: your user id, email address and when you joined",
};
const NEEDS_READ: readonly AppScope[] = ["vaults:write", "vaults:delete"];

/**
 * The scopes chosen after `scope` is turned on or off, in the app's order: writing or deleting
 * brings reading along, and giving up reading gives up writing and deleting (the database's
 * rule: what the user sees granted is exactly what a token can do).
 */
export function toggleScope(
  asked: readonly AppScope[],
  chosen: readonly AppScope[],
  scope: AppScope,
  on: boolean,
): AppScope[] {
  const next = new Set(chosen);
  if (on) {
    next.add(scope);
    if (NEEDS_READ.includes(scope)) next.add("vaults:read");
  } else {
    next.delete(scope);
    if (scope === "vaults:read") { for (const s of NEEDS_READ) next.delete(s); }
  }
  return asked.filter((s) => next.has(s));
}

/** Throws supabase-js's error, if any, as the page shows errors. */
function authError(error: { message: string } | null): void {
  if (error !== null) throw new Error(error.message);
}

export function Consent() {
  const id = new URLSearchParams(location.search).get("authorization_id");
  useEffect(() => {
    document.title = "Authorize an app · Torvus console";
  });
  if (id === null || id === "") {
    return (
      <main id="main" class="consent">
        <h1>Authorize an app</h1>
        <ErrorNote
          error={new Error("This link has no authorization id: start again from the app")}
        />
      </main>
    );
  }
  if (session.value === null) {
    return (
      <main id="main">
        <p class="consent banner">
          An app asks for access to your Torvus account: sign in to review it.
        </p>
        <SignIn />
      </main>
    );
  }
  return <ConsentForm id={id} />;
}

/** The authorization as Supabase Auth has it, and the app as the API has it (null: unknown). */
interface Request {
  details: OAuthAuthorizationDetails;
  app: ConsentApp | null;
}

function ConsentForm({ id }: { id: string }) {
  const [request, setRequest] = useState<Request | null>(null);
  const [chosen, setChosen] = useState<AppScope[]>([]);
  const [leaving, setLeaving] = useState<string | null>(null);
  /** Leaves the console for the app: its redirect URI, with a code or an error. */
  const leave = (note: string, url: string) => {
    setLeaving(note);
    location.assign(url);
  };

  const load = useAction(async () => {
    const { data, error } = await supabase.auth.oauth.getAuthorizationDetails(id);
    authError(error);
    if (data === null) throw new Error("Supabase Auth did not answer for the authorization");
    if (!("authorization_id" in data)) {
      // Consented before to these scopes: Supabase Auth has issued the code already.
      leave("Already authorized: taking you back to the app…", data.redirect_url);
      return;
    }
    let app: ConsentApp | null = null;
    try {
      const path = { client_id: data.client.id };
      app = await unwrap(api.GET("/api/grants/apps/{client_id}", { params: { path } }));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    setRequest({ details: data, app });
    setChosen(app?.scopes ?? []);
  });
  useEffect(() => void load.run(), [id]);

  const approve = useAction(async (app: ConsentApp) => {
    await unwrap(api.POST("/api/grants", { body: { client_id: app.client_id, scopes: chosen } }));
    const { data, error } = await supabase.auth.oauth.approveAuthorization(id, {
      skipBrowserRedirect: true,
    });
    authError(error);
    leave("Authorized: taking you back to the app…", data!.redirect_url);
  });
  const deny = useAction(async () => {
    const { data, error } = await supabase.auth.oauth.denyAuthorization(id, {
      skipBrowserRedirect: true,
    });
    authError(error);
    leave("Denied: taking you back to the app…", data!.redirect_url);
  });

  const app = request?.app ?? null;
  const name = app?.name ?? request?.details.client.name ?? "An app";
  const busy = approve.busy || deny.busy || leaving !== null;
  const denyButton = (
    <button
      type="button"
      class="secondary"
      disabled={busy}
      onClick={() => void deny.run()}
    >
      Deny
    </button>
  );
  return (
    <main id="main" class="consent">
      <h1>Authorize {name}</h1>
      {leaving && <p role="status">{leaving}</p>}
      <ErrorNote error={load.error ?? approve.error ?? deny.error} />
      {request === null && leaving === null && load.error === null && <p>Loading…</p>}
      {request !== null && (
        <AppIdentity name={name} logo={app?.logo_uri} website={app?.website} card>
          {app && <div class="muted">Developer: {app.owner.email ?? "not given"}</div>}
        </AppIdentity>
      )}
      {request !== null && app === null && (
        <>
          <ErrorNote
            error={new Error(
              "This app is not registered with the Torvus API, so it cannot be given access: " +
                "deny the request",
            )}
          />
          <div class="row">{denyButton}</div>
        </>
      )}
      {request !== null && app !== null && (
        <ActionForm onSubmit={() => void approve.run(app)}>
          <p>
            {name} asks for access to your Torvus account{" "}
            <strong>{request.details.user.email}</strong>. Choose what it may do:
          </p>
          <fieldset class="scopes">
            <legend>Allow {name} to</legend>
            {app.scopes.map((scope) => (
              <label key={scope}>
                <input
                  type="checkbox"
                  name="scopes"
                  value={scope}
                  checked={chosen.includes(scope)}
                  onChange={(e) =>
                    setChosen(toggleScope(app.scopes, chosen, scope, e.currentTarget.checked))}
                />
                <span>
                  {SCOPE_TEXT[scope]} <code>{scope}</code>
                </span>
              </label>
            ))}
          </fieldset>
          {app.scopes.some((s) => NEEDS_READ.includes(s)) && (
            <p class="muted">Changing or deleting vaults comes with reading them.</p>
          )}
          <p class="muted">
            You will be sent back to{" "}
            <code>{new URL(request.details.redirect_uri).origin}</code>. You can revoke its access
            at any time under Authorized apps.
          </p>
          {chosen.length === 0 && <p role="status">Choose at least one, or deny the request.</p>}
          <div class="row">
            <button type="submit" disabled={busy || chosen.length === 0}>Approve</button>
            {denyButton}
          </div>
        </ActionForm>
      )}
    </main>
  );
}
