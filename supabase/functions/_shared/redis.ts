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
 * Calls go through `fetch` (its pool keeps the connection alive). A kept-alive HTTP/1.1 client
 * of our own (webhooks/http1.ts, which now serves webhooks only) was measured against it in paired
 * runs of `deno task bench` on Deno 2.1 (issue 24): it saved 10 % of the function's CPU per
 * request on `/api/me` (317 against 341 µs, median of 13 pairs), 5 % on `/api/v1/vaults` (497
 * against 518) and 12 % on a valid key (46 against 52), short of the 15 % it needed on the JWT
 * or vault path to stay. Per call, alone: about 40-60 µs of CPU, against 70-90 for `fetch` and
 * 95-120 for `fetch` with a streamed body; at 0.44-0.50 calls a request, about the 20-25 µs
 * measured on those paths.
 *
 * What that client gave on a first deploy far from Redis is kept: {@link BatchingRequester.warm}
 * opens a connection when the isolate boots, bounded by `connectTimeoutMs` alone (one PING, whose
 * connection fetch's pool keeps), and again after a call that got no answer, so no call's
 * deadline abandons the only attempt. A call that may write goes with a streamed body, which
 * fetch cannot send twice. Unlike that client, fetch cannot tell whether a request left: such a
 * call that fails once handed to it counts as `unsure` (never resent), and an answer that comes
 * after its call gave up closes its connection instead of being read to its end.
 *
 * Explicit pipelines and transactions (`redis.pipeline()`, `redis.multi()`) go out as they are.
 * Responses are plain JSON (no `Upstash-Encoding: base64`): every value this API stores is ASCII.
 * The `upstash-sync-token` of each answer is sent with the next call (read-your-writes on
 * Upstash's replicated databases).
 *
 * @module
 */
import { Redis, type Requester, type UpstashRequest, type UpstashResponse } from "@upstash/redis";
import { withTimeout } from "./deadline.ts";

/** What the requester has done, for tests and diagnostics. */
export interface RequesterStats {
  /** REST calls made (single commands, joined pipelines and explicit pipelines). */
  calls: number;
  /** Commands sent in those calls. */
  commands: number;
  /**
   * Calls that carried a command that writes and failed once handed to `fetch` (which cannot
   * tell whether the request left): the server may have applied them. They are never sent again
   * (a rate-limit script applied twice would cost the caller a request it never made); their
   * commands fail, and the limiter decides as its fail mode says.
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
   * Bound of {@link BatchingRequester.warm}, which opens a connection (DNS, TCP, TLS) apart from
   * any call, in ms; no call's deadline cuts it short. Default 5,000.
   */
  connectTimeoutMs?: number;
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
  readonly #authorization: string;
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;
  /** The warm-up under way, if one is. */
  #warming: Promise<void> | undefined;
  #queue: Waiting[] = [];
  /** Reads waiting in {@link #queue}, by command, to share with identical ones. */
  #queuedReads = new Map<string, Promise<Answer>>();
  /** The keys those reads read. */
  #queuedReadKeys = new Set<string>();
  #inFlight = false;
  #scheduled = false;

  constructor(options: RedisOptions) {
    this.#base = options.url.replace(/\/+$/, "");
    this.#authorization = `Bearer ${options.token}`;
    this.#timeoutMs = options.timeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  }

  /**
   * Opens a connection while nothing waits for it (an isolate's start-up, and after a failed
   * call): one PING, bounded by `connectTimeoutMs` alone, whose connection `fetch` then keeps for
   * the calls. Far from Redis, DNS, TCP and TLS take longer than a call may wait, and a
   * connection each call abandons at its deadline would never open. Settles when the PING does;
   * never rejects. Counted as a call of one command (Upstash bills it).
   */
  warm(): Promise<void> {
    this.#warming ??= this.#exchange([], ["ping"], 1, AbortSignal.timeout(this.#connectTimeoutMs))
      .then(() => {}, () => {})
      .finally(() => this.#warming = undefined);
    return this.#warming;
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
   * whether or not the aborted fetch ever settles, so nothing queued waits on it. A call that
   * fails without an answer starts opening a connection for the next ({@link warm}).
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
    }).catch((error) => {
      if (!(error instanceof RedisCallError) || error.cause !== undefined) void this.warm();
      throw error;
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
    let response: Response;
    let text: string;
    const json = JSON.stringify(body);
    try {
      response = await fetch(`${this.#base}${suffix}`, {
        method: "POST",
        headers,
        // A call that may write goes as a stream, which fetch cannot send twice: newer Deno
        // resends a request whose reused connection closed before an answer, though the
        // server may have run it (denoland/deno#35610); Deno 2.1 does not.
        body: idempotent ? json : ReadableStream.from([encoder.encode(json)]),
        signal,
      });
      text = await response.text();
    } catch (error) {
      // Whether the request left cannot be told: one that may write counts as sent.
      if (idempotent) throw error;
      this.stats.unsure++;
      throw new RedisCallError(
        "a Redis call that writes failed after it was sent; it may have been applied and is " +
          "not sent again",
        { cause: error },
      );
    }
    const status = response.status;
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
    this.upstashSyncToken = response.headers.get("upstash-sync-token") ?? this.upstashSyncToken;
    return parsed;
  }
}

const encoder = new TextEncoder();

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
