/**
 * The console's entry: waits for supabase-js to read the URL (a magic link's code) and then
 * shows the sign-in page, or the page of the path. A session that ends while a page is open
 * brings the sign-in form over the page, which stays mounted, so nothing typed is lost.
 */
import { render } from "preact";
import { lazy, Suspense } from "preact/compat";
import { useEffect, useRef } from "preact/hooks";
import "./styles.css";
import { authReady, initAuth, session, sessionEnded } from "./auth.ts";
import { Layout } from "./ui/Layout.tsx";
import { route, ROUTES } from "./ui/state.ts";
import { SignIn } from "./pages/SignIn.tsx";
import { Keys } from "./pages/Keys.tsx";
import { Account } from "./pages/Account.tsx";
import { Consent } from "./pages/Consent.tsx";

const Usage = lazy(() => import("./pages/Usage.tsx").then((m) => ({ default: m.Usage })));
const Webhooks = lazy(() => import("./pages/Webhooks.tsx").then((m) => ({ default: m.Webhooks })));
const AuthorizedApps = lazy(() =>
  import("./pages/AuthorizedApps.tsx").then((m) => ({ default: m.AuthorizedApps }))
);
/** The OAuth consent page stands alone: a third-party app sent the user here, not the menu. */
const CONSENT_PATH = "/oauth/consent";

function Page() {
  switch (route.value) {
    case "/usage":
      return <Usage />;
    case "/webhooks":
      return <Webhooks />;
    case "/apps":
      return <AuthorizedApps />;
    case "/account":
      return <Account />;
    default:
      return <Keys />;
  }
}

function App() {
  const wasSignedIn = useRef(false);
  const consent = location.pathname === CONSENT_PATH;
  useEffect(() => {
    if (consent) return;
    document.title = session.value === null
      ? "Sign in · Torvus console"
      : `${ROUTES[route.value]} · Torvus console`;
  });
  if (!authReady.value) return <p class="loading">Loading…</p>;
  if (consent) return <Consent />;
  if (session.value !== null) wasSignedIn.current = true;
  if (session.value === null && !(wasSignedIn.current && sessionEnded.value)) {
    wasSignedIn.current = false;
    return (
      <main id="main">
        <SignIn />
      </main>
    );
  }
  return (
    <>
      <div inert={session.value === null}>
        <Layout>
          <Suspense fallback={<p>Loading…</p>}>
            <Page />
          </Suspense>
        </Layout>
      </div>
      {session.value === null && <SignIn overlay />}
    </>
  );
}

void initAuth();
render(<App />, document.getElementById("app")!);
