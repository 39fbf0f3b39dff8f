/**
 * Build of the console: static files for any static host, configured at build time with
 *   TORVUS_CONSOLE_SUPABASE_URL      the Supabase project URL (Auth at <url>/auth/v1)
 *   TORVUS_CONSOLE_PUBLISHABLE_KEY   its publishable (anon) key
 *   TORVUS_CONSOLE_API_URL           the Torvus API's base URL
 *   TORVUS_CONSOLE_OUT               the output directory (default dist/)
 *   TORVUS_CONSOLE_LOGO_ORIGINS      https origins third-party apps' logos may load from
 *                                    (comma-separated; default none: no remote image at all)
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

/**
 * The origins apps' logos may be loaded from: https origins only (the consent page must not
 * pull a plain-http image into an https page), each exactly as `URL.origin` writes it.
 */
export function logoOrigins(value: string | undefined): string[] {
  const origins = (value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  return origins.map((o) => {
    const parsed = origin("TORVUS_CONSOLE_LOGO_ORIGINS", o);
    if (!parsed.startsWith("https://") || parsed !== o.replace(/\/+$/, "")) {
      throw new Error(`TORVUS_CONSOLE_LOGO_ORIGINS takes https origins only, got ${o}`);
    }
    return parsed;
  });
}

/** The headers every answer of the console carries. */
export function securityHeaders(
  supabaseUrl: string,
  apiUrl: string,
  logos: readonly string[] = [],
): Record<string, string> {
  const connect = [...new Set([origin("supabase", supabaseUrl), origin("api", apiUrl)])];
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    ["img-src 'self' data:", ...logos].join(" "),
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
  const logos = logoOrigins(process.env["TORVUS_CONSOLE_LOGO_ORIGINS"]);
  return {
    plugins: [preact(), headersFile(securityHeaders(supabaseUrl, apiUrl, logos))],
    define: {
      __SUPABASE_URL__: JSON.stringify(supabaseUrl),
      __PUBLISHABLE_KEY__: JSON.stringify(publishableKey),
      __API_URL__: JSON.stringify(apiUrl),
      __LOGO_ORIGINS__: JSON.stringify(logos),
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
