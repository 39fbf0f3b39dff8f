/**
 * HTTP for the doctor's checks: one bounded GET, its JSON read when there is some, and the causes
 * of the failures every HTTP check meets (nothing listening, DNS, TLS).
 *
 * @module
 */

/** An answer, its body read. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, when it is JSON. */
  json: Record<string, unknown> | undefined;
}

/** GETs `url` with `headers`, bounded by `timeoutMs`; no redirects are followed. */
export async function get(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<Answer> {
  const response = await fetch(url, {
    headers,
    redirect: "manual",
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) json = parsed;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Why a request got no answer, and what to do about it. */
export function unreachable(what: string, url: string, error: unknown): {
  cause: string;
  fix: string;
} {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const host = URL.parse(url)?.host ?? url;
  if (/TimeoutError|timed out/i.test(message)) {
    return {
      cause: `${what} at ${host} did not answer in time (${message})`,
      fix: "check that the host is up and that nothing between here and it drops the traffic",
    };
  }
  if (/dns|lookup|name (or service )?not known|failed to lookup/i.test(message)) {
    return {
      cause: `the host name ${host} does not resolve (${message})`,
      fix: "check the URL's host name",
    };
  }
  if (/refused/i.test(message)) {
    return {
      cause: `nothing listens at ${host}: connection refused`,
      fix: `check the URL's host and port, and that ${what} is running`,
    };
  }
  if (/certificate|tls|ssl|handshake/i.test(message)) {
    return {
      cause: `TLS to ${host} failed (${message})`,
      fix: "the certificate must be valid for the host name and chain to a public root",
    };
  }
  return { cause: `${what} at ${host} could not be reached (${message})`, fix: "check the URL" };
}

/** A header's value as a finite number, or undefined. */
export function numericHeader(headers: Headers, name: string): number | undefined {
  const raw = headers.get(name);
  if (raw === null || raw.trim() === "") return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

/** The API's error `code` of an answer, if it has one. */
export function codeOf(answer: Answer): string | undefined {
  const code = answer.json?.code;
  return typeof code === "string" ? code : undefined;
}

/** A base URL as paths are appended to it: no trailing slash, query or fragment. */
export function baseOf(input: string): string {
  const url = new URL(input);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`the base URL must be http(s): ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new Error("the base URL must not hold credentials");
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
}
