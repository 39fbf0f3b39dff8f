/**
 * The local Auth stand-in (`tools/auth/`), driven by the real `@supabase/supabase-js` client as
 * an app drives hosted Supabase Auth: sign-up, password sign-in, the seed's refresh-on-419 code
 * as written, email codes and magic links (implicit and PKCE) read from the local mailbox,
 * refresh-token rotation and reuse, getUser, sign-out; and the error bodies of supabase/auth.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { api, BASE_URL, closeDbLast, db, e2e, uniqueEmail, uniqueIp } from "./_harness.ts";
import { latestMail, localClient } from "./_support/auth.ts";

const TTL_HEADER = "X-Torvus-Auth-Token-TTL";
const PASSWORD = "correct horse battery staple";

/** GET /api/me with a token, from an address of its own. */
function me(token: string | undefined) {
  return api("/api/me", { headers: { Authorization: `Bearer ${token}` }, ip: uniqueIp() });
}

e2e("sign up, sign in with a password, /api/me, getUser", async () => {
  const supabase = localClient();
  const email = uniqueEmail("signup");
  const up = await supabase.auth.signUp({ email, password: PASSWORD });
  assert.equal(up.error, null);
  assert.ok(up.data.session, "auto-confirmed sign-up returns a session");
  assert.equal(up.data.user?.email, email);
  assert.ok(up.data.user?.email_confirmed_at);

  const again = await supabase.auth.signUp({ email, password: PASSWORD });
  assert.equal(again.error?.status, 422);
  assert.equal(again.error?.code, "user_already_exists");

  const wrong = await supabase.auth.signInWithPassword({ email, password: "not the password" });
  assert.equal(wrong.error?.status, 400);
  assert.equal(wrong.error?.code, "invalid_credentials");
  assert.equal(wrong.error?.message, "Invalid login credentials");

  const { data, error } = await supabase.auth.signInWithPassword({ email, password: PASSWORD });
  assert.equal(error, null);
  const session = data.session!;
  assert.equal(session.token_type, "bearer");
  assert.equal(session.expires_in, 3600);
  const claims = decodeJwt(session.access_token);
  assert.equal(claims.iss, `${BASE_URL}/auth/v1`);
  assert.equal(claims.sub, data.user!.id);
  assert.equal(claims.email, email);
  assert.equal(claims.role, "authenticated");
  assert.equal(claims.aud, "authenticated");
  assert.equal(typeof claims["session_id"], "string");
  assert.deepEqual((claims["amr"] as { method: string }[]).map((a) => a.method), ["password"]);

  const r = await me(session.access_token);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.id, data.user!.id);

  const user = await supabase.auth.getUser();
  assert.equal(user.error, null);
  assert.equal(user.data.user?.id, data.user!.id);
});

e2e("the seed's makeAuthenticatedRequest refreshes on 419 and retries, as written", async () => {
  const url = `${BASE_URL}/api/me`;
  // Access tokens of 3 s (the test profile honours this header), so one expires here.
  const supabase = localClient({ headers: { [TTL_HEADER]: "3" } });
  const email = uniqueEmail("seed");
  await supabase.auth.signUp({ email, password: PASSWORD });
  const { data } = await supabase.auth.signInWithPassword({ email, password: PASSWORD });
  let accessToken: string | undefined = data.session?.access_token;
  const first = accessToken;
  assert.equal((await me(accessToken)).status, 200);

  // The seed's own code (authentication page, "Handling Token Expiration"), unchanged.
  async function makeAuthenticatedRequest(url: string) {
    try {
      const response = await fetch(url, {
        headers: {
          "Authorization": `Bearer ${accessToken}`,
        },
      });
      if (response.status === 419) {
        // Token expired, refresh and retry
        const { data } = await supabase.auth.refreshSession();
        accessToken = data.session?.access_token;
        // Retry request with new token
        return fetch(url, {
          headers: {
            "Authorization": `Bearer ${accessToken}`,
          },
        });
      }
      return response;
    } catch (error) {
      console.error("Authentication error:", error);
      throw error;
    }
  }

  const exp = decodeJwt(first!).exp! * 1000;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp - Date.now() + 1_100)));
  const expired = await me(first);
  assert.equal(expired.status, 419, expired.text);
  assert.equal(expired.body.code, "TOKEN_EXPIRED");

  const response = await makeAuthenticatedRequest(url);
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.notEqual(accessToken, first, "refreshSession() gave a new access token");
  assert.equal(body.email, email);
});

