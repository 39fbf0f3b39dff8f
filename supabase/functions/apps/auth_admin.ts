/**
 * Supabase Auth's admin API for OAuth clients (`/auth/v1/admin/oauth/clients`), the part the
 * apps function needs: create a client, change it, delete it, regenerate its secret. Called with
 * the service role key, as supabase-js's `auth.admin.oauth` does; shapes as supabase/auth's
 * `internal/api/oauthserver/handlers.go` has them. Plain `fetch`: a handful of calls per app's
 * lifetime, never on a request's hot path.
 *
 * A refusal of Auth's (400 `validation_failed`) is reported as such, with its message, so the
 * handler can answer 400 instead of 503; anything else (unreachable, 5xx, an answer of another
 * shape) is {@link AuthAdminUnavailable}. No secret is ever put in an error or a log line.
 *
 * @module
 */
import { z } from "zod";

/** How long one admin call may take. */
const AUTH_ADMIN_TIMEOUT_MS = 5_000;

/** An OAuth client as Auth's admin API answers it. */
const ClientAnswer = z.object({
  client_id: z.string().min(1).max(255),
  client_secret: z.string().min(1).max(500).optional(),
  client_type: z.enum(["public", "confidential"]),
  redirect_uris: z.array(z.string()).optional(),
  client_name: z.string().optional(),
});

/** A client Auth created or changed; `client_secret` only when one was just made. */
export type OAuthClient = z.output<typeof ClientAnswer>;

/** What a client is registered with. */
export interface ClientFields {
  client_name: string;
  redirect_uris: string[];
  client_uri?: string | null | undefined;
  logo_uri?: string | null | undefined;
}

/** Auth refused the request (its 400): the message says why. */
export class AuthAdminRefused extends Error {
  override name = "AuthAdminRefused";
}

/** Auth's admin API did not answer as it should (unreachable, 5xx, wrong shape, timed out). */
export class AuthAdminUnavailable extends Error {
  override name = "AuthAdminUnavailable";
}

/** The OAuth client operations of Auth's admin API. */
export interface AuthAdmin {
  createClient(
    fields: ClientFields & { client_type: "public" | "confidential" },
  ): Promise<OAuthClient>;
  updateClient(clientId: string, fields: Partial<ClientFields>): Promise<OAuthClient>;
  /** Deletes the client; a client Auth no longer has counts as deleted. */
  deleteClient(clientId: string): Promise<void>;
  regenerateSecret(clientId: string): Promise<OAuthClient & { client_secret: string }>;
}

/** The admin API of the Auth server at `supabaseUrl`, called with `serviceKey`. */
export function createAuthAdmin(
  supabaseUrl: string,
  serviceKey: string,
): AuthAdmin {
  const base = `${supabaseUrl.replace(/\/+$/, "")}/auth/v1/admin/oauth/clients`;
  const call = async (method: string, path: string, body?: unknown): Promise<Response> => {
    let response: Response;
    try {
      response = await fetch(base + path, {
        method,
        headers: {
          Authorization: `Bearer ${serviceKey}`,
          apikey: serviceKey,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(AUTH_ADMIN_TIMEOUT_MS),
      });
    } catch (error) {
      const why = error instanceof DOMException && error.name === "TimeoutError"
        ? `no answer within ${AUTH_ADMIN_TIMEOUT_MS} ms`
        : "unreachable";
      throw new AuthAdminUnavailable(`Supabase Auth admin API ${method} ${path || "/"}: ${why}`);
    }
    if (response.status === 400) {
      const answer = await response.json().catch(() => ({})) as { msg?: unknown };
      throw new AuthAdminRefused(typeof answer.msg === "string" ? answer.msg : "refused");
    }
    return response;
  };
  const client = async (response: Response, what: string): Promise<OAuthClient> => {
    const parsed = ClientAnswer.safeParse(await response.json().catch(() => undefined));
    if (!response.ok || !parsed.success) {
      await response.body?.cancel().catch(() => {});
      throw new AuthAdminUnavailable(
        `Supabase Auth admin API ${what}: answered ${response.status}`,
      );
    }
    return parsed.data;
  };
  const id = (clientId: string) => `/${encodeURIComponent(clientId)}`;
  return {
    async createClient(fields) {
      const { client_uri, logo_uri, ...rest } = fields;
      return await client(
        await call("POST", "", {
          ...rest,
          ...(client_uri ? { client_uri } : {}),
          ...(logo_uri ? { logo_uri } : {}),
          token_endpoint_auth_method: fields.client_type === "public"
            ? "none"
            : "client_secret_basic",
        }),
        "create",
      );
    },
    async updateClient(clientId, fields) {
      // Auth keeps an empty string for "no website / no logo".
      const body = Object.fromEntries(
        Object.entries(fields).map(([k, v]) => [k, v === null ? "" : v]),
      );
      return await client(await call("PUT", id(clientId), body), "update");
    },
    async deleteClient(clientId) {
      const response = await call("DELETE", id(clientId));
      await response.body?.cancel().catch(() => {});
      if (response.status !== 204 && response.status !== 404) {
        throw new AuthAdminUnavailable(
          `Supabase Auth admin API delete: answered ${response.status}`,
        );
      }
    },
    async regenerateSecret(clientId) {
      const answer = await client(
        await call("POST", `${id(clientId)}/regenerate_secret`),
        "regenerate",
      );
      if (answer.client_secret === undefined) {
        throw new AuthAdminUnavailable("Supabase Auth admin API regenerate: no secret in answer");
      }
      return { ...answer, client_secret: answer.client_secret };
    },
  };
}
