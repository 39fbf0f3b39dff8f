/**
 * The Upstash Redis client of an isolate, over a requester that joins commands across requests.
 *
 * `@upstash/redis` sends each command as its own REST call unless auto-pipelining catches other
 * commands issued in the same tick, and requests arrive in different ticks: at 50 concurrent
 * requests that is one HTTP round trip, with its fetch machinery, per command. The requester
 * below keeps at most one REST call in flight: commands issued while it is out wait and leave
 * together, as one `/pipeline` call, the moment it returns. Nothing waits on a timer: with nothing
 * in flight a command leaves at the end of the current job (so the commands one request issues
 * together, such as a key's two rate-limit windows and its key-state read, still share a call),
 * and under load each call carries whatever accumulated during the previous one.
 *
 * Each command keeps its own answer: the pipeline's per-command `{ result } | { error }` goes back
 * to the command that asked (a `NOSCRIPT` reply still makes @upstash/ratelimit load its script),
 * and a failed call (network, HTTP status, timeout) fails every command it carried. No command
 * waits longer than `timeoutMs` from the moment it was issued: each call is cut off when the
 * earliest deadline of its commands passes (one timer per call, not one per command), so a hung
 * connection never holds the commands queued behind it either. Retries are left to the callers:
 * a slow or absent Redis must cost a request one bounded wait.
 *
 * A read (GET, MGET) identical to one still waiting in the queue shares that one's answer: both
 * were issued before the call that carries them leaves, so the shared answer is as fresh as two
 * would be (a flood of one key's requests reads its key-state epoch once per call, not once per
 * request, though each request's rate-limit scripts stand between those reads). A read already in
 * flight is never shared (it may have left before a change), nor one queued before a command that
 * may write what it reads (an isolate that bumps an epoch and then reads it sees its own bump): a
 * command naming one of the queued reads' keys among its arguments, or any command not known to
 * name every key it touches there.
 *
 * Calls go over one kept-alive HTTP/1.1 connection (http/http1.ts), not `fetch`: on Deno 2.1 a
 * `fetch` costs about 180 µs of CPU and a call on a kept-alive socket about 55 µs, and with at
 * most one batch in flight one connection carries them all (an explicit pipeline waits its turn on
 * it). The connection opens apart from any call's deadline (see KeepAliveClient); a call that
 * fails closes it and the next one starts opening at once.
 *
 * Explicit pipelines and transactions (`redis.pipeline()`, `redis.multi()`) go out as they are.
 * Responses are plain JSON (no `Upstash-Encoding: base64`): every value this API stores is ASCII.
 * The `upstash-sync-token` of each answer is sent with the next call (read-your-writes on
 * Upstash's replicated databases).
 *
 * @module
 */
import { Redis, type Requester, type UpstashRequest, type UpstashResponse } from "@upstash/redis";
import { KeepAliveClient } from "./http/http1.ts";
import { withTimeout } from "./deadline.ts";

/** What the requester has done, for tests and diagnostics. */
export interface RequesterStats {
  /** REST calls made (single commands, joined pipelines and explicit pipelines). */
  calls: number;
  /** Commands sent in those calls. */
  commands: number;
  /**
   * Calls that carried a command that writes and failed after they were sent: the server may
   * have applied them. They are never sent again (a rate-limit script applied twice would cost
   * the caller a request it never made); their commands fail, and the limiter decides as its
   * fail mode says.
   */
  unsure: number;
}

/** Options of {@link createRedis}. */
export interface RedisOptions {
  url: string;
  token: string;
  /** Bound of each REST call, in ms. */
  timeoutMs: number;
  /**
   * Bound of opening the kept-alive connection (DNS, TCP, TLS), in ms; no call's deadline cuts
   * it short. Default 5,000.
   */
  connectTimeoutMs?: number;
  /**
   * A fetch to make every call with; by default calls go over a kept-alive HTTP/1.1 connection
   * (http/http1.ts), one after the other.
   */
  fetch?: typeof fetch;
}

type Answer = UpstashResponse<unknown>;

interface Waiting {
  command: unknown;
  /** When the command gives up, on `performance.now()`'s clock. */
  deadline: number;
  resolve: (answer: Answer) => void;
  reject: (error: unknown) => void;
}

/** An error of the REST call itself (status, body or timeout), not of a command. */
export class RedisCallError extends Error {
  override name = "RedisCallError";
}

