/**
 * Client addresses: which one a request comes from, and whether it is in an allowlist.
 *
 * Behind the gateway (Supabase's edge, or the project's API gateway) the peer address is the
 * gateway's, and the client's is the first hop of `X-Forwarded-For`. That header is trusted
 * only when `TORVUS_TRUST_PROXY` says a gateway sets it; otherwise the connection's peer address
 * is used, so a client cannot choose its own rate-limit bucket.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** Parses an address, normalising IPv4-mapped IPv6 to IPv4; undefined when it is not one. */
export function normalizeIp(text: string): string | undefined {
  const trimmed = text.trim().replace(/^\[(.*)\]$/, "$1");
  if (!ipaddr.isValid(trimmed)) return undefined;
  try {
    const parsed = ipaddr.process(trimmed);
    return parsed.toString();
  } catch {
    return undefined;
  }
}

/** The client address of a request, or undefined when none can be determined. */
export function clientIp(
  headers: Headers,
  peer: string | undefined,
  trustProxy: boolean,
): string | undefined {
  if (trustProxy) {
    const forwarded = headers.get("x-forwarded-for");
    const first = forwarded?.split(",")[0];
    if (first !== undefined) {
      const ip = normalizeIp(first);
      if (ip !== undefined) return ip;
    }
  }
  return peer === undefined ? undefined : normalizeIp(peer);
}

/** True when `ip` lies in one of the CIDR ranges (malformed ranges match nothing). */
export function ipInAnyCidr(ip: string, cidrs: readonly string[]): boolean {
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    address = ipaddr.process(ip);
  } catch {
    return false;
  }
  for (const cidr of cidrs) {
    try {
      const [range, bits] = ipaddr.parseCIDR(cidr);
      const candidate = address.kind() === range.kind()
        ? address
        : address.kind() === "ipv4"
        ? (address as ipaddr.IPv4).toIPv4MappedAddress()
        : undefined;
      if (candidate && candidate.match([range, bits] as [typeof candidate, number])) return true;
    } catch {
      continue;
    }
  }
  return false;
}
