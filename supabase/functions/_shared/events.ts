/**
 * What the pipeline tells an isolate's services once a request is answered, and how they handle
 * it. The HTTP layer builds responses and nothing else: the request's log line, its error report,
 * its row of the request log and the `rate_limit.exceeded` webhook of a limited key are the
 * services' work, done here when the `answered` event arrives (after the response is built; what
 * writes, writes in the background).
 *
 * @module
 */
import type { KeyPrincipal, Principal, RefusedKey } from "./auth/principal.ts";
import type { LoggedRequest } from "./log_rows.ts";
import type { Logger, RequestLineSampler } from "./log.ts";
import type { ErrorReporter } from "./observability/reporter.ts";
import type { Decision } from "./ratelimit/limiter.ts";

/** A request as it was answered. Never holds a credential. */
export interface AnsweredRequest {
  /** The function that answered. */
  readonly functionName: string;
  readonly requestId: string;
  readonly method: string;
  /** The path asked, as received (the gateway's rewrite, or the function's own). */
  readonly path: string;
  readonly status: number;
  /** The catalogued code of an error answer. */
  readonly code: string | undefined;
  readonly elapsedMs: number;
  readonly ip: string | undefined;
  /** How the request arrived: `gateway`, `direct` or `refused` (around the gateway). */
  readonly via: string;
  readonly userAgent: string | undefined;
  readonly principal: Principal | undefined;
  readonly decision: Decision | undefined;
  readonly refusedKey: RefusedKey | undefined;
  /** An unexpected error, for the error reporter. */
  readonly error: unknown;
}

/** Events the pipeline raises; the services handle them. */
export interface RequestEvents {
  answered(request: AnsweredRequest): void;
}

/**
 * The services that handle the events, as far as the events need them (the request log's sink,
 * audit.ts; webhooks, webhooks/service.ts), read when an event arrives: services are built when
 * first used, and a request that writes nothing builds neither.
 */
export interface EventServices {
  readonly log: Logger;
  readonly requestLines: RequestLineSampler;
  readonly reporter: ErrorReporter;
  readonly audit: { record(entry: LoggedRequest): void };
  readonly webhooks: { rateLimited(principal: KeyPrincipal, decision: Decision): void };
  now(): number;
}

/** The handlers of an isolate's events. */
export function requestEvents(s: EventServices): RequestEvents {
  return {
    answered(r) {
      const p = r.principal;
      const keyId = p?.kind === "api_key" ? p.keyId : r.refusedKey?.keyId;
      const userId = p?.userId ?? r.refusedKey?.userId;
      const mode = p?.mode ?? r.refusedKey?.mode;
      const clientId = (p?.kind === "user" ? p.clientId : undefined) ?? r.refusedKey?.clientId;
      const { status, code } = r;
      // One structured line per request, sampled under load (never a 5xx), never a credential.
      if (s.requestLines.admit(status)) {
        s.log[status >= 500 ? "error" : "info"]("request", {
          request_id: r.requestId,
          function: r.functionName,
          method: r.method,
          path: r.path,
          status,
          code,
          latency_ms: Math.round(r.elapsedMs * 100) / 100,
          ip: r.ip,
          via: r.via,
          key_id: keyId,
          user_id: userId,
          mode,
          client_id: clientId,
        });
      }
      if (r.error !== undefined && code === "INTERNAL_ERROR") {
        s.reporter.capture(r.error, {
          requestId: r.requestId,
          function: r.functionName,
          route: r.path,
          method: r.method,
          keyId,
          userId,
          code: "INTERNAL_ERROR",
          responseTimeMs: r.elapsedMs,
          level: "error",
        });
      }
      // A key refused by its own limit raises `rate_limit.exceeded` (once per window).
      if (code === "RATE_LIMIT_EXCEEDED" && p?.kind === "api_key" && r.decision) {
        s.webhooks.rateLimited(p, r.decision);
      }
      // Requests refused around the gateway cost no write: nobody can fill the table that way.
      if (r.method !== "OPTIONS" && code !== "GATEWAY_REQUIRED" && (p || status >= 400)) {
        s.audit.record({
          requestId: r.requestId,
          keyId,
          userId,
          mode,
          method: r.method,
          path: r.path,
          status,
          code,
          latencyMs: r.elapsedMs,
          ip: r.ip,
          userAgent: r.userAgent,
          clientId,
          grantId: p?.kind === "user" ? p.app?.grantId : undefined,
          at: new Date(s.now()),
        });
      }
    },
  };
}
