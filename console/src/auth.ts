/**
 * Sign-in with Supabase Auth through supabase-js, the session kept in memory only (the seed:
 * "store tokens in memory when possible", "never store tokens in localStorage"): a reload signs
 * the user out, and no token is ever in localStorage, sessionStorage, a URL or a log. The one
 * thing kept in sessionStorage is the PKCE code verifier of a magic link in flight, which must
 * outlive the navigation to the link and back; supabase-js removes it on the exchange, and it is
 * worthless without the one-time code that only the email holds.
 */
import { signal } from "@preact/signals";
import { createClient, type Session, type SupportedStorage } from "@supabase/supabase-js";
import { config } from "./config.ts";

const memory = new Map<string, string>();
const isVerifier = (key: string) => key.endsWith("-code-verifier");

/** supabase-js storage: memory, except the PKCE code verifier (see above). */
const storage: SupportedStorage = {
  getItem: (key) => (isVerifier(key) ? sessionStorage.getItem(key) : memory.get(key) ?? null),
  setItem: (key, value) => {
    if (isVerifier(key)) sessionStorage.setItem(key, value);
    else memory.set(key, value);
  },
  removeItem: (key) => {
    if (isVerifier(key)) sessionStorage.removeItem(key);
    memory.delete(key);
  },
};

/** The Supabase client (Auth only is used). */
export const supabase = createClient(config.supabaseUrl, config.publishableKey, {
  auth: {
    storage,
    persistSession: true,
    autoRefreshToken: true,
    detectSessionInUrl: true,
    flowType: "pkce",
  },
});

/** The current session; null when signed out. */
export const session = signal<Session | null>(null);
/** Set when a session ended on its own (expired, revoked): the sign-in form says so. */
export const sessionEnded = signal(false);
/** True once supabase-js has looked at the URL (a magic link's code) and its storage. */
export const authReady = signal(false);

supabase.auth.onAuthStateChange((event, next) => {
  if (event === "SIGNED_OUT" && session.value !== null && !signingOut) sessionEnded.value = true;
  session.value = next;
  if (next !== null) sessionEnded.value = false;
});

let signingOut = false;

/** Signs out everywhere this session is (Supabase Auth revokes its refresh tokens). */
export async function signOut(): Promise<void> {
  signingOut = true;
  try {
    await supabase.auth.signOut({ scope: "local" });
  } finally {
    signingOut = false;
    session.value = null;
    memory.clear();
  }
}

/** Marks the session as ended (the API refused it even after a refresh). */
export function endSession(): void {
  memory.clear();
  session.value = null;
  sessionEnded.value = true;
}

/** Resolves once the initial session (maybe from a magic link's `?code=`) is known. */
export async function initAuth(): Promise<void> {
  const { data } = await supabase.auth.getSession();
  session.value = data.session;
  // The code of a magic link is used up; keep it out of the address bar and history.
  const url = new URL(location.href);
  if (url.searchParams.has("code") || url.searchParams.has("error_code")) {
    const error = url.searchParams.get("error_description");
    url.searchParams.delete("code");
    url.searchParams.delete("error");
    url.searchParams.delete("error_code");
    url.searchParams.delete("error_description");
    history.replaceState(history.state, "", url.pathname + url.search);
    if (error !== null) linkError.value = error;
  }
  authReady.value = true;
}

/** The error a magic link came back with (expired, used), shown on the sign-in page. */
export const linkError = signal<string | null>(null);
