/**
 * Where the console talks to: fixed at build time (vite.config.ts), so the static files need no
 * runtime configuration and the Content-Security-Policy can name exactly these origins.
 */
export const config = {
  supabaseUrl: __SUPABASE_URL__,
  publishableKey: __PUBLISHABLE_KEY__,
  apiUrl: __API_URL__.replace(/\/+$/, ""),
} as const;
