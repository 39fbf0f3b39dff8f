/**
 * One request's state, the one object the pipeline carries from the request's arrival to the
 * work after its response (the context of Hono's design): where the request came from, what it
 * asked, what admission decided and what it was answered. Handlers receive it as their
 * {@link HandlerContext}; the services receive it, answered, as the `answered` event.
 *
 * What not every request needs (the parsed URL, the request's own logger) is made when first
 * read: most requests need neither.
 *
 * @module
 */
import type { Principal, RefusedKey } from "../auth/principal.ts";
import type { Logger } from "../log.ts";
import type { Decision } from "../ratelimit/limiter.ts";
import type { Services } from "../services.ts";
import type { AnsweredRequest } from "../events.ts";
import type { ErrorCode } from "../errors.ts";
import type { Origin } from "../ip.ts";
import type { HandlerContext } from "./spec.ts";
import { Timing } from "./timing.ts";

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
/** A path whose `URL` parse is itself: no dot segment, escape, backslash or other byte to fix. */
const PLAIN_PATH = /^\/[A-Za-z0-9_\-/]*$/;

/** The path of an absolute URL, as `new URL(url).pathname` reads it, without parsing it all. */
export function pathOf(url: string): string {
  // The path runs from the first "/" after the scheme's "//" to the query or the fragment; an
  // authority with a "?", "#" or "\\" in it, or an unusual path, is left to the URL parser.
  const from = url.indexOf("//") + 2;
  let start = -1;
  let end = url.length;
  for (let i = from; i < url.length; i++) {
    const ch = url.charCodeAt(i);
    if (ch === 63 /* ? */ || ch === 35 /* # */) {
      end = i;
      break;
    }
    if (ch === 92 /* \ */) return new URL(url).pathname;
    if (ch === 47 /* / */ && start === -1) start = i;
  }
  const path = start === -1 ? "" : url.slice(start, end);
  return PLAIN_PATH.test(path) ? path : new URL(url).pathname;
}

/** A request on its way through the pipeline. */
export class RequestState implements HandlerContext, AnsweredRequest {
  readonly requestId: string = crypto.randomUUID();
  readonly timing: Timing;
  readonly method: string;
  /** The path asked, as received. */
  readonly path: string;
  readonly ip: string | undefined;
  readonly via: Origin["via"];
  params: Readonly<Record<string, string>> = NO_PARAMS;
  principal: Principal | undefined = undefined;
  query: unknown = undefined;
  body: unknown = undefined;
  /** The rate-limit decision made for the request, whose headers its answer carries. */
  decision: Decision | undefined = undefined;
  refusedKey: RefusedKey | undefined = undefined;
  /** The catalogued code of an error answer. */
  code: ErrorCode | undefined = undefined;
  /** An unexpected error, for the error reporter. */
  error: unknown = undefined;
  status = 0;
  elapsedMs = 0;
  #url: URL | undefined;
  #log: Logger | undefined;

  constructor(
    readonly services: Services,
    readonly functionName: string,
    readonly req: Request,
    info: Deno.ServeHandlerInfo | undefined,
    readonly started: number = performance.now(),
  ) {
    this.timing = new Timing(started);
    this.method = req.method;
    this.path = pathOf(req.url);
    const peer = info?.remoteAddr?.transport === "tcp" ? info.remoteAddr.hostname : undefined;
    const origin = services.addresses.origin(req.headers, peer);
    this.ip = origin.ip;
    this.via = origin.via;
  }

  get url(): URL {
    return this.#url ??= new URL(this.req.url);
  }

  /** The isolate's logger, bound to the request id. */
  get log(): Logger {
    return this.#log ??= this.services.log.child({ request_id: this.requestId });
  }

  get userAgent(): string | undefined {
    return this.req.headers.get("user-agent") ?? undefined;
  }
}
