import assert from "node:assert/strict";
import {
  fail,
  formatFinding,
  formatTotals,
  ok,
  redactor,
  runCheck,
  safeUrl,
  skip,
} from "./report.ts";

Deno.test("the redactor replaces every secret it was given, plain or URL-encoded", () => {
  const clean = redactor(["tok3n-value-123", "p@ss/w:rd!", undefined, "", "short"]);
  assert.equal(clean("Bearer-less tok3n-value-123 here"), "Bearer-less *** here");
  assert.equal(clean("pw p@ss/w:rd! and p%40ss%2Fw%3Ard!"), "pw *** and ***");
  // Too short to be told from ordinary words: left alone.
  assert.equal(clean("short"), "short");
});

Deno.test("the redactor hides the password of any URL, and key-shaped text", () => {
  const clean = redactor([]);
  assert.equal(
    clean("connect postgresql://postgres.ref:hunter22@db.example:6543/postgres failed"),
    "connect postgresql://postgres.ref:***@db.example:6543/postgres failed",
  );
  assert.equal(clean("https://user:pw@example.com/x"), "https://user:***@example.com/x");
  assert.equal(
    clean("postgresql://postgres@127.0.0.1:5432/db"),
    "postgresql://postgres@127.0.0.1:5432/db",
  );
  // The functions' own log redactor: API keys and JWTs.
  const key = `sk_live_${"a".repeat(40)}`;
  assert.ok(!clean(`key ${key}`).includes(key));
  assert.equal(safeUrl("postgres://u:secret@h:1/d", clean), "postgres://u:***@h:1/d");
});

Deno.test("a finding prints one line, and for a failure its cause, fix and details", () => {
  const clean = redactor(["s3cret-token"]);
  assert.deepEqual(formatFinding("redis", ok("PONG"), clean), ["ok    redis: PONG"]);
  assert.deepEqual(formatFinding("jwks", skip("set SUPABASE_URL"), clean), [
    "skip  jwks: set SUPABASE_URL",
  ]);
  assert.deepEqual(
    formatFinding("redis", fail("refused", "token s3cret-token refused", "copy it", ["d"]), clean),
    [
      "FAIL  redis: refused",
      "      cause: token *** refused",
      "      fix:   copy it",
      "      d",
    ],
  );
  assert.equal(
    formatTotals([ok("a"), fail("b", "c", "d"), skip("e"), ok("f")]),
    "2 ok, 1 FAIL, 1 skipped",
  );
});

Deno.test("a check that throws or hangs is a failure, not a crash", async () => {
  const thrown = await runCheck(
    { name: "x", run: () => Promise.reject(new TypeError("boom")) },
    1000,
  );
  assert.equal(thrown.status, "fail");
  assert.match(thrown.status === "fail" ? thrown.cause : "", /TypeError: boom/);
  let release!: () => void;
  const hung = runCheck({
    name: "y",
    run: () => new Promise((resolve) => (release = () => resolve(ok("late")))),
  }, 20);
  const finding = await hung;
  release();
  assert.equal(finding.status, "fail");
  assert.match(finding.summary, /no answer within 0.02 s/);
});
