/**
 * Structured JSON logging: one line per event, bound to a request id.
 *
 * Every line passes through {@link redact} before it is written, a last line of defence so that
 * an API key, a bearer token or a key hash can never reach the logs, even through an error
 * message that quoted one.
 *
 * @module
 */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // API keys of either mode, whatever follows the prefix (an already redacted one stays as is).
  [/sk_(live|test)_(?!\[redacted\])[A-Za-z0-9_-]*/g, "sk_$1_[redacted]"],
  // Webhook signing secrets.
  [/whsec_(?!\[redacted\])[A-Za-z0-9+/=]*/g, "whsec_[redacted]"],
  // Compact JWS/JWT: three base64url segments, the first starting with '{"' encoded...
  [/eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*)?/g, "[redacted-jwt]"],
  // ...or any three long base64url segments, whatever their header encodes to.
  // Anchored at the start of a run: the same matches, in linear time instead of quadratic.
  [
    /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g,
    "[redacted-jwt]",
  ],
  // SHA-256 digests in base64 or base64url.
  [/(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=/g, "[redacted-hash]"],
  [/(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g, "[redacted-hash]"],
  // Bearer credentials of any shape.
  [/(bearer\s+)[^\s"',]+/gi, "$1[redacted]"],
  // SHA-256 digests in hex (key hashes) and their \x-escaped bytea form.
  [/\\?\\x[0-9a-f]{64}/gi, "[redacted-hash]"],
  [/\b[0-9a-f]{64}\b/gi, "[redacted-hash]"],
];

const MARKERS = /sk_(?:live|test)_|whsec_|eyJ|bearer/i;

/**
 * True for every text some pattern above would change: it holds a key or secret prefix, a JWT header or
 * "bearer", a run of 40 base64/hex characters, or two long base64url runs each followed by a
 * dot. One linear scan: most log lines hold none, and skip the patterns, whose bounded
 * repetitions cost V8 ~20 µs on a typical line (the request line is written per request).
 */
function mayHoldSecret(text: string): boolean {
  if (MARKERS.test(text)) return true;
  let run = 0; // current run of [A-Za-z0-9+/_-]
  let segment = 0; // current run of [A-Za-z0-9_-]
  let dotted = 0; // consecutive segments of 10 or more, each ended by a dot
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    const url = alnum || c === 95 || c === 45; // _ -
    run = url || c === 43 || c === 47 ? run + 1 : 0; // + /
    if (run >= 40) return true;
    if (url) {
      segment++;
      continue;
    }
    dotted = c === 46 && segment >= 10 ? dotted + 1 : 0; // .
    if (dotted >= 2) return true;
    segment = 0;
  }
  return false;
}

/**
 * Removes anything shaped like an API key, a webhook secret, a JWT, a bearer credential or a key
 * hash.
 */
export function redact(text: string): string {
  return mayHoldSecret(text) ? applyPatterns(text) : text;
}

/** Every pattern over the whole text, without the pre-check (tests compare the two). */
export function applyPatterns(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Where log lines go; tests swap it to capture output. */
export type LogSink = (line: string, level: LogLevel) => void;

let sink: LogSink = (line, level) => {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
};

/** Replaces where every logger writes (tests) and returns the previous sink. */
export function setLogSink(next: LogSink): LogSink {
  const previous = sink;
  sink = next;
  return previous;
}

/** A logger with fields bound to every line it writes. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      type: error.name,
      message: error.message,
      ...(typeof code === "string" ? { code } : {}),
      stack: error.stack,
    };
  }
  return { type: typeof error, message: String(error) };
}

/**
 * Creates a logger writing lines of `level` and above; `err` fields holding errors are expanded
 * to type, message and stack. Its children share its level.
 */
export function createLogger(
  bound: Record<string, unknown> = {},
  level: LogLevel = "info",
): Logger {
  const threshold = LEVELS[level];
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < threshold) return;
    const entry: Record<string, unknown> = { level, time: new Date().toISOString(), msg, ...bound };
    if (fields) {
      for (const [k, v] of Object.entries(fields)) entry[k] = k === "err" ? describeError(v) : v;
    }
    let line: string;
    try {
      line = JSON.stringify(entry);
    } catch {
      line = JSON.stringify({ level, time: entry.time, msg, unserializable: true });
    }
    sink(redact(line), level);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger({ ...bound, ...fields }, level),
  };
}

/**
 * The logger of code that runs before or outside an isolate's services (start-up, crash
 * guards); everything else logs through `Services.log`, whose level is configured.
 */
export const log: Logger = createLogger();

/** Decides which per-request lines are written; the rest are counted. */
export interface RequestLineSampler {
  /** Whether the line of a request answered with `status` is written. */
  admit(status: number): boolean;
  /** Writes the summary of the current window now (isolate shutdown). */
  flush(): void;
}

/** The window the platform's log quota is counted in (about 100 events per 10 s per function). */
const SAMPLE_WINDOW_MS = 10_000;

/**
 * Keeps request lines within the platform's log quota: Supabase accepts a bounded number of
 * log events per function and drops the excess at random, errors included. Up to `perWindow`
 * request lines are written per 10 s; beyond that they are counted, and one summary line per
 * window says how many were left out, by status. Lines of 5xx answers are always written, and
 * nothing else (warnings, errors) goes through this.
 */
export function createRequestLineSampler(
  perWindow: number,
  logger: Logger,
  now: () => number = Date.now,
): RequestLineSampler {
  let windowStart = now();
  let written = 0;
  let suppressed = 0;
  let byStatus: Record<string, number> = {};
  let timer: ReturnType<typeof setTimeout> | undefined;

  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (suppressed > 0) {
      logger.info("request lines sampled", {
        suppressed,
        by_status: byStatus,
        window_s: SAMPLE_WINDOW_MS / 1000,
        written,
      });
    }
    suppressed = 0;
    byStatus = {};
  };

  return {
    admit(status) {
      const t = now();
      if (t - windowStart >= SAMPLE_WINDOW_MS) {
        flush();
        windowStart = t;
        written = 0;
      }
      if (status >= 500 || written < perWindow) {
        written++;
        return true;
      }
      suppressed++;
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (timer === undefined) {
        timer = setTimeout(flush, Math.max(0, windowStart + SAMPLE_WINDOW_MS - t));
        if (typeof Deno !== "undefined") Deno.unrefTimer(timer as unknown as number);
      }
      return false;
    },
    flush,
  };
}

/**
 * Calls `report` at most once per `intervalMs`, telling it how many calls it skipped: an outage
 * seen by every request must not write one warning per request.
 */
export function throttled(
  report: (error: unknown, suppressed: number) => void,
  now: () => number,
  intervalMs = 5000,
): (error: unknown) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (error) => {
    const t = now();
    if (t - last < intervalMs) {
      suppressed++;
      return;
    }
    last = t;
    report(error, suppressed);
    suppressed = 0;
  };
}
