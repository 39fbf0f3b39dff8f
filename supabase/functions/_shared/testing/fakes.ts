/**
 * Fakes for unit tests beside the modules: a clock, a key store, a key-state epoch, an
 * in-memory rate limiter, a local signing key with its verifier, and {@link fakeServices},
 * which assembles them (and records what would have gone to the request log and the error
 * reporter) so a function's handler can be called in-process with no database, Redis or
 * network. The end-to-end suites (tests/) run the same code against the real stack.
 *
 * Never imported by a function: this folder is not deployed with any of them.
 *
 * @module
 */
import * as jose from "jose";
import { parseConfig } from "../config.ts";
import type { Services } from "../services.ts";
import { requestEvents } from "../events.ts";
import { createKeyAuthenticator, type KeyEpoch, type StoredKey } from "../auth/api_key.ts";
import { createJwtVerifier } from "../auth/jwt.ts";
import { generateApiKey, hashApiKey } from "../auth/key_format.ts";
import { shardOf } from "../auth/epoch.ts";
import { createGrantAuthenticator } from "../auth/app_grant.ts";
import type { GrantEpoch } from "../auth/grant_epoch.ts";
import type { AppAccess } from "../auth/principal.ts";
import type { CatalogueFixtures } from "./hostile.ts";
import type { Decision, RateLimiter, Window } from "../ratelimit/limiter.ts";
import type { AuditRecord } from "../audit.ts";
import type { ErrorContext } from "../observability/reporter.ts";
import { addressPolicy } from "../ip.ts";
import { createLogger, createRequestLineSampler } from "../log.ts";
import type { Sql } from "../db/client.ts";
import type { Redis } from "@upstash/redis";

/** A clock tests move by hand. */
export interface FakeClock {
  now: () => number;
  advance(ms: number): void;
}

/** A clock starting at `start` (epoch ms). */
export function fakeClock(start = Date.UTC(2026, 0, 1, 12)): FakeClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** A key store over a map of key -> stored key, counting lookups. */
export function fakeKeyStore(): {
  add(key: string, stored: StoredKey): void;
  findByHash(hash: Uint8Array): Promise<StoredKey | null>;
  readonly lookups: number;
  /** Make lookups fail, as a database outage does. */
  failing: Error | undefined;
} {
  const byHash = new Map<string, StoredKey>();
  const hex = (h: Uint8Array) => Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
  let lookups = 0;
  const store = {
    failing: undefined as Error | undefined,
    add(key: string, stored: StoredKey) {
      byHash.set(hex(hashApiKey(key)), stored);
    },
    findByHash(hash: Uint8Array) {
      lookups++;
      if (store.failing) return Promise.reject(store.failing);
      return Promise.resolve(byHash.get(hex(hash)) ?? null);
    },
    get lookups() {
      return lookups;
    },
  };
  return store;
}

/** A key-state epoch in memory, sharded as the Redis one is. */
export function fakeEpoch(): KeyEpoch & {
  bump(shards?: readonly number[]): Promise<void>;
  read(keys: readonly string[]): Promise<unknown[]>;
  failing: boolean;
} {
  let global = 0;
  const counters = new Map<number, number>();
  const epoch = {
    failing: false,
    keysOf: (hash: Uint8Array) => ["epoch", `epoch:${shardOf(hash)}`],
    versionOf: (values: readonly unknown[]) => `${values[0] ?? 0}.${values[1] ?? 0}`,
    /** The values of its keys, as Redis would answer them (rejects while failing). */
    read: (keys: readonly string[]): Promise<unknown[]> =>
      epoch.failing
        ? Promise.reject(new Error("redis down"))
        : Promise.resolve(keys.map((k) =>
          k === "epoch" ? global : counters.get(Number(k.slice("epoch:".length))) ?? null
        )),
    current: (hash: Uint8Array) =>
      epoch.read(epoch.keysOf(hash)).then((values) => epoch.versionOf(values)),
    bump: (shards?: readonly number[]) => {
      if (shards === undefined) global++;
      for (const shard of new Set(shards)) counters.set(shard, (counters.get(shard) ?? 0) + 1);
      return Promise.resolve();
    },
  };
  return epoch;
}

/**
 * A rate limiter in memory with fixed windows (the real one slides; what the pipeline does with
 * a decision is the same). `degraded` makes every decision degraded, as an unreachable Redis does.
 */
