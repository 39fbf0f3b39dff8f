/**
 * The doctor's checks of Redis and of Supabase Auth's JWKS, straight from this machine with the
 * functions' settings and client code:
 *
 * - Redis: PING over the functions' own client (`_shared/redis.ts`, Upstash's REST API through
 *   `fetch`, whose pool keeps the connection): the first round trip (with connecting and TLS) and the median of
 *   the next ones. Where the functions run, their own round trip is the region check's;
 * - JWKS: the key set the functions verify tokens with is reachable and holds keys they can use
 *   (ES256 or RS256), listed by `kid`.
 *
 * @module
 */
import * as jose from "jose";
import { createRedis } from "../../supabase/functions/_shared/redis.ts";
import { type Check, fail, type Finding, ok, skip } from "./report.ts";
import { codeOf, get, unreachable } from "./http.ts";

/** What these checks read from the environment. */
export interface ServiceSettings {
  redisUrl: string | undefined;
  redisToken: string | undefined;
  /** The JWKS URL the functions use (TORVUS_/SUPABASE_JWKS_URL, else from SUPABASE_URL). */
  jwksUrl: string | undefined;
  /** Whether a legacy HS256 secret is configured (TORVUS_/SUPABASE_JWT_SECRET). */
  legacySecret: boolean;
}

/** PINGs after the first (which opens the connection). */
const WARM_PINGS = 5;

export function serviceChecks(s: ServiceSettings): Check[] {
  return [
    { name: "redis", run: () => redisFinding(s) },
    { name: "jwks", run: () => jwksFinding(s) },
  ];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const ms = (n: number) => `${n.toFixed(1)} ms`;

async function redisFinding(s: ServiceSettings): Promise<Finding> {
  if (s.redisUrl === undefined || s.redisToken === undefined) {
    return skip("set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN to check Redis");
  }
  const host = URL.parse(s.redisUrl)?.host ?? "(not a URL)";
  const { redis } = createRedis({ url: s.redisUrl, token: s.redisToken, timeoutMs: 5000 });
  const times: number[] = [];
  try {
    for (let i = 0; i <= WARM_PINGS; i++) {
      const start = performance.now();
      const answer = await redis.ping();
      times.push(performance.now() - start);
      if (answer !== "PONG") {
        return fail(
          `PING answered ${JSON.stringify(answer)}`,
          "not a Redis REST API",
          "check the URL",
        );
      }
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/HTTP 401|unauthori[sz]ed|WRONGPASS/i.test(message)) {
      return fail(
        `${host}: token refused`,
        `Upstash refused UPSTASH_REDIS_REST_TOKEN (${message})`,
        "copy the REST token (not the read-only one, not the redis:// password) from the console",
      );
    }
    const { cause, fix } = unreachable("Redis", s.redisUrl, error);
    return fail(`${host}: unreachable`, cause, `${fix} (UPSTASH_REDIS_REST_URL)`);
  }
  const [first, ...warm] = times;
  return ok(
    `${host}: PONG; round trip from here ${ms(median(warm))} (the first, connecting: ` +
      `${ms(first!)}); Upstash's REST API does not tell its region: what counts is the ` +
      "functions' round trip (functions region above)",
  );
}

/** The algorithms the functions verify asymmetric tokens with (`_shared/auth/jwt.ts`). */
const USABLE = ["ES256", "RS256"];

/** The algorithm a key is for: its own `alg`, else the one its type implies. */
function algorithmOf(key: jose.JWK): string | undefined {
  if (key.alg !== undefined) return key.alg;
  if (key.kty === "EC" && key.crv === "P-256") return "ES256";
  if (key.kty === "RSA") return "RS256";
  return undefined;
}

async function jwksFinding(s: ServiceSettings): Promise<Finding> {
  if (s.jwksUrl === undefined) {
    return skip("set SUPABASE_URL (or TORVUS_JWKS_URL) to check the JWKS");
  }
  let answer;
  try {
    answer = await get(s.jwksUrl);
  } catch (error) {
    const { cause, fix } = unreachable("the JWKS", s.jwksUrl, error);
    return fail("unreachable", cause, fix);
  }
  const keys = answer.json?.keys;
  if (answer.status !== 200 || !Array.isArray(keys)) {
    return fail(
      `${answer.status}${codeOf(answer) ? ` ${codeOf(answer)}` : ""}, no key set`,
      `${s.jwksUrl} did not answer a JSON Web Key Set`,
      "SUPABASE_URL must be the project's URL (https://<project-ref>.supabase.co)",
    );
  }
  const usable: string[] = [];
  const other: string[] = [];
  for (const key of keys as jose.JWK[]) {
    const alg = algorithmOf(key);
    // The start of the kid is enough to tell keys apart (a whole one may look like a hash).
    const kid = key.kid === undefined
      ? "(none)"
      : `${key.kid.slice(0, 8)}${key.kid.length > 8 ? "…" : ""}`;
    const name = `kid ${kid} ${alg ?? key.kty}`;
    try {
      if (alg === undefined || !USABLE.includes(alg)) throw new Error("not ES256 or RS256");
      await jose.importJWK(key, alg);
      usable.push(name);
    } catch (error) {
      other.push(`${name}: not usable (${(error as Error).message})`);
    }
  }
  if (usable.length > 0) return ok(`${usable.length} usable key(s): ${usable.join(", ")}`, other);
  if (s.legacySecret) {
    return ok("no asymmetric keys: tokens are verified with the legacy HS256 secret", other);
  }
  return fail(
    `${keys.length} key(s), none usable`,
    "the project publishes no ES256 or RS256 signing key and no legacy secret is set, so no " +
      "access token can be verified",
    "create an asymmetric signing key (Dashboard → Authentication → JWT Keys), or set " +
      "TORVUS_JWT_SECRET to the legacy secret",
    other,
  );
}
