/**
 * Several sliding windows of one subject in one Redis command: a Lua script of our own that checks
 * every window and, only if all allow, takes a token in each, atomically; and reads, in the same
 * command, any keys the caller names (an API key's state epoch).
 *
 * Why not @upstash/ratelimit per window: one `EVALSHA` per window, plus a refund when one window
 * denied after another allowed, plus the epoch read: three or four Upstash commands a request,
 * each billed, against a database capped at 10,000 commands a second. Here: one.
 *
 * The arithmetic and the keys are the library's sliding window (2.2.0, `slidingWindowLimitScript`):
 * a window's count is its current bucket plus the previous bucket weighted by the part of it still
 * inside the window (`floor((1 - (now % window) / window) * previous)`), buckets are
 * `<prefix>:<identifier>:<floor(now / window)>`, expiring `2 × window + 1 s` after their first
 * token. So counts and headers are the same for users, and a deploy over a running system keeps
 * counting where the library left off.
 *
 * KEYS: the current and previous bucket of each window, in order, then the keys to read.
 * ARGV: now (ms), the number of windows, then each window's limit and length (ms), then the rate
 * (1 takes a token; -1 gives one back, unchecked).
 * Answer: the first denying window's number (0: all allowed), each window's tokens left after the
 * request (≤ 0 where it denies), then the values read.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";

/** The script's source (its SHA-1 is computed once, at first use). */
export const WINDOWS_SCRIPT = `
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local rate = tonumber(ARGV[3 + 2 * n])
local used = {}
local denied = 0
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  local current = tonumber(redis.call("GET", KEYS[2 * i - 1]) or "0")
  local previous = tonumber(redis.call("GET", KEYS[2 * i]) or "0")
  used[i] = current + math.floor((1 - (now % window) / window) * previous)
  if rate > 0 and denied == 0 and used[i] >= limit then denied = i end
end
local answer = { denied }
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  if denied == 0 then
    local window = tonumber(ARGV[2 + 2 * i])
    local value = redis.call("INCRBY", KEYS[2 * i - 1], rate)
    if value == rate then redis.call("PEXPIRE", KEYS[2 * i - 1], window * 2 + 1000) end
    used[i] = used[i] + rate
  end
  answer[1 + i] = limit - used[i]
end
for j = 2 * n + 1, #KEYS do
  answer[#answer + 1] = redis.call("GET", KEYS[j])
end
return answer
`;

/** One window as the script sees it. */
export interface ScriptWindow {
  /** The window's key prefix; buckets are `<prefix>:<identifier>:<bucket>`. */
  prefix: string;
  limit: number;
  ms: number;
  /** The window's own subject (an app's ceiling across its users), else the run's identifier. */
  identifier?: string | undefined;
}

/** What the script answered. */
export interface ScriptAnswer {
  /** Index of the first window that denied, or -1. */
  denied: number;
  /** Tokens left in each window after the request (≤ 0 where it denied). */
  remaining: number[];
  /** The values of the keys read, in order (null for a missing key). */
  reads: unknown[];
}

let sha: Promise<string> | undefined;

/** The script's SHA-1, as `EVALSHA` names it. */
export function scriptSha(): Promise<string> {
  sha ??= crypto.subtle.digest("SHA-1", new TextEncoder().encode(WINDOWS_SCRIPT)).then((d) =>
    [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("")
  );
  return sha;
}

/** The KEYS and ARGV of one run. */
export function scriptInput(
  identifier: string,
  windows: readonly ScriptWindow[],
  now: number,
  rate: 1 | -1,
  reads: readonly string[],
): { keys: string[]; args: number[] } {
  const keys: string[] = [];
  const args: number[] = [now, windows.length];
  for (const w of windows) {
    const bucket = Math.floor(now / w.ms);
    const id = w.identifier ?? identifier;
    keys.push(`${w.prefix}:${id}:${bucket}`, `${w.prefix}:${id}:${bucket - 1}`);
    args.push(w.limit, w.ms);
  }
  args.push(rate);
  return { keys: [...keys, ...reads], args };
}

/**
 * Runs the script: `EVALSHA`, and `EVAL` once if Redis does not know it yet (`NOSCRIPT`, after a
 * restart or on a new database).
 */
export async function runWindows(
  redis: Redis,
  identifier: string,
  windows: readonly ScriptWindow[],
  now: number,
  rate: 1 | -1,
  reads: readonly string[] = [],
): Promise<ScriptAnswer> {
  const { keys, args } = scriptInput(identifier, windows, now, rate, reads);
  let answer: unknown;
  try {
    answer = await redis.evalsha(await scriptSha(), keys, args);
  } catch (error) {
    if (!String(error).includes("NOSCRIPT")) throw error;
    answer = await redis.eval(WINDOWS_SCRIPT, keys, args);
  }
  if (!Array.isArray(answer) || answer.length !== 1 + windows.length + reads.length) {
    throw new Error("the rate-limit script answered with the wrong shape");
  }
  return {
    denied: Number(answer[0]) - 1,
    remaining: answer.slice(1, 1 + windows.length).map(Number),
    reads: answer.slice(1 + windows.length),
  };
}
