/**
 * The closed-loop cases of the benchmark: the baseline and the API paths of issue 6.
 *
 * @module
 */
import type { Target } from "./load.ts";
import { BENCH, type Fixtures } from "./setup.ts";

/** A closed-loop case: what to load and the status its first request must get. */
export interface CaseDef {
  id: string;
  label: string;
  target: Target;
  expect: number;
}

/** The cases of issue 6 over the fixtures. */
export function caseDefs(fx: Fixtures): CaseDef[] {
  const api = `http://127.0.0.1:${BENCH.serverPort}`;
  const key = (k: string) => [{ "X-API-Key": k }];
  return [
    {
      id: "baseline",
      label: "baseline: bare Deno.serve",
      expect: 200,
      target: { url: `http://127.0.0.1:${BENCH.baselinePort}/`, headers: [] },
    },
    {
      id: "v1-test",
      label: "GET /api/v1/test (valid key)",
      expect: 200,
      target: { url: `${api}/api/v1/test`, headers: key(fx.validKey) },
    },
    {
      id: "me",
      label: `GET /api/me (ES256, ${fx.tokens.length} users)`,
      expect: 200,
      target: {
        url: `${api}/api/me`,
        headers: fx.tokens.map((t) => ({ Authorization: `Bearer ${t}` })),
      },
    },
    {
      id: "vaults",
      label: `GET /api/v1/vaults (read key, ${fx.vaults} vaults)`,
      expect: 200,
      target: { url: `${api}/api/v1/vaults`, headers: key(fx.readKey) },
    },
    {
      id: "invalid-key",
      label: "GET /api/v1/test (bad checksum)",
      expect: 401,
      target: { url: `${api}/api/v1/test`, headers: key(fx.invalidKey) },
    },
    {
      id: "limited-key",
      label: "GET /api/v1/test (rate-limited key)",
      expect: 429,
      target: { url: `${api}/api/v1/test`, headers: key(fx.limitedKey) },
    },
  ];
}

/** Checks that a case answers as expected before it is loaded. */
export async function expectStatus(c: CaseDef): Promise<void> {
  const res = await fetch(c.target.url, { headers: c.target.headers[0] ?? {} });
  const body = await res.text();
  if (res.status !== c.expect) {
    throw new Error(
      `${c.label}: expected ${c.expect} before loading it, got ${res.status}: ${body}`,
    );
  }
}
