/**
 * Standard Webhooks v1 signatures (the scheme Svix and the Standard Webhooks specification use):
 * a delivery carries `webhook-id` (the event's id, the same on every retry, so receivers can
 * deduplicate), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
 * `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the secret's bytes. During
 * a rotation's grace period the old secret signs too, space-separated, and a receiver accepts
 * the delivery when any signature matches a secret it knows.
 *
 * Secrets are `whsec_` followed by the base64 of 32 random bytes.
 *
 * @module
 */

/** Every secret starts with this. */
export const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function fromBase64(text: string): ArrayBuffer {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer;
}

/** A new endpoint secret: `whsec_` and 32 random bytes in base64. */
export function generateSecret(): string {
  return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** The key a secret stands for (its base64 part decoded). */
function keyBytes(secret: string): ArrayBuffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error("a webhook secret starts with whsec_");
  return fromBase64(secret.slice(SECRET_PREFIX.length));
}

/** `v1,<signature>` of one message with one secret. */
export async function sign(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    keyBytes(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    new TextEncoder().encode(`${id}.${timestamp}.${body}`),
  );
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

/** The three headers of a delivery, signed with every given secret (current first). */
export async function signedHeaders(
  secrets: readonly string[],
  id: string,
  timestamp: number,
  body: string,
): Promise<Record<string, string>> {
  const signatures = await Promise.all(secrets.map((s) => sign(s, id, timestamp, body)));
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatures.join(" "),
  };
}