export function fakeLimiter(
  now: () => number,
  read: (keys: readonly string[]) => Promise<unknown[]> = (keys) =>
    Promise.resolve(keys.map(() => null)),
): RateLimiter & {
  counts: Map<string, number>;
  degraded: boolean;
  refunds: number;
} {
  const counts = new Map<string, number>();
  const seconds = (w: Window) => {
    const [n, unit] = w.duration.split(" ");
    return Number(n) * ({ s: 1, m: 60, h: 3600, d: 86400 }[unit as "s"] ?? 1);
  };
  const limiter = {
    counts,
    degraded: false,
    refunds: 0,
    async check(
      scope: string,
      identifier: string,
      windows: readonly Window[],
      reads: readonly string[] = [],
    ): Promise<Decision> {
      const decision = await limiter.decide(scope, identifier, windows);
      if (reads.length === 0 || decision.degraded) return decision;
      try {
        return { ...decision, reads: await read(reads) };
      } catch {
        return decision;
      }
    },
    decide(scope: string, identifier: string, windows: readonly Window[]): Promise<Decision> {
      const policies = windows.map((w) => ({ name: w.name, limit: w.limit, seconds: seconds(w) }));
      if (limiter.degraded) {
        const w = policies[0]!;
        return Promise.resolve({
          allowed: true,
          limit: w.limit,
          remaining: w.limit,
          reset: now() + w.seconds * 1000,
          window: w.name,
          policies,
          degraded: true,
        });
      }
      const states = policies.map((p) => {
        const start = Math.floor(now() / (p.seconds * 1000)) * p.seconds * 1000;
        const key = `${scope}:${identifier}:${p.name}:${start}`;
        const used = counts.get(key) ?? 0;
        return { p, key, used, reset: start + p.seconds * 1000 };
      });
      const allowed = states.every((s) => s.used < s.p.limit);
      if (allowed) { for (const s of states) counts.set(s.key, s.used + 1); }
      const tightest = states.reduce((a, b) =>
        (allowed ? b.p.limit - b.used - 1 < a.p.limit - a.used - 1 : b.used >= b.p.limit) ? b : a
      );
      return Promise.resolve({
        allowed,
        limit: tightest.p.limit,
        remaining: Math.max(0, tightest.p.limit - tightest.used - (allowed ? 1 : 0)),
        reset: tightest.reset,
        window: tightest.p.name,
        policies,
        degraded: false,
      });
    },
    refund() {
      limiter.refunds++;
    },
  };
  return limiter;
}

/** An ES256 signing key and the Supabase-shaped tokens it signs. */
export async function localSigner(issuer = "https://project.supabase.co/auth/v1") {
  const { privateKey, publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: "test-key", alg: "ES256" };
  const keys = jose.createLocalJWKSet({ keys: [jwk] });
  return {
    issuer,
    keys,
    privateKey,
    publicKey,
    publicJwk: jwk,
    kid: "test-key",
    /** A token for `sub`, valid `ttl` seconds from `now` (negative: expired). */
    token(
      sub: string,
      now: number,
      claims: Record<string, unknown> = {},
      ttl = 3600,
    ): Promise<string> {
      const iat = Math.floor(now / 1000);
      return new jose.SignJWT({ role: "authenticated", email: "user@example.com", ...claims })
        .setProtectedHeader({ alg: "ES256", kid: "test-key", typ: "JWT" })
        .setSubject(sub)
        .setIssuer(issuer)
        .setAudience("authenticated")
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttl)
        .sign(privateKey);
    },
  };
}

/** What a fake isolate recorded instead of writing it. */
export interface Recorded {
  audit: AuditRecord[];
  reports: Array<{ error: unknown; context: ErrorContext }>;
  background: Array<Promise<unknown>>;
  /** Dispatcher kicks, and the keys whose rate limit raised `rate_limit.exceeded`. */
  webhooks: { kicks: number; limited: Array<{ keyId: string; window: string }> };
}

const unreachable = (what: string) =>
  new Proxy({}, {
    get() {
      throw new Error(`${what} is not available in a unit test`);
    },
    apply() {
      throw new Error(`${what} is not available in a unit test`);
    },
  });

/**
 * An isolate's services built from fakes: no database (a handler that queries one fails), no
 * Redis. Every part can be replaced through `overrides`.
 */
