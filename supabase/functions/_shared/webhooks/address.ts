/**
 * Which addresses a webhook may be delivered to: public unicast only. Private, loopback,
 * link-local (where cloud metadata services answer, 169.254.169.254 and friends), carrier-grade
 * NAT, multicast, reserved and documentation ranges are refused, and so is every IPv6 address
 * outside global unicast (2000::/3) or embedding an IPv4 one (mapped addresses are judged as
 * the IPv4 address they are; NAT64, 6to4 and Teredo are refused). Loopback is allowed only when
 * the configuration says so (local stacks, whose tests receive deliveries on 127.0.0.1).
 *
 * @module
 */
import ipaddr from "ipaddr.js";

const DESCRIPTIONS: Record<string, string> = {
  private: "a private address",
  uniqueLocal: "a private address (unique local)",
  loopback: "a loopback address",
  linkLocal: "a link-local address (cloud metadata services answer there)",
  carrierGradeNat: "a shared (carrier-grade NAT) address",
  unspecified: "the unspecified address",
  broadcast: "a broadcast address",
  multicast: "a multicast address",
};

/**
 * Why `address` (an IPv4 or IPv6 literal, brackets allowed) may not be delivered to, as
 * `<address>, <what it is>`, or undefined when it may.
 */
export function refusedAddress(address: string, allowLoopback: boolean): string | undefined {
  const text = address.replace(/^\[(.*)\]$/, "$1");
  if (!ipaddr.isValid(text)) return `${address}, not an IP address`;
  const parsed = ipaddr.process(text);
  const range = parsed.range();
  if (range === "loopback" && allowLoopback) return undefined;
  if (range === "unicast") {
    // ipaddr.js calls unicast whatever no special range claims; only global unicast is public.
    if (parsed.kind() === "ipv6" && ((parsed as ipaddr.IPv6).parts[0]! & 0xe000) !== 0x2000) {
      return `${parsed}, a reserved address`;
    }
    return undefined;
  }
  return `${parsed}, ${DESCRIPTIONS[range] ?? `a reserved address (${range})`}`;
}

/** Whether a host name always means this machine (RFC 6761: localhost and *.localhost). */
export function isLocalhostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
}
