/**
 * Where a webhook goes: the checks a target URL passes when an endpoint is saved, and the
 * resolution of its host when a delivery is made.
 *
 * Saving checks what the URL itself says (scheme, credentials, literal addresses, localhost
 * names). Names are resolved at delivery time only, every time: DNS can change between saving
 * and sending (and between two sends), so only the addresses found right before connecting are
 * judged, and the connection is then made to exactly such an address (see http.ts), never to a
 * name that could resolve again to something else.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { isLocalhostName, refusedAddress } from "./address.ts";

/** What delivery allows. */
export interface TargetPolicy {
  allowLoopback: boolean;
}

/**
 * Why `raw` cannot be an endpoint of `mode`, or undefined when it can: http(s) only, https for
 * live endpoints, no credentials or fragment, and no literal address or localhost name that
 * delivery would refuse.
 */
export function refusedUrl(raw: string, mode: "live" | "test", policy: TargetPolicy) {
  const url = URL.parse(raw);
  if (url === null) return "must be an absolute URL";
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http(s) URL";
  if (mode === "live" && url.protocol !== "https:") return "must use https for a live endpoint";
  if (url.username !== "" || url.password !== "") return "must not contain credentials";
  if (url.hash !== "") return "must not have a fragment";
  const host = hostOf(url);
  if (host === "") return "must name a host";
  if (ipaddr.isValid(host)) {
    const refused = refusedAddress(host, policy.allowLoopback);
    if (refused) return `cannot be delivered to ${refused}`;
  } else if (isLocalhostName(host) && !policy.allowLoopback) {
    return `cannot be delivered to ${host}, a loopback name`;
  }
  return undefined;
}

/** The host of a URL without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/** Options of {@link resolveHost}. */
export interface ResolveOptions {
  /** The DNS server to ask (the system's resolver when unset). */
  nameServer?: { ipAddr: string; port: number } | undefined;
  signal?: AbortSignal;
}

/** A host that does not resolve. */
export class ResolveError extends Error {
  override name = "ResolveError";
}

/**
 * The addresses of a host: itself for an address, loopback for localhost names (never asked of
 * DNS), else its A and AAAA records.
 */
export async function resolveHost(host: string, options: ResolveOptions = {}): Promise<string[]> {
  if (ipaddr.isValid(host)) return [host];
  if (isLocalhostName(host)) return ["127.0.0.1", "::1"];
  const dns: Deno.ResolveDnsOptions = {};
  if (options.nameServer) dns.nameServer = options.nameServer;
  if (options.signal) dns.signal = options.signal;
  const lookups = await Promise.allSettled([
    Deno.resolveDns(host, "A", dns),
    Deno.resolveDns(host, "AAAA", dns),
  ]);
  options.signal?.throwIfAborted();
  const addresses = lookups.flatMap((r) => r.status === "fulfilled" ? r.value : []);
  if (addresses.length === 0) throw new ResolveError(`${host} does not resolve`);
  return addresses;
}
