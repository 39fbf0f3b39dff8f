/**
 * Lua script shebang rewriting for scripts written against Upstash.
 *
 * `@upstash/ratelimit` ships scripts starting with `#!lua flags=allow-key-locking`. That flag
 * is Upstash-specific; Redis 7.0 rejects the whole script ("Unexpected flag in script
 * shebang"). We drop such flags before the script reaches Redis. Clients address scripts by
 * the SHA-1 of the text *they* hold, so we remember sha1(original) -> sha1(stripped) and
 * translate EVALSHA / SCRIPT EXISTS, and make SCRIPT LOAD answer with sha1(original).
 *
 * @module
 */

import type { RespReply } from "./resp.ts";

/** Shebang flags understood by Upstash but unknown to open-source Redis. */
const UPSTASH_ONLY_FLAGS = new Set(["allow-key-locking"]);

/** Upper bound on remembered mappings; scripts are few, this only guards against abuse. */
const MAX_MAPPINGS = 10_000;

const encoder = new TextEncoder();

/** Lower-case hex SHA-1 of the UTF-8 text, computed like Redis (and the Upstash clients) do. */
export async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Removes Upstash-only flags from a `#!lua ...` first line (dropping the shebang entirely,
 * but not its line break, when no flag remains). Returns the input unchanged (same
 * string) when there is nothing to strip, so callers can detect "no rewrite needed" cheaply.
 */
export function stripUpstashFlags(script: string): string {
  if (!script.startsWith("#!")) return script;
  const nl = script.indexOf("\n");
  const line = nl === -1 ? script : script.slice(0, nl);
  const tokens = line.trim().split(/\s+/);
  let changed = false;
  const kept = tokens.flatMap((token) => {
    if (!token.startsWith("flags=")) return [token];
    const flags = token.slice("flags=".length).split(",").filter((f) => f !== "");
    const remaining = flags.filter((f) => !UPSTASH_ONLY_FLAGS.has(f));
    if (remaining.length === flags.length) return [token];
    changed = true;
    return remaining.length > 0 ? [`flags=${remaining.join(",")}`] : [];
  });
  if (!changed) return script;
  // A bare `#!lua` would make Redis treat the script as "may write" (rejected by EVAL_RO /
  // EVALSHA_RO, denied under OOM). Without any flag left, fall back to a shebang-less script,
  // which keeps Redis's dynamic pre-7.0 checks. The emptied line keeps line numbers intact.
  const head = kept.length === 1 && kept[0] === "#!lua" ? "" : kept.join(" ");
  return head + (nl === -1 ? "" : script.slice(nl));
}

/** A command after script rewriting, plus an optional fix-up for its reply. */
export interface RewrittenCommand {
  args: string[];
  fixReply?: (reply: RespReply) => RespReply;
}

/** Remembers which stripped script each client-side SHA refers to. One per bridge instance. */
export class ScriptRegistry {
  readonly #map = new Map<string, string>();

  /** The SHA Redis knows for a client-side SHA (unknown SHAs pass through, so Redis says
   * NOSCRIPT and the client falls back to EVAL, which re-creates the mapping). */
  translateSha(sha: string): string {
    return this.#map.get(sha.toLowerCase()) ?? sha;
  }

  /** Strips the script and records the SHA mapping if it changed. */
  async prepareScript(script: string): Promise<{ script: string; originalSha?: string }> {
    const stripped = stripUpstashFlags(script);
    if (stripped === script) return { script };
    const [originalSha, strippedSha] = await Promise.all([sha1Hex(script), sha1Hex(stripped)]);
    // Re-insert to keep Map insertion order usable as a cheap LRU.
    this.#map.delete(originalSha);
    this.#map.set(originalSha, strippedSha);
    if (this.#map.size > MAX_MAPPINGS) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    return { script: stripped, originalSha };
  }

  /** Applies the rewrite rules to EVAL/EVAL_RO, EVALSHA/EVALSHA_RO and SCRIPT LOAD/EXISTS. */
  async rewrite(args: string[]): Promise<RewrittenCommand> {
    const name = args[0]?.toUpperCase();
    const out = [...args];
    switch (name) {
      case "EVAL":
      case "EVAL_RO": {
        if (out[1] !== undefined) out[1] = (await this.prepareScript(out[1])).script;
        return { args: out };
      }
      case "EVALSHA":
      case "EVALSHA_RO": {
        if (out[1] !== undefined) out[1] = this.translateSha(out[1]);
        return { args: out };
      }
      case "SCRIPT": {
        const sub = out[1]?.toUpperCase();
        if (sub === "LOAD" && out[2] !== undefined) {
          const { script, originalSha } = await this.prepareScript(out[2]);
          out[2] = script;
          if (originalSha === undefined) return { args: out };
          // Redis answers with sha1(stripped); the client expects the SHA it computed itself.
          const shaBytes = encoder.encode(originalSha);
          return { args: out, fixReply: (r) => (r instanceof Uint8Array ? shaBytes : r) };
        }
        if (sub === "EXISTS") {
          for (let i = 2; i < out.length; i++) out[i] = this.translateSha(out[i] ?? "");
        }
        return { args: out };
      }
      default:
        return { args: out };
    }
  }
}
