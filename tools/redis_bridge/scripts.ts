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

import { createHash } from "node:crypto";
import type { RespReply } from "./resp.ts";

/** Shebang flags understood by Upstash but unknown to open-source Redis. */
const UPSTASH_ONLY_FLAGS = new Set(["allow-key-locking"]);

/** Upper bound on remembered mappings; scripts are few, this only guards against abuse. */
const MAX_MAPPINGS = 10_000;

const encoder = new TextEncoder();

/**
 * Lower-case hex SHA-1 of the UTF-8 text, computed like Redis (and the Upstash clients) do.
 * Synchronous (node:crypto), so that rewriting a command never needs a promise.
 */
export function sha1Hex(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
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
    // Clients send lower case; only other spellings pay for the case conversion.
    return this.#map.get(sha) ?? this.#map.get(sha.toLowerCase()) ?? sha;
  }

  /** Strips the script and records the SHA mapping if it changed. */
  prepareScript(script: string): { script: string; originalSha?: string } {
    const stripped = stripUpstashFlags(script);
    if (stripped === script) return { script };
    const originalSha = sha1Hex(script);
    // Re-insert to keep Map insertion order usable as a cheap LRU.
    this.#map.delete(originalSha);
    this.#map.set(originalSha, sha1Hex(stripped));
    if (this.#map.size > MAX_MAPPINGS) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    return { script: stripped, originalSha };
  }

  /**
   * Applies the rewrite rules to EVAL/EVAL_RO, EVALSHA/EVALSHA_RO and SCRIPT LOAD/EXISTS.
   * Rewrites `args` in place (callers pass a fresh array) and returns it. `name` is the
   * upper-cased command name if the caller already has it.
   */
  rewrite(args: string[], name = args[0]?.toUpperCase()): RewrittenCommand {
    switch (name) {
      case "EVAL":
      case "EVAL_RO": {
        if (args[1] !== undefined) args[1] = this.prepareScript(args[1]).script;
        return { args };
      }
      case "EVALSHA":
      case "EVALSHA_RO": {
        if (args[1] !== undefined) args[1] = this.translateSha(args[1]);
        return { args };
      }
      case "SCRIPT": {
        const sub = args[1]?.toUpperCase();
        if (sub === "LOAD" && args[2] !== undefined) {
          const { script, originalSha } = this.prepareScript(args[2]);
          args[2] = script;
          if (originalSha === undefined) return { args };
          // Redis answers with sha1(stripped); the client expects the SHA it computed itself.
          const shaBytes = encoder.encode(originalSha);
          return { args, fixReply: (r) => (r instanceof Uint8Array ? shaBytes : r) };
        }
        if (sub === "EXISTS") {
          for (let i = 2; i < args.length; i++) args[i] = this.translateSha(args[i] ?? "");
        }
        return { args };
      }
      default:
        return { args };
    }
  }
}