/** The requester: @upstash/redis calls `request` for every command it executes. */
export class BatchingRequester implements Requester {
  readonly readYourWrites = true;
  upstashSyncToken = "";
  readonly stats: RequesterStats = { calls: 0, commands: 0, unsure: 0 };
  readonly #base: string;
  /** The base URL's path, without its trailing slash. */
  readonly #basePath: string;
  readonly #authorization: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  /** The kept-alive connection, unless a fetch was given. */
  readonly #http: KeepAliveClient | undefined;
  #queue: Waiting[] = [];
  /** Reads waiting in {@link #queue}, by command, to share with identical ones. */
  #queuedReads = new Map<string, Promise<Answer>>();
  /** The keys those reads read. */
  #queuedReadKeys = new Set<string>();
  #inFlight = false;
  #scheduled = false;

  constructor(options: RedisOptions) {
    this.#base = options.url.replace(/\/+$/, "");
    this.#basePath = new URL(this.#base).pathname.replace(/\/+$/, "");
    this.#authorization = `Bearer ${options.token}`;
    this.#timeoutMs = options.timeoutMs;
    this.#fetch = options.fetch ?? fetch;
    if (!options.fetch) {
      const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
      // An answer that comes after its call gave up is still read (up to a second deadline), so
      // a round trip near the deadline does not cost the connection; a hung one does.
      const answerTimeoutMs = 2 * options.timeoutMs;
      this.#http = new KeepAliveClient(this.#base, { connectTimeoutMs, answerTimeoutMs });
      // The isolate's start-up: the connection opens while nothing waits for it yet.
      this.#http.warm().catch(() => {});
    }
  }

  /** Queues a single command; sends anything else (explicit pipelines, transactions) at once. */
  request<TResult = unknown>(req: UpstashRequest): Promise<UpstashResponse<TResult>> {
    if ((req.path !== undefined && req.path.length > 0) || req.isStreaming) {
      const commands = Array.isArray(req.body) ? req.body.length : 1;
      return this.#call(req.path ?? [], req.body, commands, this.#timeoutMs)
        .then((answer) => answer as UpstashResponse<TResult>);
    }
    const read = readKey(req.body);
    if (read === undefined && mayWrite(req.body, this.#queuedReadKeys)) this.#forgetReads();
    const shared = read === undefined ? undefined : this.#queuedReads.get(read);
    if (shared) return shared as Promise<UpstashResponse<TResult>>;
    const answer = new Promise<Answer>((resolve, reject) => {
      const deadline = performance.now() + this.#timeoutMs;
      this.#queue.push({ command: req.body, deadline, resolve, reject });
      if (!this.#inFlight && !this.#scheduled) {
        this.#scheduled = true;
        // The end of the current job, not a timer: commands issued together leave together.
        queueMicrotask(() => this.#send());
      }
    });
    if (read !== undefined) {
      this.#queuedReads.set(read, answer);
      for (const key of (req.body as unknown[]).slice(1)) this.#queuedReadKeys.add(String(key));
    }
    return answer as Promise<UpstashResponse<TResult>>;
  }

  #forgetReads(): void {
    this.#queuedReads.clear();
    this.#queuedReadKeys.clear();
  }

  #send(): void {
    this.#scheduled = false;
    if (this.#inFlight || this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#forgetReads();
    this.#inFlight = true;
    const commands = batch.map((w) => w.command);
    // The first command was issued first: its deadline is the batch's.
    const ms = Math.max(1, batch[0]!.deadline - performance.now());
    this.#call(["pipeline"], commands, commands.length, ms).then(
      (answers) => {
        if (!Array.isArray(answers) || answers.length !== batch.length) {
          const error = new RedisCallError("Redis answered a pipeline with the wrong shape");
          for (const w of batch) w.reject(error);
          return;
        }
        batch.forEach((w, i) => w.resolve(answers[i] as Answer));
      },
      (error) => {
        for (const w of batch) w.reject(error);
      },
    ).finally(() => {
      this.#inFlight = false;
      this.#send();
    });
  }

  /**
   * One REST call, given up after `ms`: the fetch is aborted and the call rejects at once,
   * whether or not the aborted fetch ever settles, so nothing queued waits on it.
   */
  #call(path: string[], body: unknown, commands: number, ms: number): Promise<unknown> {
    const abort = new AbortController();
    const exchange = this.#exchange(path, body, commands, abort.signal);
    return withTimeout(exchange, ms, "Redis call", () => {
      const error = new DOMException(
        `Redis call timed out after ${Math.round(ms)} ms`,
        "TimeoutError",
      );
      abort.abort(error);
      return error;
    });
  }

