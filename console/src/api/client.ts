/**
 * The API client, typed from the API's own OpenAPI document (`schema.gen.ts`, generated from it
 * by `npm run types` before every type check and build), so a changed API breaks the console's
 * type check instead of its users. Every call carries the session's access token; a 419 (expired
 * token) refreshes the session once and retries, as the seed's `makeAuthenticatedRequest` does;
 * a token still refused ends the session, which brings the sign-in form up over the page.
 */
import createClient from "openapi-fetch";
import type { paths } from "./schema.gen.ts";
import { config } from "../config.ts";
import { endSession, supabase } from "../auth.ts";

/** An error the API answered, with its message and request id as the user should see them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

async function accessToken(): Promise<string | null> {
  const { data } = await supabase.auth.getSession();
  return data.session?.access_token ?? null;
}

/** The answer for a call made without a session: no request is sent. */
function sessionEnded(): Response {
  endSession();
  const body = { code: "SESSION_ENDED", message: "Your session ended: sign in again" };
  return Response.json(body, { status: 401 });
}

/** fetch with the session's bearer token, refreshing once on 419. */
async function authedFetch(input: Request): Promise<Response> {
  const send = async (token: string | null) => {
    if (token === null) return sessionEnded();
    const request = input.clone();
    request.headers.set("Authorization", `Bearer ${token}`);
    return await fetch(request);
  };
  let response = await send(await accessToken());
  if (response.status === 419) {
    const { data } = await supabase.auth.refreshSession();
    response = await send(data.session?.access_token ?? null);
  }
  if (response.status === 401 || response.status === 419) endSession();
  return response;
}

/** The typed client of the Torvus API. */
export const api = createClient<paths>({ baseUrl: config.apiUrl, fetch: authedFetch });

/** What a failed call answered, as an {@link ApiError}. */
export function toApiError(error: unknown, response: Response): ApiError {
  const body = (error ?? {}) as { message?: unknown; code?: unknown; request_id?: unknown };
  const requestId = typeof body.request_id === "string"
    ? body.request_id
    : response.headers.get("X-Request-ID");
  const message = typeof body.message === "string" ? body.message : response.statusText;
  const code = typeof body.code === "string" ? body.code : String(response.status);
  return new ApiError(response.status, code, message || `HTTP ${response.status}`, requestId);
}

/**
 * The data of a call's result, or throws its {@link ApiError}. A network failure becomes an
 * ApiError of status 0 so every failure shows the same way.
 */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (error) {
    throw new ApiError(0, "NETWORK_ERROR", `The API could not be reached (${error})`, null);
  }
  if (result.response.ok && result.data !== undefined) return result.data;
  if (result.response.ok) return undefined as T;
  throw toApiError(result.error, result.response);
}
