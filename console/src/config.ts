/**
 * Where the console talks to: fixed at build time (vite.config.ts), so the static files need no
 * runtime configuration and the Content-Security-Policy can name exactly these origins.
 */
export const config = {
  supabaseUrl: __SUPABASE_URL__,
  publishableKey: __PUBLISHABLE_KEY__,
  apiUrl: __API_URL__.replace(/\/+$/, ""),
  /**
   * The https origins apps' logos may be loaded from (`TORVUS_CONSOLE_LOGO_ORIGINS`, also the
   * CSP's img-src); a logo elsewhere is not loaded, the app's initial stands in for it.
   */
  logoOrigins: __LOGO_ORIGINS__,
} as const;
