/**
 * The console's budgets, measured against a running stack (not a timed test):
 *   - JavaScript of the first page, gzipped (-9): the module scripts index.html loads and
 *     preloads (the usage and webhooks pages are separate chunks, loaded when opened);
 *   - first render: from navigation start to the first <h1> in the DOM (the sign-in page), in a
 *     fresh headless Chromium context each run (cold cache), median and worst of --runs.
 * With --screenshots <dir> it also signs up a user and writes a small PNG of each page.
 *
 *   node scripts/bench.mjs [--console URL] [--api URL] [--runs 7] [--screenshots ../docs/console]
 */
import { chromium } from "playwright-core";
import { gzipSync } from "node:zlib";
import { mkdirSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { CHROMIUM, CHROMIUM_ARGS, uniqueEmail } from "../e2e/browser.mjs";

const { values } = parseArgs({
  options: {
    console: {
      type: "string",
      default: process.env.TORVUS_CONSOLE_URL ?? "http://127.0.0.1:54323",
    },
    api: { type: "string", default: process.env.TORVUS_TEST_BASE_URL ?? "http://127.0.0.1:54321" },
    runs: { type: "string", default: "7" },
    screenshots: { type: "string" },
  },
});

async function firstPageJs(base) {
  const html = await (await fetch(base)).text();
  const urls = [
    ...html.matchAll(/<script[^>]+src="([^"]+)"|<link[^>]+rel="modulepreload"[^>]+href="([^"]+)"/g),
  ]
    .map((m) => new URL(m[1] ?? m[2], base).href);
  let raw = 0;
  let gz = 0;
  for (const url of new Set(urls)) {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    raw += bytes.length;
    gz += gzipSync(bytes, { level: 9 }).length;
  }
  return { files: urls.length, raw, gz };
}

async function firstRender(browser, base) {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.querySelector("h1")) {
        globalThis.__firstH1 = performance.now();
        observer.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  });
  const page = await context.newPage();
  await page.goto(base);
  await page.locator("h1").first().waitFor();
  const ms = await page.evaluate(() => globalThis.__firstH1);
  await context.close();
  return ms;
}

async function screenshots(browser, base, dir) {
  mkdirSync(dir, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  const shot = (name, fullPage = false) =>
    page.screenshot({ path: `${dir}/${name}.png`, fullPage });
  await page.goto(base);
  await page.locator("h1").waitFor();
  await shot("sign-in");
  const email = uniqueEmail("owner");
  await page.getByRole("textbox", { name: "Email" }).fill(email);
  await page.getByRole("textbox", { name: "Password" }).fill("correct horse battery staple");
  await page.getByRole("button", { name: "Create an account" }).click();
  for (const name of ["production sync", "ci"]) {
    await page.getByLabel("Name").fill(name);
    await page.getByRole("button", { name: "Create key" }).click();
    const key = await page.locator("input.secret").inputValue();
    for (let i = 0; i < 3; i++) {
      await (await fetch(`${values.api}/api/v1/test`, { headers: { "X-API-Key": key } })).text();
    }
    await page.getByRole("button", { name: "Done, I stored it" }).click();
  }
  await shot("keys", true);
  await page.getByRole("link", { name: "Usage" }).click();
  await page.locator(".chart canvas").waitFor();
  await new Promise((r) => setTimeout(r, 1500));
  await page.getByRole("button", { name: "Refresh" }).click();
  await new Promise((r) => setTimeout(r, 500));
  await shot("usage", true);
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByLabel("URL").fill("http://127.0.0.1:9/hooks");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByRole("button", { name: "Done, I stored it" }).click();
  await page.getByRole("button", { name: /^Send a test/ }).click();
  await page.getByRole("button", { name: /^Deliveries of/ }).click();
  await new Promise((r) => setTimeout(r, 1500));
  await page.getByRole("button", { name: "Refresh" }).click();
  await new Promise((r) => setTimeout(r, 300));
  await page.evaluate(() => scrollTo(0, 0));
  await shot("webhooks", true);
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByText(email).first().waitFor();
  await shot("account");

  // A third-party app (another developer's) asks this user: the consent page, then the grant.
  const developer = await signIn(uniqueEmail("developer"), true);
  const app = await api(developer, "/api/apps", {
    name: "Acme Sync",
    redirect_uris: ["http://127.0.0.1:9/callback"],
    website: "https://acme.example",
    scopes: ["vaults:read", "vaults:write", "vaults:delete", "profile:read"],
  });
  const verifier = randomBytes(32).toString("base64url");
  const authorize = new URL(`${values.api}/auth/v1/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: "code",
    client_id: app.client_id,
    redirect_uri: "http://127.0.0.1:9/callback",
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    state: "bench",
  }).toString();
  const started = await fetch(authorize, { redirect: "manual" });
  await started.body?.cancel();
  // A navigation of its own: the in-memory session is gone, so the page signs the user in.
  await page.goto(started.headers.get("location"));
  await page.getByRole("textbox", { name: "Email" }).fill(email);
  await page.getByRole("textbox", { name: "Password" }).fill("correct horse battery staple");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("button", { name: "Approve" }).waitFor();
  await shot("consent", true);
  // The grant as the consent page records it, then the page that lists it.
  const user = await signIn(email, false);
  await api(user, "/api/grants", { client_id: app.client_id, scopes: ["vaults:read"] });
  await page.goto(values.console);
  await page.getByRole("textbox", { name: "Email" }).fill(email);
  await page.getByRole("textbox", { name: "Password" }).fill("correct horse battery staple");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("link", { name: "Authorized apps" }).click();
  await page.getByRole("row", { name: /Acme Sync/ }).waitFor();
  await shot("authorized-apps");
  await context.close();
}

/** An access token of the user of that email (created first when `signUp`). */
async function signIn(email, signUp) {
  const path = signUp ? "/auth/v1/signup" : "/auth/v1/token?grant_type=password";
  const r = await fetch(`${values.api}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password: "correct horse battery staple" }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** POSTs `body` to the API as the holder of `token`; the answer's JSON. */
async function api(token, path, body) {
  const r = await fetch(`${values.api}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await r.json();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(answer)}`);
  return answer;
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_ARGS,
});
try {
  const js = await firstPageJs(values.console);
  await firstRender(browser, values.console); // warm the server, not the browser
  const runs = [];
  for (let i = 0; i < Number(values.runs); i++) {
    runs.push(await firstRender(browser, values.console));
  }
  runs.sort((a, b) => a - b);
  const median = runs[Math.floor(runs.length / 2)];
  const kb = (n) => (n / 1024).toFixed(1);
  console.log(
    `first page JavaScript: ${js.files} file(s), ${kb(js.raw)} KB, ${
      kb(js.gz)
    } KB gzipped (budget 150 KB)`,
  );
  console.log(
    `first render (navigation to the first <h1>, cold context, ${runs.length} runs): median ${
      median.toFixed(0)
    } ms, worst ${runs.at(-1).toFixed(0)} ms (budget 1000 ms)`,
  );
  if (values.screenshots) {
    await screenshots(browser, values.console, values.screenshots);
    console.log(`screenshots written to ${values.screenshots}`);
  }
} finally {
  await browser.close();
}
