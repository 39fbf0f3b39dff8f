/**
 * Sign-in: email and password (or a new account), or an email with a code and a magic link
 * (PKCE: the link comes back here with `?code=`, which supabase-js exchanges). Typed values stay
 * in the form whatever fails.
 */
import { useState } from "preact/hooks";
import { linkError, sessionEnded, supabase } from "../auth.ts";
import { ActionForm, ErrorNote, Field, useAction } from "../ui/parts.tsx";

function authError(error: { message: string; code?: string | undefined } | null): void {
  if (error !== null) {
    throw new Error(error.code ? `${error.message} (${error.code})` : error.message);
  }
}

const TABS = [["password", "Password"], ["email", "Email link or code"]] as const;

export function SignIn({ overlay = false }: { overlay?: boolean }) {
  const [tab, setTab] = useState<"password" | "email">("password");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [sent, setSent] = useState(false);

  const passwordSignIn = useAction(async (create: boolean) => {
    const { error } = create
      ? await supabase.auth.signUp({ email, password })
      : await supabase.auth.signInWithPassword({ email, password });
    authError(error);
  });
  const sendLink = useAction(async () => {
    const { error } = await supabase.auth.signInWithOtp({
      email,
      // The query too: the consent page's authorization id must come back with the link.
      options: { emailRedirectTo: location.origin + location.pathname + location.search },
    });
    authError(error);
    setSent(true);
  });
  const verify = useAction(async () => {
    const { error } = await supabase.auth.verifyOtp({ email, token: code.trim(), type: "email" });
    authError(error);
  });

  return (
    <section class={overlay ? "signin overlay" : "signin"} aria-labelledby="signin-title">
      <div class="card">
        <h1 id="signin-title">Sign in to the Torvus console</h1>
        {sessionEnded.value && (
          <p class="warning" role="alert">
            Your session ended. Sign in again to carry on where you were.
          </p>
        )}
        {linkError.value && <ErrorNote error={new Error(linkError.value)} />}
        <div class="tabs" role="tablist" aria-label="Sign-in method">
          {TABS.map(([id, label]) => (
            <button
              type="button"
              role="tab"
              key={id}
              id={`tab-${id}`}
              aria-selected={tab === id}
              aria-controls={`panel-${id}`}
              onClick={() => setTab(id)}
            >
              {label}
            </button>
          ))}
        </div>
        <Field
          label="Email"
          type="email"
          name="email"
          autoComplete="email"
          required
          value={email}
          onValue={setEmail}
        />
        {tab === "password"
          ? (
            <div id="panel-password" role="tabpanel" aria-labelledby="tab-password">
              <ActionForm onSubmit={() => void passwordSignIn.run(false)}>
                <Field
                  label="Password"
                  type="password"
                  name="password"
                  autoComplete="current-password"
                  required
                  minLength={6}
                  value={password}
                  onValue={setPassword}
                />
                <div class="row">
                  <button type="submit" disabled={passwordSignIn.busy}>Sign in</button>
                  <button
                    type="button"
                    class="secondary"
                    disabled={passwordSignIn.busy}
                    onClick={() => void passwordSignIn.run(true)}
                  >
                    Create an account
                  </button>
                </div>
                <ErrorNote error={passwordSignIn.error} />
              </ActionForm>
            </div>
          )
          : (
            <div id="panel-email" role="tabpanel" aria-labelledby="tab-email">
              <ActionForm onSubmit={() => void sendLink.run()}>
                <button type="submit" disabled={sendLink.busy}>Email me a link and a code</button>
                <ErrorNote error={sendLink.error} />
              </ActionForm>
              {sent && (
                <ActionForm onSubmit={() => void verify.run()}>
                  <p role="status">
                    Sent. Open the link in this browser tab, or enter the 6-digit code.
                  </p>
                  <Field
                    label="Code"
                    name="code"
                    inputMode="numeric"
                    autoComplete="one-time-code"
                    pattern="[0-9]{6}"
                    required
                    value={code}
                    onValue={setCode}
                  />
                  <button type="submit" disabled={verify.busy}>Sign in with the code</button>
                  <ErrorNote error={verify.error} />
                </ActionForm>
              )}
            </div>
          )}
      </div>
    </section>
  );
}