e2e("refresh tokens rotate; a reused one is refused after 10 s and ends the session", async () => {
  const supabase = localClient();
  const email = uniqueEmail("rotate");
  const { data } = await supabase.auth.signUp({ email, password: PASSWORD });
  const r1 = data.session!.refresh_token;
  const refreshed = await supabase.auth.refreshSession();
  assert.equal(refreshed.error, null);
  const r2 = refreshed.data.session!.refresh_token;
  assert.notEqual(r2, r1);

  // Within the reuse interval, the old token answers with the session's current one.
  const reuse = await supabase.auth.refreshSession({ refresh_token: r1 });
  assert.equal(reuse.error, null);
  assert.equal(reuse.data.session!.refresh_token, r2);

  // Later, reuse is "Already Used" and the whole session ends.
  await db()`update auth.refresh_tokens set updated_at = now() - interval '20 seconds'
             where token = ${r1}`;
  const late = await supabase.auth.refreshSession({ refresh_token: r1 });
  assert.equal(late.error?.status, 400);
  assert.equal(late.error?.code, "refresh_token_already_used");
  const after = await localClient().auth.refreshSession({ refresh_token: r2 });
  assert.equal(after.error?.code, "refresh_token_not_found");
});

e2e("refresh tokens last 7 days", async () => {
  const supabase = localClient();
  const { data } = await supabase.auth.signUp({ email: uniqueEmail("week"), password: PASSWORD });
  const token = data.session!.refresh_token;
  await db()`update auth.refresh_tokens set created_at = now() - interval '6 days 23 hours'
             where token = ${token}`;
  const fine = await localClient().auth.refreshSession({ refresh_token: token });
  assert.equal(fine.error, null);
  const next = fine.data.session!.refresh_token;
  await db()`update auth.refresh_tokens set created_at = now() - interval '7 days 1 minute'
             where token = ${next}`;
  const old = await localClient().auth.refreshSession({ refresh_token: next });
  assert.equal(old.error?.status, 400);
  assert.equal(old.error?.code, "session_expired");
});

e2e("sign-out ends the session: getUser 403 session_not_found, refresh refused", async () => {
  const supabase = localClient();
  const { data } = await supabase.auth.signUp({ email: uniqueEmail("out"), password: PASSWORD });
  const { access_token, refresh_token } = data.session!;
  const out = await supabase.auth.signOut();
  assert.equal(out.error, null);
  assert.equal((await supabase.auth.getSession()).data.session, null);

  const user = await fetch(`${BASE_URL}/auth/v1/user`, {
    headers: { Authorization: `Bearer ${access_token}`, "X-Supabase-Api-Version": "2024-01-01" },
  });
  assert.equal(user.status, 403);
  assert.deepEqual(await user.json(), {
    code: "session_not_found",
    message: "Session from session_id claim in JWT does not exist",
  });
  const refresh = await localClient().auth.refreshSession({ refresh_token });
  assert.equal(refresh.error?.code, "refresh_token_not_found");
});

e2e("email code: signInWithOtp, the code from the mailbox, verifyOtp", async () => {
  const supabase = localClient();
  const email = uniqueEmail("otp");
  const sent = await supabase.auth.signInWithOtp({ email });
  assert.equal(sent.error, null);
  const mail = await latestMail(email);
  assert.match(mail.otp, /^\d{6}$/);
  assert.ok(mail.text.includes(mail.otp));

  const bad = await supabase.auth.verifyOtp({ email, token: "000000", type: "email" });
  if (mail.otp !== "000000") {
    assert.equal(bad.error?.status, 403);
    assert.equal(bad.error?.code, "otp_expired");
  }
  const { data, error } = await supabase.auth.verifyOtp({ email, token: mail.otp, type: "email" });
  assert.equal(error, null);
  assert.equal(data.user?.email, email);
  assert.equal((await me(data.session!.access_token)).status, 200);

  const twice = await supabase.auth.verifyOtp({ email, token: mail.otp, type: "email" });
  assert.equal(twice.error?.code, "otp_expired", "a code is used once");

  const noCreate = await localClient().auth.signInWithOtp({
    email: uniqueEmail("nobody"),
    options: { shouldCreateUser: false },
  });
  assert.equal(noCreate.error?.status, 422);
  assert.equal(noCreate.error?.code, "otp_disabled");
});

