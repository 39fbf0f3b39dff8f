/**
 * The console in headless Chromium against the test stack, end to end: sign up, sign in with a
 * password, with a magic link (PKCE) and with an email code; create a key with the keyboard
 * alone and see it once; use it against /api/v1/test (200) and see the request in the usage
 * chart; revoke it and see it refused (401); add a webhook endpoint on a loopback receiver, send
 * a test, see the delivery listed, retry it, rotate the secret, disable and enable the endpoint;
 * sign out, with the keys and the tokens nowhere in storage; an ended session brings sign-in
 * over the page without losing what was typed; roll a key with a grace period.
 * axe-core runs on every page (no serious or critical violation), and any console error, page
 * error or CSP violation fails the suite.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { execFileSync } from "node:child_process";
import {
  API_URL,
  assertAxe,
  CONSOLE_URL,
  latestMail,
  openBrowser,
  storageDump,
  uniqueEmail,
} from "./browser.mjs";

const PASSWORD = "correct horse battery staple";
let b;
const secrets = new Set();
const axeReport = {};

before(async () => {
  b = await openBrowser();
  // Every token Auth hands the page, to look for them in storage later.
  b.page.on("response", async (response) => {
    if (!response.url().startsWith(`${API_URL}/auth/v1/`)) return;
    if (response.request().method() !== "POST" || response.status() !== 200) return;
    try {
      const body = await response.json();
      if (body.access_token) secrets.add(body.access_token);
      if (body.refresh_token) secrets.add(body.refresh_token);
    } catch { /* not JSON */ }
  });
});

after(async () => {
  await b?.close();
  console.log(`axe-core (serious/critical per page): ${JSON.stringify(axeReport)}`);
});

function noProblems() {
  assert.deepEqual(b.problems, [], "no console error, page error or CSP violation");
}

async function checkAxe(name) {
  await assertAxe(b.page, name, axeReport);
}

async function heading(text) {
  try {
    await b.page.getByRole("heading", { level: 1, name: text }).waitFor({ timeout: 10_000 });
  } catch (error) {
    const shown = await b.page.locator("body").innerText();
    throw new Error(`no heading ${text} at ${b.page.url()}; the page shows:\n${shown}`, {
      cause: error,
    });
  }
}

async function signOut() {
  await b.page.getByRole("button", { name: "Sign out" }).click();
  await heading("Sign in to the Torvus console");
}

const email = uniqueEmail("console");
let apiKey = "";

test("the page is served with a strict CSP and security headers", async () => {
  const response = await fetch(CONSOLE_URL);
  await response.text();
  const csp = response.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.match(csp, new RegExp(`connect-src ${new URL(API_URL).origin}(;|$)`));
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  assert.equal(response.headers.get("referrer-policy"), "no-referrer");
});

test("sign up with a password; the sign-in page passes axe", async () => {
  await b.page.goto(CONSOLE_URL);
  await heading("Sign in to the Torvus console");
  await checkAxe("sign-in");
  await b.page.getByRole("textbox", { name: "Email" }).fill(email);
  await b.page.getByRole("textbox", { name: "Password" }).fill(PASSWORD);
  await b.page.getByRole("button", { name: "Create an account" }).click();
  await heading(/API keys/);
  noProblems();
});

test("create a key with the keyboard alone; it is shown once", async () => {
  const page = b.page;
  await checkAxe("keys");
  // Tab from the top of the page to the key's name field.
  await page.evaluate(() => document.activeElement?.blur());
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement?.getAttribute("name") === "name")) break;
  }
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "name");
  await page.keyboard.type("ci key");
  await page.keyboard.press("Tab"); // scope "read" (checked)
  await page.keyboard.press("Tab"); // scope "write"
  await page.keyboard.press("Space");
  await page.keyboard.press("Enter"); // submits the form
  const once = page.getByRole("region", { name: /Your new key "ci key"/ });
  await once.waitFor();
  await assert.doesNotReject(once.getByText("shown only this once").waitFor());
  apiKey = await once.getByLabel(/Your new key/).inputValue();
  assert.match(apiKey, /^sk_test_[A-Za-z0-9_-]{48}$/);
  secrets.add(apiKey);
  // The region has the focus: Tab to "Copy", Enter; then to "Done", Enter.
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Copy");
  await page.keyboard.press("Enter");
  await page.getByText("Copied to the clipboard").waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), apiKey);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await once.waitFor({ state: "detached" });
  assert.equal(await page.locator(`input[value="${apiKey}"]`).count(), 0, "shown once");
  const row = page.getByRole("row", { name: /ci key/ });
  await assert.doesNotReject(row.getByText("read, write").waitFor());
  await assert.doesNotReject(row.getByRole("cell", { name: "Free", exact: true }).waitFor());
  await page.getByText("IP allowlists come with the Enterprise tier; this account is on Free.")
    .waitFor();
  assert.equal(await page.getByRole("textbox", { name: /IP allowlist/ }).count(), 0);
  noProblems();
});

