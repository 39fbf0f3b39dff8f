/**
 * The scheduled sweep, reached at `POST /functions/v1/webhooks/sweep` by the scheduler only:
 * pg_cron through pg_net on hosted Supabase (docs/DEPLOY.md), the dev server's scheduler locally
 * (tools/runtime/scheduler.ts). It is no route of the manifest: a request that does not carry
 * `TORVUS_CRON_SECRET` in `X-Torvus-Cron-Secret` goes on to the function's routes as if this
 * did not exist (there, `POST /sweep` is a 405), so the API's surface and its reference are
 * unchanged and nothing tells a caller the sweep is there.
 *
 * A sweep runs `webhook_sweep` (expiring and expired keys announced, deliveries that cannot be
 * sent given up, old events removed), answers with its counts, then kicks the dispatcher, which
 * sends what is due (retries whose backoff has passed, deliveries a dropped isolate left behind)
 * after the answer, through `EdgeRuntime.waitUntil`.
 *
 * @module
 */
import type { Handler } from "../_shared/http/pipeline.ts";
import { functionPath } from "../_shared/http/router.ts";
import { secretMatcher } from "../_shared/ip.ts";
import { onConnection } from "../_shared/db/client.ts";
import { type Boot, bootIsolate, type Services } from "../_shared/services.ts";
import { ConfigError } from "../_shared/config.ts";

/** The header a scheduled call carries the cron secret in. */
export const CRON_SECRET_HEADER = "x-torvus-cron-secret";

/** Runs one sweep and starts sending what is due. */
export async function sweep(s: Services): Promise<Record<string, number>> {
  const [row] = await onConnection(
    s.sql,
    (c) =>
      c<{ counts: Record<string, number> }[]>`select public.webhook_sweep(
      ${s.config.webhooks.retryForMs}::bigint * interval '1 millisecond') as counts`,
  );
  s.webhooks.kick();
  return row?.counts ?? {};
}

/** The function's handler with the sweep in front of it. */
export function withSweep(handler: Handler, boot: Boot = bootIsolate()): Handler {
  if (boot instanceof ConfigError) return handler;
  const s = boot.services;
  const isCron = secretMatcher(s.config.webhooks.cronSecret);
  return async (req, info) => {
    if (
      req.method !== "POST" || functionPath(new URL(req.url).pathname, "webhooks") !== "/sweep" ||
      !isCron(req.headers.get(CRON_SECRET_HEADER))
    ) {
      return await handler(req, info);
    }
    try {
      const counts = await sweep(s);
      if (Object.values(counts).some((n) => n > 0)) s.log.info("webhook sweep", counts);
      return Response.json(counts, { headers: { "Cache-Control": "no-store" } });
    } catch (error) {
      s.log.error("webhook sweep failed", { err: error });
      return Response.json({ code: "SERVICE_UNAVAILABLE" }, { status: 503 });
    }
  };
}
