/**
 * Build of the console: static files for any static host, configured at build time with
 *   TORVUS_CONSOLE_SUPABASE_URL      the Supabase project URL (Auth at <url>/auth/v1)
 *   TORVUS_CONSOLE_PUBLISHABLE_KEY   its publishable (anon) key
 *   TORVUS_CONSOLE_API_URL           the Torvus API's base URL
 *   TORVUS_CONSOLE_OUT               the output directory (default dist/)
 * Besides the files it writes `_headers` (Netlify / Cloudflare Pages format, which the local dev
 * server applies too): the Content-Security-Policy, whose connect-src is exactly the API and Auth
 * origins, and the other security headers.
 */
import { defineConfig, type Plugin } from "vite";
import preact from "@preact/preset-vite";
import { resolve } from "node:path";

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} must be set to build the console (see console/README section)`);
  }
  return value;
}

function origin(name: string, value: string): string {
  try {
    return new URL(value).origin;
  } catch {
    throw new Error(`${name} must be an absolute URL, got ${JSON.stringify(value)}`);
  }
}

/** The headers every answer of the console carries. */
export function securityHeaders(supabaseUrl: string, apiUrl: string): Record<string, string> {
  const connect = [...new Set([origin("supabase", supabaseUrl), origin("api", apiUrl)])];
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect.join(" ")}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return {
    "Content-Security-Policy": csp,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
  };
}

function headersFile(headers: Record<string, string>): Plugin {
  return {
    name: "torvus-headers",
    generateBundle() {
      const lines = Object.entries(headers).map(([k, v]) => `  ${k}: ${v}`);
      this.emitFile({
        type: "asset",
        fileName: "_headers",
        source: `/*\n${lines.join("\n")}\n`,
      });
    },
  };
}

export default defineConfig(({ command }) => {
  const build = command === "build";
  const supabaseUrl = build ? required("TORVUS_CONSOLE_SUPABASE_URL") : "http://127.0.0.1:54321";
  const publishableKey = build
    ? required("TORVUS_CONSOLE_PUBLISHABLE_KEY")
    : "sb_publishable_local_stand_in";
  const apiUrl = build ? required("TORVUS_CONSOLE_API_URL") : "http://127.0.0.1:54321";
  return {
    plugins: [preact(), headersFile(securityHeaders(supabaseUrl, apiUrl))],
    define: {
      __SUPABASE_URL__: JSON.stringify(supabaseUrl),
      __PUBLISHABLE_KEY__: JSON.stringify(publishableKey),
      __API_URL__: JSON.stringify(apiUrl),
    },
    build: {
      outDir: resolve(process.env["TORVUS_CONSOLE_OUT"] || "dist"),
      emptyOutDir: true,
      target: "es2022",
      modulePreload: { polyfill: false },
      sourcemap: false,
      reportCompressedSize: false,
    },
  };
});
