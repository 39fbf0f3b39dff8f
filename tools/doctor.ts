/**
 * `deno task doctor <base-url>`: checks a deployment after `supabase functions deploy`, as a
 * client and with the functions' own settings, and says for each finding what is wrong and how
 * to fix it.
 *
 * Through the gateway's URL: health of each dependency as the functions see it, the region the
 * functions ran in and their round trip to Redis and the database, paths outside the public
 * table refused, forged `X-Forwarded-For`/`X-Real-IP` ignored, and (with TORVUS_DOCTOR_API_KEY)
 * a key's round trip with the documented headers. With the service settings in the environment
 * (the functions' own: TORVUS_DB_URL or SUPABASE_DB_URL, TORVUS_DB_CA_CERT, UPSTASH_REDIS_REST_URL
 * and _TOKEN, SUPABASE_URL), straight from here with the functions' client code: the database's
 * TLS chain and host name, its pool mode, Redis's round trip, the JWKS and its keys.
 *
 * Each check prints `ok`, `FAIL` (with its cause and fix) or `skip` (a setting it needs is not
 * given); the exit code is 1 if any failed, 2 for a usage error. No secret is ever printed.
 * The task runs on Deno 2.1, the hosted Edge Runtime's version, so TLS is Deno's as there.
 *
 * @module
 */
import { parseDbConfig } from "../supabase/functions/_shared/config.ts";
import type { DbConfig } from "../supabase/functions/_shared/db/settings.ts";
import { baseOf } from "./doctor/http.ts";
import { gatewayChecks } from "./doctor/gateway.ts";
import { databaseChecks } from "./doctor/database.ts";
import { serviceChecks } from "./doctor/services.ts";
import {
  type Check,
  type Finding,
  formatFinding,
  formatTotals,
  redactor,
  runCheck,
} from "./doctor/report.ts";

/** How long one check may take. */
export const CHECK_TIMEOUT_MS = 30_000;

const USAGE = "usage: deno task doctor <base-url>   (the gateway's URL, e.g. " +
  "https://api.example.com)\n" +
  "settings read from the environment: TORVUS_DOCTOR_API_KEY, TORVUS_FUNCTIONS_REGION, " +
  "TORVUS_DB_URL or SUPABASE_DB_URL, TORVUS_DB_CA_CERT, UPSTASH_REDIS_REST_URL, " +
  "UPSTASH_REDIS_REST_TOKEN, SUPABASE_URL (or TORVUS_JWKS_URL)";

/** Every check for a base URL and an environment, and the secrets never to print. */
export function plan(base: string, env: Record<string, string | undefined>): {
  checks: Check[];
  secrets: Array<string | undefined>;
} {
  const get = (name: string) => env[name] === "" ? undefined : env[name];
  let db: DbConfig | undefined;
  let problem: string | undefined;
  try {
    db = parseDbConfig(env);
  } catch (error) {
    problem = (error as Error).message;
  }
  const dbUrl = get("TORVUS_DB_URL") ?? get("SUPABASE_DB_URL");
  const password = dbUrl === undefined
    ? undefined
    : decodeURIComponent(URL.parse(dbUrl.replace(/^postgres(ql)?:/, "http:"))?.password ?? "");
  const supabaseUrl = get("SUPABASE_URL")?.replace(/\/+$/, "");
  const jwksUrl = get("TORVUS_JWKS_URL") ?? get("SUPABASE_JWKS_URL") ??
    (supabaseUrl === undefined ? undefined : `${supabaseUrl}/auth/v1/.well-known/jwks.json`);
  const checks = [
    ...gatewayChecks({
      base,
      apiKey: get("TORVUS_DOCTOR_API_KEY"),
      region: get("TORVUS_FUNCTIONS_REGION"),
      supabaseUrl,
    }),
    ...databaseChecks(db, problem),
    ...serviceChecks({
      redisUrl: get("UPSTASH_REDIS_REST_URL"),
      redisToken: get("UPSTASH_REDIS_REST_TOKEN"),
      jwksUrl,
      legacySecret: (get("TORVUS_JWT_SECRET") ?? get("SUPABASE_JWT_SECRET")) !== undefined,
    }),
  ];
  const secrets = [
    get("TORVUS_DOCTOR_API_KEY"),
    get("UPSTASH_REDIS_REST_TOKEN"),
    get("TORVUS_GATEWAY_SECRET"),
    get("TORVUS_JWT_SECRET"),
    get("SUPABASE_JWT_SECRET"),
    get("SUPABASE_SERVICE_ROLE_KEY"),
    get("TORVUS_CRON_SECRET"),
    password,
  ];
  return { checks, secrets };
}

/** Runs the checks one after another, printing each as it ends; resolves with the findings. */
export async function runDoctor(
  base: string,
  env: Record<string, string | undefined>,
  print: (line: string) => void,
): Promise<Finding[]> {
  const { checks, secrets } = plan(base, env);
  const clean = redactor(secrets);
  print(clean(`torvus doctor: ${base} (Deno ${Deno.version.deno})`));
  const findings: Finding[] = [];
  for (const check of checks) {
    const finding = await runCheck(check, CHECK_TIMEOUT_MS);
    findings.push(finding);
    for (const line of formatFinding(check.name, finding, clean)) print(line);
  }
  print(formatTotals(findings));
  return findings;
}

if (import.meta.main) {
  const args = Deno.args.filter((a) => a !== "--");
  if (args.length !== 1 || args[0] === "--help" || args[0] === "-h") {
    console.error(USAGE);
    Deno.exit(2);
  }
  let base: string;
  try {
    base = baseOf(args[0]!);
  } catch (error) {
    console.error(redactor([])(`doctor: ${(error as Error).message}\n${USAGE}`));
    Deno.exit(2);
  }
  const findings = await runDoctor(base, Deno.env.toObject(), (line) => console.log(line));
  Deno.exit(findings.some((f) => f.status === "fail") ? 1 : 0);
}