  async #exchange(
    path: string[],
    body: unknown,
    commands: number,
    signal: AbortSignal,
  ): Promise<unknown> {
    this.stats.calls++;
    this.stats.commands += commands;
    const idempotent = readOnly(path, body);
    const headers: Record<string, string> = {
      authorization: this.#authorization,
      "content-type": "application/json",
    };
    if (this.upstashSyncToken !== "") headers["upstash-sync-token"] = this.upstashSyncToken;
    const suffix = path.length === 0 ? "" : `/${path.join("/")}`;
    const json = JSON.stringify(body);
    let status: number;
    let text: string;
    let syncToken: string | null | undefined;
    const http = this.#http;
    // Whether this request reached the connection (not another one queued before it).
    let sent = false;
    try {
      if (http) {
        const target = `${this.#basePath}${suffix}` || "/";
        const answer = await http.post(target, headers, json, signal, {
          idempotent,
          onSent: () => sent = true,
        });
        ({ status, body: text } = answer);
        syncToken = answer.headers.get("upstash-sync-token");
      } else {
        const response = await this.#fetch(`${this.#base}${suffix}`, {
          method: "POST",
          headers,
          body: json,
          signal,
        });
        status = response.status;
        text = await response.text();
        syncToken = response.headers.get("upstash-sync-token");
      }
    } catch (error) {
      // With fetch, whether the request left cannot be told: it counts as sent.
      if (idempotent || (http && !sent)) throw error;
      this.stats.unsure++;
      throw new RedisCallError(
        "a Redis call that writes failed after it was sent; it may have been applied and is " +
          "not sent again",
        { cause: error },
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RedisCallError(`Redis answered HTTP ${status} without JSON`);
    }
    if (status < 200 || status > 299) {
      const error = (parsed as Answer | null)?.error;
      throw new RedisCallError(
        `Redis answered HTTP ${status}${typeof error === "string" ? `: ${error}` : ""}`,
      );
    }
    this.upstashSyncToken = syncToken ?? this.upstashSyncToken;
    return parsed;
  }
}

/** Commands that only read: a call made of nothing else may be sent twice. */
const READ_ONLY = new Set(
  "get mget exists ttl pttl type strlen hget hmget hgetall hlen scard smembers sismember zscore zcard ping"
    .split(" "),
);

/** Whether a call (one command, or a pipeline of them) only reads. */
function readOnly(path: readonly string[], body: unknown): boolean {
  if (path.length > 0 && path[0] !== "pipeline") return false; // a transaction, a stream
  const commands = path.length === 0 ? [body] : body;
  if (!Array.isArray(commands)) return false;
  return commands.every((c) =>
    Array.isArray(c) && typeof c[0] === "string" && READ_ONLY.has(c[0].toLowerCase())
  );
}

/** Commands whose answers identical commands issued at the same time may share. */
const SHAREABLE_READS = new Set(["get", "mget"]);

/**
 * Commands whose every key stands among their arguments (scripts declare theirs, as Upstash and
 * Redis Cluster require): one of them writes a queued read's key only if it names it.
 */
const KEYS_IN_ARGUMENTS = new Set(
  ("eval evalsha eval_ro evalsha_ro get mget set setex psetex getset getdel incr incrby " +
    "incrbyfloat decr decrby del unlink exists expire pexpire expireat pexpireat persist ttl " +
    "pttl hset hget hdel hincrby sadd srem zadd zrem lpush rpush").split(" "),
);

/** Whether a command may write one of `keys` (true for a command of unknown reach). */
function mayWrite(command: unknown, keys: ReadonlySet<string>): boolean {
  if (keys.size === 0) return false;
  if (!Array.isArray(command) || typeof command[0] !== "string") return true;
  if (!KEYS_IN_ARGUMENTS.has(command[0].toLowerCase())) return true;
  for (let i = 1; i < command.length; i++) if (keys.has(String(command[i]))) return true;
  return false;
}

/** The sharing key of a read command (its JSON), or undefined for any other command. */
function readKey(command: unknown): string | undefined {
  if (!Array.isArray(command) || typeof command[0] !== "string") return undefined;
  return SHAREABLE_READS.has(command[0].toLowerCase()) ? JSON.stringify(command) : undefined;
}

/** The isolate's client over a {@link BatchingRequester}. */
export function createRedis(options: RedisOptions): { redis: Redis; requester: BatchingRequester } {
  const requester = new BatchingRequester(options);
  return { redis: new Redis(requester), requester };
}
