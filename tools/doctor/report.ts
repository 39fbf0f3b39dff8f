/**
 * What a doctor check finds and how it is printed: one line per check (`ok`, `FAIL` or `skip`),
 * and for a failure its cause, the fix and any detail (a certificate chain), indented below.
 *
 * Nothing the doctor prints may hold a secret: every line goes through {@link Redactor}, which
 * replaces the values of the secret settings it was given (tokens, the API key, the database
 * password), the password of any URL, and anything the functions' own log redactor recognises
 * (keys, JWTs, bearer credentials).
 *
 * @module
 */
import { redact } from "../../supabase/functions/_shared/log.ts";

/** One check's outcome. */
export type Finding =
  | { status: "ok"; summary: string; details?: string[] }
  | { status: "skip"; summary: string }
  | { status: "fail"; summary: string; cause: string; fix: string; details?: string[] };

/** A check: its name and what runs it. */
export interface Check {
  name: string;
  run: () => Promise<Finding>;
}

/** Shorthands for the outcomes. */
export const ok = (summary: string, details?: string[]): Finding =>
  details === undefined ? { status: "ok", summary } : { status: "ok", summary, details };
export const skip = (summary: string): Finding => ({ status: "skip", summary });
export const fail = (
  summary: string,
  cause: string,
  fix: string,
  details?: string[],
): Finding =>
  details === undefined
    ? { status: "fail", summary, cause, fix }
    : { status: "fail", summary, cause, fix, details };

/** Replaces secrets in text before it is printed. */
export type Redactor = (text: string) => string;

/** Shorter than this, a "secret" is too common a string to replace everywhere (e.g. `postgres`). */
const MIN_SECRET = 6;

/**
 * A redactor for the given secret values: each is replaced by `***` wherever it appears (also
 * percent-encoded, as in a URL); so is the password of any `scheme://user:password@` URL.
 */
export function redactor(secrets: ReadonlyArray<string | undefined>): Redactor {
  const values = [...new Set(secrets.filter((s): s is string => !!s && s.length >= MIN_SECRET))]
    .flatMap((s) => [s, encodeURIComponent(s)])
    // Longest first, so a secret containing another is replaced whole.
    .sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const value of values) out = out.replaceAll(value, "***");
    out = out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, "$1***@");
    return redact(out);
  };
}

/** A database URL fit to print: its password replaced. */
export function safeUrl(url: string, clean: Redactor): string {
  return clean(url.replace(/^(\w+:\/\/[^:/@]*:)[^@]*@/, "$1***@"));
}

const LABELS = { ok: "ok  ", skip: "skip", fail: "FAIL" } as const;

/** The printed lines of one finding. */
export function formatFinding(name: string, finding: Finding, clean: Redactor): string[] {
  const lines = [`${LABELS[finding.status]}  ${name}: ${finding.summary}`];
  if (finding.status === "fail") {
    lines.push(`      cause: ${finding.cause}`, `      fix:   ${finding.fix}`);
  }
  if (finding.status !== "skip") {
    for (const detail of finding.details ?? []) lines.push(`      ${detail}`);
  }
  return lines.map(clean);
}

/** The last line: how many checks passed, failed and were skipped. */
export function formatTotals(findings: readonly Finding[]): string {
  const count = (status: Finding["status"]) => findings.filter((f) => f.status === status).length;
  return `${count("ok")} ok, ${count("fail")} FAIL, ${count("skip")} skipped`;
}

/** Runs a check, bounded by `timeoutMs`; an exception or a timeout is its failure. */
export async function runCheck(check: Check, timeoutMs: number): Promise<Finding> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Finding>((resolve) => {
    timer = setTimeout(
      () =>
        resolve(fail(
          `no answer within ${timeoutMs / 1000} s`,
          "the check did not finish in time (a host that drops packets, or a hung server)",
          "check that this machine reaches the host at all (firewall, DNS), then run again",
        )),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([
      check.run().catch((error) =>
        fail(
          "the check itself failed",
          error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          "report this with the output above",
        )
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
