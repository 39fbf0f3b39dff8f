/**
 * The API-key format: `sk_live_` or `sk_test_` followed by 48 base64url characters that encode
 * 32 random bytes (256 bits) and a 4-byte checksum.
 *
 * The checksum is the first four bytes of SHA-256(prefix + secret). It lets the API answer a
 * mistyped, truncated or corrupted key with `INVALID_API_KEY` before any database or Redis
 * call, so floods of guessed keys cost no I/O. It is not a secret and proves nothing about
 * validity: only the stored SHA-256 of the whole key does.
 *
 * @module
 */
import { base64url } from "jose";
import { sha256 } from "@noble/hashes/sha2";

/** The two key modes: live keys reach production data, test keys only test data. */
export type KeyMode = "live" | "test";

/** The prefix of each mode, as the documentation states it. */
export const KEY_PREFIX: Readonly<Record<KeyMode, string>> = {
  live: "sk_live_",
  test: "sk_test_",
};

const SECRET_BYTES = 32;
const CHECKSUM_BYTES = 4;
/** Length of the base64url body: (32 + 4) bytes encode to exactly 48 characters, no padding. */
export const KEY_BODY_LENGTH = 48;
/** Characters of a key shown in listings so a user can tell keys apart (prefix + 4). */
export const KEY_DISPLAY_LENGTH = 12;

const BODY_PATTERN = /^[A-Za-z0-9_-]{48}$/;
const encoder = new TextEncoder();

/** The outcome of parsing a presented key, before any lookup. */
export type ParsedKey =
  | { ok: true; mode: KeyMode }
  | { ok: false; reason: "format" | "invalid" };

/** A freshly generated key: the secret shown once, and what gets stored. */
export interface GeneratedKey {
  /** The full key, to be shown to its owner once and never stored. */
  key: string;
  mode: KeyMode;
  /** The first characters, safe to store and display. */
  start: string;
  /** SHA-256 of the full key: the only form the database keeps. */
  hash: Uint8Array;
}

// SHA-256 is computed in JavaScript (@noble/hashes), synchronously: for the few dozen bytes of a
// key that is a third of the cost of `node:crypto` (its Buffer machinery) and avoids an async
// WebCrypto call on every request. Both are constant-time in the input's contents.
function checksum(prefix: string, secret: Uint8Array): Uint8Array {
  const input = new Uint8Array(prefix.length + secret.length);
  input.set(encoder.encode(prefix), 0);
  input.set(secret, prefix.length);
  return sha256(input).subarray(0, CHECKSUM_BYTES);
}

/** SHA-256 of a full key, the lookup value stored in `api_keys.key_hash`. */
export function hashApiKey(key: string): Uint8Array {
  return sha256(encoder.encode(key));
}

/** Generates a new key of the given mode from 256 bits of CSPRNG output. */
export function generateApiKey(mode: KeyMode): GeneratedKey {
  const prefix = KEY_PREFIX[mode];
  const secret = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  const body = new Uint8Array(SECRET_BYTES + CHECKSUM_BYTES);
  body.set(secret, 0);
  body.set(checksum(prefix, secret), SECRET_BYTES);
  const key = prefix + base64url.encode(body);
  return { key, mode, start: key.slice(0, KEY_DISPLAY_LENGTH), hash: hashApiKey(key) };
}

/**
 * Checks a presented key without I/O: `format` when the prefix is not a documented one
 * (`INVALID_API_KEY_FORMAT`), `invalid` when the body has the wrong shape or checksum
 * (`INVALID_API_KEY`).
 */
export function parseApiKey(raw: string): ParsedKey {
  const mode: KeyMode | undefined = raw.startsWith(KEY_PREFIX.live)
    ? "live"
    : raw.startsWith(KEY_PREFIX.test)
    ? "test"
    : undefined;
  if (mode === undefined) return { ok: false, reason: "format" };
  const prefix = KEY_PREFIX[mode];
  const bodyText = raw.slice(prefix.length);
  if (!BODY_PATTERN.test(bodyText)) return { ok: false, reason: "invalid" };
  const body = base64url.decode(bodyText);
  const secret = body.subarray(0, SECRET_BYTES);
  const expected = checksum(prefix, secret);
  for (let i = 0; i < CHECKSUM_BYTES; i++) {
    if (body[SECRET_BYTES + i] !== expected[i]) return { ok: false, reason: "invalid" };
  }
  return { ok: true, mode };
}
