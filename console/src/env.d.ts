/** Build-time settings (vite.config.ts `define`). */
declare const __SUPABASE_URL__: string;
declare const __PUBLISHABLE_KEY__: string;
declare const __API_URL__: string;
declare const __LOGO_ORIGINS__: readonly string[];
