/**
 * An {@link ErrorReporter} that sends unexpected errors to Sentry with `@sentry/deno`.
 *
 * The SDK runs as a standalone client with its own scope, never through `Sentry.init`: nothing
 * global is patched (no `Deno.serve` or `fetch` instrumentation, no console breadcrumbs, no
 * global error handlers, no OpenTelemetry tracer), so the request pipeline behaves the same
 * with or without a DSN, and two reporters (tests) cannot interfere. Each report carries what
 * the documentation promises: request id, API key id (never the key), user id, error code,
 * function, route, method, severity and response time.
 *
 * No credential may leave: `sendDefaultPii` is off, request headers and cookies are dropped,
 * and every string of every event and breadcrumb passes through `redact()` (log.ts) in
 * `beforeSend`, so a key or token quoted in an error message is scrubbed before it is sent.
 *
 * @module
 */
import {
  type Breadcrumb,
  createTransport,
  dedupeIntegration,
  DenoClient,
  type Event,
  linkedErrorsIntegration,
  Scope,
} from "@sentry/deno";
import { type BaseTransportOptions, createStackParser, nodeStackLineParser } from "@sentry/core";
import { log, redact } from "../log.ts";
import type { ErrorContext, ErrorReporter } from "./reporter.ts";

/** Options of {@link createSentryReporter}. */
export interface SentryOptions {
  /** The project's DSN, `https://<public key>@<host>/<project id>`. */
  dsn: string;
  environment: string;
  release?: string | undefined;
  /** Share of transactions traced; 0 (the default) sends errors only. */
  tracesSampleRate: number;
  /** Reported as the event's server; defaults to `torvus-api` (no hostname lookup). */
  serverName?: string;
  /** Keeps the upload alive after the response (`EdgeRuntime.waitUntil` in production). */
  background?: (work: Promise<unknown>) => void;
}

/** How long one capture's upload may take before it is given up. */
export const SENTRY_FLUSH_TIMEOUT_MS = 2000;

const MAX_DEPTH = 12;

/** Every string of a JSON-like value passed through `redact()`; depth-bounded. */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redact(value);
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[redact(k)] = redactDeep(v, depth + 1);
  return out;
}

/** The `beforeSend` scrubber: no headers, cookies or client address; every string redacted. */
export function scrubEvent<E extends Event>(event: E): E {
  if (event.request) {
    delete event.request.headers;
    delete event.request.cookies;
  }
  if (event.user) delete event.user.ip_address;
  return redactDeep(event) as E;
}

function scrubBreadcrumb(breadcrumb: Breadcrumb): Breadcrumb {
  return redactDeep(breadcrumb) as Breadcrumb;
}

/** The SDK's fetch transport, without its permission probe; never follows a redirect. */
function fetchTransport(options: BaseTransportOptions) {
  return createTransport(options, async (request) => {
    const response = await fetch(options.url, {
      method: "POST",
      body: request.body as BodyInit,
      ...(options.headers ? { headers: options.headers } : {}),
      redirect: "error",
    });
    await response.body?.cancel();
    return {
      statusCode: response.status,
      headers: {
        "x-sentry-rate-limits": response.headers.get("X-Sentry-Rate-Limits"),
        "retry-after": response.headers.get("Retry-After"),
      },
    };
  });
}

/** Builds the reporter; if the SDK cannot be set up, logs why and reports nothing. */
export function createSentryReporter(options: SentryOptions): ErrorReporter {
  let client: DenoClient;
  try {
    client = new DenoClient({
      dsn: options.dsn,
      environment: options.environment,
      ...(options.release !== undefined ? { release: options.release } : {}),
      tracesSampleRate: options.tracesSampleRate,
      serverName: options.serverName ?? "torvus-api",
      sendDefaultPii: false,
      sendClientReports: false,
      // Only integrations that patch nothing: they work on the event alone.
      integrations: [dedupeIntegration(), linkedErrorsIntegration()],
      transport: fetchTransport,
      stackParser: createStackParser(nodeStackLineParser()),
      beforeSend: scrubEvent,
      beforeSendTransaction: scrubEvent,
      beforeBreadcrumb: scrubBreadcrumb,
    });
    client.init();
  } catch (error) {
    log.warn("error tracking disabled: Sentry could not be set up", { err: error });
    return { capture() {}, flush: () => Promise.resolve(true) };
  }
  const base = new Scope();
  base.setClient(client);

  return {
    capture(error: unknown, context: ErrorContext): void {
      try {
        const scope = base.clone();
        scope.setLevel(context.level);
        scope.setTags({
          request_id: context.requestId,
          function: context.function,
          route: context.route,
          method: context.method,
          code: context.code,
          level: context.level,
          ...(context.keyId !== undefined ? { key_id: context.keyId } : {}),
          ...(context.userId !== undefined ? { user_id: context.userId } : {}),
        });
        scope.setContext("api", {
          response_time_ms: Math.round(context.responseTimeMs * 100) / 100,
          code: context.code,
        });
        scope.captureException(error);
        options.background?.(Promise.resolve(client.flush(SENTRY_FLUSH_TIMEOUT_MS)));
      } catch (failure) {
        // Reporting must never break the request it reports on.
        log.warn("error report not sent", { err: failure });
      }
    },
    flush: (timeoutMs = SENTRY_FLUSH_TIMEOUT_MS) => Promise.resolve(client.flush(timeoutMs)),
  };
}