e2e("magic link with PKCE: the link gives a code, exchangeCodeForSession signs in", async () => {
  const supabase = localClient({ flowType: "pkce" });
  const email = uniqueEmail("pkce");
  const redirect = "http://127.0.0.1:29333/";
  const sent = await supabase.auth.signInWithOtp({ email, options: { emailRedirectTo: redirect } });
  assert.equal(sent.error, null);
  const mail = await latestMail(email);
  const link = new URL(mail.link);
  assert.equal(link.origin + link.pathname, `${BASE_URL}/auth/v1/verify`);
  assert.match(link.searchParams.get("token")!, /^pkce_[0-9a-f]{56}$/);

  const followed = await fetch(mail.link, { redirect: "manual" });
  await followed.body?.cancel();
  assert.equal(followed.status, 303);
  const location = new URL(followed.headers.get("location")!);
  assert.equal(location.origin + location.pathname, redirect);
  const code = location.searchParams.get("code")!;
  assert.ok(code);

  // Another client (without this flow's verifier) cannot use the code.
  const stolen = await localClient({ flowType: "pkce" }).auth.exchangeCodeForSession(code);
  assert.ok(stolen.error);
  const { data, error } = await supabase.auth.exchangeCodeForSession(code);
  assert.equal(error, null);
  assert.equal(data.user?.email, email);
  assert.equal((await me(data.session!.access_token)).status, 200);
  const twice = await supabase.auth.exchangeCodeForSession(code);
  assert.ok(twice.error, "an auth code is exchanged once");

  const reused = await fetch(mail.link, { redirect: "manual" });
  await reused.body?.cancel();
  const denied = new URL(reused.headers.get("location")!);
  assert.equal(denied.searchParams.get("error_code"), "otp_expired");
});

e2e("magic link without PKCE: the session in the redirect's fragment", async () => {
  const email = uniqueEmail("implicit");
  await localClient().auth.signInWithOtp({ email });
  const mail = await latestMail(email);
  const followed = await fetch(mail.link, { redirect: "manual" });
  await followed.body?.cancel();
  assert.equal(followed.status, 303);
  const fragment = new URLSearchParams(new URL(followed.headers.get("location")!).hash.slice(1));
  assert.equal(fragment.get("token_type"), "bearer");
  assert.equal(fragment.get("type"), "signup");
  assert.equal((await me(fragment.get("access_token")!)).status, 200);
  const supabase = localClient();
  const set = await supabase.auth.setSession({
    access_token: fragment.get("access_token")!,
    refresh_token: fragment.get("refresh_token")!,
  });
  assert.equal(set.error, null);
  assert.equal(set.data.user?.email, email);
});

e2e("errors as supabase/auth shapes them, in both API versions", async () => {
  const token = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${BASE_URL}/auth/v1/token?grant_type=password`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
  const creds = { email: uniqueEmail("none"), password: PASSWORD };
  const initial = await token(creds);
  assert.equal(initial.status, 400);
  assert.equal(initial.headers.get("x-sb-error-code"), "invalid_credentials");
  assert.deepEqual(await initial.json(), {
    code: 400,
    error_code: "invalid_credentials",
    msg: "Invalid login credentials",
  });
  const dated = await token(creds, { "X-Supabase-Api-Version": "2024-01-01" });
  assert.equal(dated.headers.get("x-supabase-api-version"), "2024-01-01");
  assert.deepEqual(await dated.json(), {
    code: "invalid_credentials",
    message: "Invalid login credentials",
  });

  const weak = await localClient().auth.signUp({ email: uniqueEmail("weak"), password: "abc" });
  assert.equal(weak.error?.status, 422);
  assert.equal(weak.error?.code, "weak_password");

  const noBearer = await fetch(`${BASE_URL}/auth/v1/user`);
  assert.equal(noBearer.status, 401);
  assert.equal((await noBearer.json()).error_code, "no_authorization");

  const badJson = await fetch(`${BASE_URL}/auth/v1/signup`, { method: "POST", body: "{" });
  assert.equal(badJson.status, 400);
  assert.equal((await badJson.json()).error_code, "bad_json");

  const grant = await token({}, {});
  assert.equal(grant.status, 400);
  await grant.body?.cancel();
  const unsupported = await fetch(`${BASE_URL}/auth/v1/token?grant_type=nope`, { method: "POST" });
  assert.deepEqual(await unsupported.json(), {
    code: 400,
    error_code: "invalid_credentials",
    msg: "unsupported_grant_type",
  });

  const preflight = await fetch(`${BASE_URL}/auth/v1/token`, {
    method: "OPTIONS",
    headers: { Origin: "http://127.0.0.1:29333", "Access-Control-Request-Method": "POST" },
  });
  await preflight.body?.cancel();
  assert.equal(preflight.status, 204);
  assert.match(preflight.headers.get("access-control-allow-headers")!, /x-supabase-api-version/);
});

closeDbLast("auth_standin");
