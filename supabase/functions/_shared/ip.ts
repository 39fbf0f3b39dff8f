/**
 * Client addresses: where a request comes from, and whether an address is in an allowlist.
 *
 * Functions are reachable at the project's own URL around any gateway, so nothing a client
 * sends is believed on its own word: `X-Forwarded-For` and `X-Real-IP` are never read. The
 * gateway proves itself with a shared secret (`X-Torvus-Gateway-Secret`, compared in constant
 * time) and only then is its `X-Torvus-Client-IP` taken as the client's address. A request
 * without the secret is direct: refused when `TORVUS_DIRECT_ACCESS=deny`, otherwise its address
 * comes from `TORVUS_DIRECT_IP_SOURCE` (`none` by default: no address, so no allowlist passes
 * and its anonymous requests share one bucket; `peer` for a runtime whose connection peer is
 * the client; `header:<name>` for a platform that overwrites that header itself).
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import type { ClientAddressConfig } from "./config.ts";

/** The header that carries the gateway's shared secret. */
export const GATEWAY_SECRET_HEADER = "x-torvus-gateway-secret";
/** The header in which the gateway states the client's address. */
export const CLIENT_IP_HEADER = "x-torvus-client-ip";

/** Where a request came from, as far as can be proven. */
export type Origin =
  | { via: "gateway" | "direct"; ip: string | undefined }
  /** A direct request where only the gateway is allowed. */
  | { via: "refused"; ip: undefined };

/** The client-address rules of an isolate, prepared once. */
export interface AddressPolicy {
  origin(headers: Headers, peer: string | undefined): Origin;
}

/**
 * Whether a presented value is `secret`, compared in constant time: every character of the
 * secret is compared, whatever the presented value's length or contents, so the comparison's time
 * depends on the secret's length only (no hash per request: this runs on every request). Always
 * false without a secret.
 */
export function secretMatcher(secret: string | undefined): (presented: string | null) => boolean {
  if (secret === undefined || secret === "") return () => false;
  return (presented) => {
    if (presented === null) return false;
    let diff = presented.length === secret.length ? 0 : 1;
    // Past the presented value's end, charCodeAt is NaN and `| 0` makes it 0.
    for (let i = 0; i < secret.length; i++) {
      diff |= secret.charCodeAt(i) ^ (presented.charCodeAt(i) | 0);
    }
    return diff === 0;
  };
}

/** Prepares the rules of a configuration. */
export function addressPolicy(config: ClientAddressConfig): AddressPolicy {
  const isGateway = secretMatcher(config.gatewaySecret);
  const source = config.directIpSource;
  return {
    origin(headers, peer) {
      if (isGateway(headers.get(GATEWAY_SECRET_HEADER))) {
        const stated = headers.get(CLIENT_IP_HEADER);
        return { via: "gateway", ip: stated === null ? undefined : normalizeIp(stated) };
      }
      if (config.directAccess === "deny") return { via: "refused", ip: undefined };
      const raw = source.kind === "peer"
        ? peer
        : source.kind === "header"
        ? headers.get(source.name) ?? undefined
        : undefined;
      return { via: "direct", ip: raw === undefined ? undefined : normalizeIp(raw) };
    },
  };
}

/**
 * Parses an address, normalising IPv4-mapped IPv6 to IPv4; undefined when it is not one, or is
 * unspecified (0.0.0.0, ::), which is what the hosted runtime reports as every peer.
 */
export function normalizeIp(text: string): string | undefined {
  // Every request parses its client's address: the isolate remembers the last few thousand
  // (only text short enough to be an address, so the memory this takes stays small).
  if (text.length > MAX_IP_TEXT) return parseIp(text);
  const known = parsedIps.get(text);
  if (known !== undefined) return known === "" ? undefined : known;
  const parsed = parseIp(text);
  if (parsedIps.size >= PARSED_IPS_MAX) parsedIps.clear();
  parsedIps.set(text, parsed ?? "");
  return parsed;
}

/** Addresses already parsed ("" for text that is not one); emptied when full. */
const parsedIps = new Map<string, string>();
const PARSED_IPS_MAX = 4096;
/** Longer than any address's text (an IPv6 address with an IPv4 tail and brackets is 47). */
const MAX_IP_TEXT = 64;

function parseIp(text: string): string | undefined {
  const trimmed = text.trim().replace(/^\[(.*)\]$/, "$1");
  if (!ipaddr.isValid(trimmed)) return undefined;
  try {
    const parsed = ipaddr.process(trimmed);
    return parsed.range() === "unspecified" ? undefined : parsed.toString();
  } catch {
    return undefined;
  }
}
