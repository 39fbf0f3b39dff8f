/**
 * Helpers for suites that sign in through the local Auth stand-in with the real supabase-js
 * client: a client with in-memory storage (as the seed advises for sensitive apps), and the
 * local mailbox.
 *
 * @module
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { BASE_URL } from "../_harness.ts";

/** The key the local stack gives supabase-js (the stand-in does not check it). */
export const LOCAL_PUBLISHABLE_KEY = "sb_publishable_local_stand_in";

/** A storage that keeps everything in this process's memory. */
export function memoryStorage(): {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
} {
  const items = new Map<string, string>();
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
}

/** A supabase-js client of the local stack, in-memory session, no background refresh. */
export function localClient(
  options: { flowType?: "implicit" | "pkce"; headers?: Record<string, string> } = {},
): SupabaseClient {
  return createClient(BASE_URL, LOCAL_PUBLISHABLE_KEY, {
    auth: {
      storage: memoryStorage(),
      persistSession: true,
      autoRefreshToken: false,
      detectSessionInUrl: false,
      flowType: options.flowType ?? "implicit",
    },
    global: { headers: options.headers ?? {} },
  });
}

/** One mail of the local mailbox. */
export interface LocalMail {
  to: string;
  subject: string;
  text: string;
  link: string;
  otp: string;
}

/** The newest mail to `email`, waiting up to 5 s for it. */
export async function latestMail(email: string): Promise<LocalMail> {
  const deadline = Date.now() + 5_000;
  while (true) {
    const url = new URL("/_mailbox/api/messages", BASE_URL);
    url.searchParams.set("to", email);
    const mails = await (await fetch(url)).json() as LocalMail[];
    if (mails[0] !== undefined) return mails[0];
    if (Date.now() > deadline) throw new Error(`no mail to ${email}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
