/**
 * IP allowlists of API keys (Enterprise): whether a client's address lies in one of the key's
 * CIDR ranges.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

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
