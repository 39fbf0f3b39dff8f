/**
 * What the console's browser suite needs: headless Chromium from Debian (/usr/bin/chromium)
 * driven by playwright-core, a page that records every console error, page error and
 * Content-Security-Policy violation (the suite fails on any), axe-core, the local mailbox, and
 * the API.
 */
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { createServer } from "node:http";

/** The API (and Auth) of the test stack, and the console beside it. */
export const API_URL = process.env.TORVUS_TEST_BASE_URL ?? "http://127.0.0.1:29331";
export const CONSOLE_URL = process.env.TORVUS_CONSOLE_URL ?? "http://127.0.0.1:29333";

/** Debian's Chromium. */
export const CHROMIUM = process.env.TORVUS_CHROMIUM ?? "/usr/bin/chromium";
/** Chromium's flags for the suite and the benchmark: headless, quiet, nothing from the network. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve("axe-core/axe.min.js"),
  "utf8",
);

/**
 * Launches Chromium as the suite requires (headless, no sandbox for root in CI, no network
 * besides the pages', a fresh profile) and opens a page that records problems.
 */
export async function openBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "torvus-chromium-"));
  // A fresh profile: playwright passes it as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: CHROMIUM_ARGS,
  });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: CONSOLE_URL });
  const problems = [];
  await context.exposeBinding("__reportViolation", (_source, text) => problems.push(text));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      globalThis.__reportViolation(
        `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`,
      );
    });
  });
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, problems, close };
}

/** Runs axe-core on the page; the serious and critical violations, described. */
export async function axeSerious(page) {
  // Evaluated over the DevTools protocol, which the page's CSP does not govern (an injected
  // <script> would be, rightly, refused).
  await page.evaluate(`${AXE_SOURCE};undefined`);
  const results = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  });
  return {
    all: results,
    serious: results.filter((v) => v.impact === "serious" || v.impact === "critical"),
  };
}

/**
 * Asserts that axe-core finds no serious or critical violation on the page, and records what it
 * found under `name` in `report` (printed by the suites at the end).
 */
export async function assertAxe(page, name, report) {
  const { serious, all } = await axeSerious(page);
  report[name] = {
    serious: serious.length,
    other: all.filter((v) => !serious.includes(v)).map((v) => `${v.id} (${v.impact})`),
  };
  if (serious.length > 0) {
    throw new Error(`axe-core on ${name}: ${JSON.stringify(serious)}`);
  }
}

/** The newest mail to `email` in the local mailbox, waiting for it. */
export async function latestMail(email) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const url = new URL("/_mailbox/api/messages", API_URL);
    url.searchParams.set("to", email);
    const mails = await (await fetch(url)).json();
    if (mails[0]) return mails[0];
    if (Date.now() > deadline) throw new Error(`no mail to ${email}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Everything in the page's localStorage and sessionStorage, as one string. */
export async function storageDump(page) {
  return await page.evaluate(() => {
    const dump = (s) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`).join("\n");
    return `${dump(localStorage)}\n${dump(sessionStorage)}\n${document.cookie}`;
  });
}

/** A unique email for a test user. */
export function uniqueEmail(tag) {
  return `${tag}-${crypto.randomUUID()}@test.local`;
}

/** The password of the suites' users. */
export const PASSWORD = "correct horse battery staple";

/** A new user through Auth's sign-up (auto-confirmed): their email, access token and id. */
export async function signUp(tag) {
  const email = uniqueEmail(tag);
  const r = await fetch(`${API_URL}/auth/v1/signup`, {
    method: "POST",
    headers: { "Content-Type": "application/json", apikey: "sb_publishable_local_stand_in" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`sign-up: ${r.status} ${JSON.stringify(body)}`);
  return { email, token: body.access_token, id: body.user.id };
}

/**
 * A third-party app's loopback redirect URI (a node http server on a free port): records each
 * arrival at `/callback` in `arrived`, answers a small page headed "Back in the app".
 */
export async function startRedirectServer() {
  const arrived = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname === "/callback") arrived.push(url);
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(
      '<!doctype html><html lang="en"><head><title>The app</title><link rel="icon" ' +
        'href="data:,"></head><body><h1>Back in the app</h1></body></html>',
    );
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const uri = `http://127.0.0.1:${server.address().port}/callback`;
  return { uri, arrived, close: () => server.close() };
}

/** Records, as a problem, any request of the page to a host off this machine. */
export function refuseOffLoopback(b) {
  b.page.on("request", (request) => {
    const host = new URL(request.url()).hostname;
    if (
      !["127.0.0.1", "localhost", "[::1]"].includes(host) &&
      !request.url().startsWith("data:")
    ) {
      b.problems.push(`request off loopback: ${request.url()}`);
    }
  });
}

/** Waits for the page's `<h1>` named `text`. */
export async function heading(page, text) {
  await page.getByRole("heading", { level: 1, name: text }).waitFor({ timeout: 10_000 });
}

/** Signs in with the password on the console's sign-in form (which must be showing). */
export async function signIn(page, email) {
  await heading(page, "Sign in to the Torvus console");
  await page.getByRole("textbox", { name: "Email" }).fill(email);
  await page.getByRole("textbox", { name: "Password" }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}