test("the key works, and its request shows in the usage chart", async () => {
  const used = await fetch(`${API_URL}/api/v1/test`, { headers: { "X-API-Key": apiKey } });
  assert.equal(used.status, 200, await used.text());
  const page = b.page;
  await page.getByRole("link", { name: "Usage" }).click();
  await heading(/Usage/);
  const keySelect = page.getByLabel("Key");
  const option = keySelect.locator("option", { hasText: "ci key" });
  await option.waitFor({ state: "attached" });
  await keySelect.selectOption(await option.getAttribute("value"));
  const total = page.getByTestId("total-requests");
  for (let i = 0; i < 50; i++) {
    await total.waitFor();
    if (Number(await total.textContent()) >= 1) break;
    await new Promise((r) => setTimeout(r, 200));
    await page.getByRole("button", { name: "Refresh" }).click();
  }
  assert.equal(Number(await total.textContent()), 1);
  assert.equal(await page.locator(".chart canvas").count(), 1, "uPlot drew the chart");
  await checkAxe("usage");
  noProblems();
});

test("revoke the key after a confirmation; it is refused", async () => {
  const page = b.page;
  await page.getByRole("link", { name: "API keys" }).click();
  await heading(/API keys/);
  await page.getByRole("button", { name: "Revoke ci key" }).click();
  const dialog = page.getByRole("dialog", { name: /Revoke "ci key"/ });
  await dialog.getByRole("button", { name: "Revoke the key" }).click();
  await page.getByRole("row", { name: /ci key/ }).getByText("revoked").waitFor();
  const refused = await fetch(`${API_URL}/api/v1/test`, { headers: { "X-API-Key": apiKey } });
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).code, "API_KEY_NOT_ACTIVE");
  noProblems();
});