export async function fakeServices(
  options: {
    clock?: FakeClock;
    env?: Record<string, string>;
    overrides?: Partial<Services>;
  } = {},
): Promise<{
  services: Services;
  clock: FakeClock;
  store: ReturnType<typeof fakeKeyStore>;
  /** Active grants of apps, by `<user id>\n<client id>`. */
  grants: Map<string, AppAccess>;
  epoch: ReturnType<typeof fakeEpoch>;
  limiter: ReturnType<typeof fakeLimiter>;
  signer: Awaited<ReturnType<typeof localSigner>>;
  recorded: Recorded;
}> {
  const clock = options.clock ?? fakeClock();
  const config = parseConfig({
    SUPABASE_URL: "https://project.supabase.co",
    SUPABASE_DB_URL: "postgresql://postgres@127.0.0.1:1/unit?sslmode=disable",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
    UPSTASH_REDIS_REST_TOKEN: "unit-test-token-unit-test-token",
    TORVUS_LOG_LEVEL: "error",
    ...options.env,
  });
  const store = fakeKeyStore();
  const grants = new Map<string, AppAccess>();
  const epoch = fakeEpoch();
  const limiter = fakeLimiter(clock.now, epoch.read);
  const signer = await localSigner(config.jwt.issuer);
  const log = createLogger({}, config.logLevel);
  const recorded: Recorded = {
    audit: [],
    reports: [],
    background: [],
    webhooks: { kicks: 0, limited: [] },
  };
  const base: Omit<Services, "events"> & Partial<Services> = {
    config,
    now: clock.now,
    log,
    sql: unreachable("the database") as Sql,
    redis: unreachable("Redis") as Redis,
    redisStats: { calls: 0, commands: 0, unsure: 0 },
    jwt: createJwtVerifier({
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      jwks: signer.keys,
      now: clock.now,
    }),
    keys: createKeyAuthenticator({
      store,
      acceptedModes: config.keyModes,
      epoch,
      now: clock.now,
    }),
    keyEpoch: epoch,
    // Apps' grants by "<user id>\n<client id>"; no epoch, so nothing is cached.
    grants: createGrantAuthenticator({
      store: { find: (user, client) => Promise.resolve(grants.get(`${user}\n${client}`) ?? null) },
      now: clock.now,
    }),
    grantEpoch: unreachable("the grant epoch") as GrantEpoch,
    limiter,
    addresses: addressPolicy(config.clientAddress),
    requestLines: createRequestLineSampler(config.logRequestsPer10s, log, clock.now),
    audit: {
      record: (entry) => void recorded.audit.push(entry),
      flush: () => Promise.resolve(),
      close: () => Promise.resolve(),
      pending: 0,
    },
    reporter: {
      capture: (error, context) => void recorded.reports.push({ error, context }),
      flush: () => Promise.resolve(true),
    },
    background: (work) => void recorded.background.push(work),
    webhooks: {
      kick: () => void recorded.webhooks.kicks++,
      rateLimited: (p, d) =>
        void recorded.webhooks.limited.push({ keyId: p.keyId, window: d.window }),
      dispatcher: { kick: () => void recorded.webhooks.kicks++, running: undefined },
    },
    ...options.overrides,
  };
  const services: Services = { ...base, events: base.events ?? requestEvents(base) };
  return { services, clock, store, grants, epoch, limiter, signer, recorded };
}

/** A stored key with sensible defaults, for {@link fakeKeyStore}. */
export function storedKey(overrides: Partial<StoredKey> = {}): StoredKey {
  return {
    id: "01JBG7XKQM9F3Y8W2Z5N4P1R6T",
    userId: "7d9f3c2e-1b4a-4c5d-9e8f-0a1b2c3d4e5f",
    name: "unit key",
    mode: "test",
    status: "active",
    scopes: ["read"],
    expiresAt: null,
    ipAllowlist: null,
    tierId: "01JBG7XKQM9F3Y8W2Z5N4P1R6A",
    tierName: "free",
    perMinute: 20,
    perDay: 2000,
    ...overrides,
  };
}

/**
 * The hostile catalogue's fixtures (testing/hostile.ts) over fake services: the fake verifier's
 * signing key, an attacker's keys, and API keys in every state in the fake key store.
 */
export async function catalogueFixtures(
  f: Awaited<ReturnType<typeof fakeServices>>,
): Promise<CatalogueFixtures> {
  const attacker = await jose.generateKeyPair("ES256", { extractable: true });
  const rsa = await jose.generateKeyPair("RS256");
  const user = { userId: crypto.randomUUID(), email: "user@example.com" };
  const key = (mode: "live" | "test", overrides: Partial<StoredKey> = {}) => {
    const { key } = generateApiKey(mode);
    f.store.add(
      key,
      storedKey({
        id: `01JBG7XKQM9F3Y8W2Z5N4P1R${String(Math.floor(Math.random() * 90) + 10)}`,
        userId: user.userId,
        mode,
        scopes: ["read", "write", "delete"],
        perMinute: 1000,
        perDay: 100_000,
        ...overrides,
      }),
    );
    return { key };
  };
  return {
    issuer: f.signer.issuer,
    now: f.clock.now,
    user,
    other: { userId: crypto.randomUUID() },
    signing: {
      privateKey: f.signer.privateKey,
      kid: f.signer.kid,
      publicJwk: f.signer.publicJwk,
    },
    attacker: {
      privateKey: attacker.privateKey,
      publicJwk: await jose.exportJWK(attacker.publicKey),
    },
    rsa: { privateKey: rsa.privateKey },
    publicPem: await jose.exportSPKI(f.signer.publicKey),
    keys: {
      live: await key("live"),
      test: await key("test"),
      revoked: await key("live", { status: "revoked" }),
      suspended: await key("live", { status: "suspended" }),
      expiredStatus: await key("test", { status: "expired" }),
      pastExpiry: await key("live", { expiresAt: new Date(f.clock.now() - 60_000) }),
      ipRestricted: await key("live", { ipAllowlist: ["203.0.113.0/24"] }),
    },
  };
}