test("webhooks: add an endpoint on a loopback receiver, send a test, see the delivery", async () => {
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  try {
    const url = `http://127.0.0.1:${receiver.address().port}/hooks`;
    const page = b.page;
    await page.getByRole("link", { name: "Webhooks" }).click();
    await heading(/Webhooks/);
    await checkAxe("webhooks");
    await page.getByLabel("URL").fill(url);
    await page.getByRole("button", { name: "Add endpoint" }).click();
    const once = page.getByRole("region", { name: /Signing secret of/ });
    const secret = await once.getByLabel(/Signing secret/).inputValue();
    assert.match(secret, /^whsec_/);
    secrets.add(secret);
    await once.getByRole("button", { name: "Done, I stored it" }).click();
    await page.getByRole("button", { name: `Send a test to ${url}` }).click();
    await page.getByText(`Test event sent to ${url}`).waitFor();
    const deliveries = page.getByRole("region", { name: `Deliveries of ${url}` });
    for (let i = 0; i < 50; i++) {
      if (await deliveries.getByText("succeeded").count() > 0) break;
      await new Promise((r) => setTimeout(r, 200));
      await deliveries.getByRole("button", { name: "Refresh" }).click();
    }
    await deliveries.getByRole("row", { name: /webhook\.test.*succeeded/ }).waitFor();
    assert.equal(received.length, 1);
    assert.equal(JSON.parse(received[0].body).type, "webhook.test");
    await checkAxe("webhooks (deliveries)");

    // Retry sends the same event again.
    await deliveries.getByRole("button", { name: /^Retry webhook\.test/ }).click();
    for (let i = 0; i < 50 && received.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(received.length, 2);
    assert.equal(received[1].headers["webhook-id"], received[0].headers["webhook-id"]);

    // Rotate the secret: confirmed, then the new one shown once.
    await page.getByRole("button", { name: `Rotate secret of ${url}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate the secret" }).click();
    const rotated = page.getByRole("region", { name: /New signing secret of/ });
    const next = await rotated.getByLabel(/signing secret/).inputValue();
    assert.match(next, /^whsec_/);
    assert.notEqual(next, secret);
    secrets.add(next);
    await rotated.getByRole("button", { name: "Done, I stored it" }).click();

    // Disable it, then enable it again.
    await page.getByRole("button", { name: `Disable ${url}` }).click();
    await page.getByRole("button", { name: `Enable ${url}` }).click();
    await page.getByRole("button", { name: `Disable ${url}` }).waitFor();
    noProblems();
  } finally {
    receiver.close();
  }
});

test("account page: the tier and its limits; an upgrade opens IP allowlists", async () => {
  const page = b.page;
  await page.getByRole("link", { name: "Account" }).click();
  await heading("Account");
  await page.getByText(email).first().waitFor();
  const limits = page.getByRole("table", { name: "Rate limits of the account's tiers" });
  await assert.doesNotReject(
    limits.getByRole("row", { name: "Free (the account's) 10 1,000 20 2,000" }).waitFor(),
  );
  await checkAxe("account");

  // An operator upgrades the account (its keys follow); the pages show it on their next load.
  execFileSync("deno", ["task", "-q", "admin", "user", "tier", email, "enterprise"], {
    cwd: new URL("../..", import.meta.url),
    stdio: "ignore",
  });
  // The session lives in memory only: a reload would sign out, so the page is left and entered.
  await page.getByRole("link", { name: "Usage" }).click();
  await heading(/Usage/);
  await page.getByRole("link", { name: "Account" }).click();
  await heading("Account");
  await assert.doesNotReject(
    limits.getByRole("row", { name: "Enterprise (the account's) 300 100,000 600 200,000" })
      .waitFor(),
  );
  await page.getByRole("link", { name: "API keys" }).click();
  await heading(/API keys/);
  // The revoked key keeps its tier as a record; the new key takes the account's.
  const revoked = page.getByRole("row", { name: /ci key/ });
  await assert.doesNotReject(revoked.getByRole("cell", { name: "Free", exact: true }).waitFor());
  await page.getByRole("textbox", { name: "Name" }).fill("office key");
  await page.getByRole("textbox", { name: /IP allowlist/ }).fill("203.0.113.0/24");
  await page.getByRole("button", { name: "Create key" }).click();
  const once = page.getByRole("region", { name: /Your new key "office key"/ });
  await once.waitFor();
  secrets.add(await once.getByLabel(/Your new key/).inputValue());
  await once.getByRole("button", { name: /^Done/ }).click();
  const office = page.getByRole("row", { name: /office key/ });
  await assert.doesNotReject(
    office.getByRole("cell", { name: "Enterprise", exact: true }).waitFor(),
  );
  noProblems();
});

test("account page, then sign out: nothing secret in storage", async () => {
  const page = b.page;
  await page.getByRole("link", { name: "Account" }).click();
  await heading("Account");
  await page.getByText(email).first().waitFor();
  await signOut();
  const dump = await storageDump(page);
  assert.ok(secrets.size >= 3, "tokens and the key were seen");
  for (const secret of secrets) {
    assert.equal(dump.includes(secret), false, "a token or key is in the page's storage");
    assert.equal(page.url().includes(secret), false);
  }
  noProblems();
});

test("sign in with the password again", async () => {
  const page = b.page;
  await page.getByRole("textbox", { name: "Email" }).fill(email);
  await page.getByRole("textbox", { name: "Password" }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  // Back on the page the session ended on.
  await heading("Account");
  await page.getByRole("link", { name: "API keys" }).click();
  await heading(/API keys/);
  await page.getByRole("row", { name: /ci key/ }).waitFor();
  await signOut();
  noProblems();
});

test("sign in with a magic link (PKCE), opened in the same tab", async () => {
  const page = b.page;
  await page.getByRole("tab", { name: "Email link or code" }).click();
  await page.getByRole("textbox", { name: "Email" }).fill(email);
  await page.getByRole("button", { name: "Email me a link and a code" }).click();
  await page.getByText("Sent.").waitFor();
  const mail = await latestMail(email);
  await page.goto(mail.link);
  await heading(/API keys/);
  assert.equal(new URL(page.url()).search, "", "the code is gone from the address bar");
  await signOut();
  const dump = await storageDump(page);
  assert.doesNotMatch(dump, /code-verifier=\S/, "the PKCE verifier is gone");
  noProblems();
});

test("sign in with the email code (a new user)", async () => {
  const page = b.page;
  const other = uniqueEmail("code");
  await page.getByRole("tab", { name: "Email link or code" }).click();
  await page.getByRole("textbox", { name: "Email" }).fill(other);
  await page.getByRole("button", { name: "Email me a link and a code" }).click();
  await page.getByText("Sent.").waitFor();
  const mail = await latestMail(other);
  await page.getByRole("textbox", { name: "Code" }).fill(mail.otp);
  await page.getByRole("button", { name: "Sign in with the code" }).click();
  await heading(/API keys/);
  await signOut();
  for (const secret of secrets) assert.equal((await storageDump(page)).includes(secret), false);
  noProblems();
});

test("an ended session brings sign-in over the page, and what was typed stays", async () => {
  const page = b.page;
  // Access tokens of 4 s for this user (the test profile's Auth honours the header).
  const shortTokens = (route) =>
    route.continue({
      headers: { ...route.request().headers(), "x-torvus-auth-token-ttl": "4" },
    });
  await b.context.route(`${API_URL}/auth/v1/**`, shortTokens);
  let token = "";
  const capture = async (response) => {
    // The newest access token (supabase-js may refresh in the background).
    if (response.url().startsWith(`${API_URL}/auth/v1/`) && response.ok()) {
      const body = await response.json().catch(() => ({}));
      if (body.access_token) token = body.access_token;
    }
  };
  page.on("response", capture);
  const who = uniqueEmail("ended");
  await page.getByRole("tab", { name: "Password" }).click();
  await page.getByRole("textbox", { name: "Email" }).fill(who);
  await page.getByRole("textbox", { name: "Password" }).fill(PASSWORD);
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await page.getByRole("link", { name: "API keys" }).click();
  await heading(/API keys/);
  await page.getByLabel("Name").fill("typed before the session ended");

  // The session ends elsewhere (sign-out everywhere), and the access token expires.
  const out = await fetch(`${API_URL}/auth/v1/logout?scope=global`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(out.status, 204);
  page.off("response", capture);
  await new Promise((r) => setTimeout(r, 4_500));
  // supabase-js's background refresh may have found the session ended already; if not, the
  // form's request does (419, then a refused refresh).
  if (await page.locator(".signin.overlay").count() === 0) {
    await page.getByRole("button", { name: "Create key" }).click();
  }
  await page.getByText("Your session ended. Sign in again").waitFor().catch(async (e) => {
    throw new Error(`${await page.locator("body").innerText()}\n${b.problems.join("\n")}`, {
      cause: e,
    });
  });
  await new Promise((r) => setTimeout(r, 500));
  // The refused refresh and API call are the expected network errors of this test.
  b.problems.splice(
    0,
    b.problems.length,
    ...b.problems.filter((p) => !/status of (400|401|403|419)/.test(p)),
  );
  assert.equal(await page.getByLabel("Name").inputValue(), "typed before the session ended");

  await b.context.unroute(`${API_URL}/auth/v1/**`, shortTokens);
  const overlay = page.locator(".signin.overlay");
  await overlay.getByRole("textbox", { name: "Email" }).fill(who);
  await overlay.getByRole("textbox", { name: "Password" }).fill(PASSWORD);
  await overlay.getByRole("button", { name: "Sign in", exact: true }).click();
  await overlay.waitFor({ state: "detached" });
  assert.equal(await page.getByLabel("Name").inputValue(), "typed before the session ended");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByRole("region", { name: /Your new key "typed before/ }).waitFor();
  noProblems();
});

test("roll a key with a grace period: both keys work, the new one is shown once", async () => {
  const page = b.page;
  const name = "typed before the session ended";
  const old = await page.getByRole("region", { name: /Your new key/ }).getByLabel(/Your new key/)
    .inputValue();
  secrets.add(old);
  await page.getByRole("button", { name: "Done, I stored it" }).click();
  await page.getByRole("button", { name: `Roll ${name}` }).click();
  const dialog = page.getByRole("dialog", { name: `Roll "${name}"?` });
  await dialog.getByLabel("The old key keeps working for").selectOption("3600");
  await checkAxe("keys (roll dialog)");
  await dialog.getByRole("button", { name: "Roll the key" }).click();
  const once = page.getByRole("region", { name: `New key for "${name}"` });
  const rolled = await once.getByLabel(/New key for/).inputValue();
  assert.match(rolled, /^sk_test_/);
  assert.notEqual(rolled, old);
  secrets.add(rolled);
  await checkAxe("keys (key shown once)");
  await once.getByRole("button", { name: "Done, I stored it" }).click();
  for (const key of [old, rolled]) {
    const r = await fetch(`${API_URL}/api/v1/test`, { headers: { "X-API-Key": key } });
    assert.equal(r.status, 200, await r.text());
  }
  await signOut();
  const dump = await storageDump(page);
  for (const secret of secrets) assert.equal(dump.includes(secret), false);
  noProblems();
});
