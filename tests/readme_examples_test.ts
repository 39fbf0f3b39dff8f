/**
 * The README's examples run against the dev server, so they never rot: every fenced block whose
 * info string is `sh example` runs with bash (`set -euo pipefail`), every `js example` block with
 * `deno run`, each with `$TORVUS_API_URL` (the server under test), `$TORVUS_API_KEY` (a fresh
 * test key with `read` and `write`), `$ACCESS_TOKEN` (a fresh user's token) and `$KEY_OWNER_TOKEN`
 * (the token of the key's owner), and each must
 * exit 0. curl calls must use `--fail-with-body`, so an error answer fails the example.
 */
import assert from "node:assert/strict";
import { BASE_URL, e2e } from "./_harness.ts";
import { closeDbLast, newKey, newUser } from "./_fixtures.ts";

const README = new URL("../README.md", import.meta.url);
const CONFIG = new URL("../deno.json", import.meta.url);
const TIMEOUT_MS = 30_000;

/** One example block of the README. */
export interface Example {
  lang: "sh" | "js";
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
}

/** The fenced blocks tagged `sh example` or `js example`, in order. */
export function extractExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(sh|js)\s+example\s*$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j]!;
      if (line.trim().startsWith(fence!) && line.trim().replace(/[`~]/g, "") === "") break;
      body.push(line.startsWith(indent!) ? line.slice(indent!.length) : line);
    }
    examples.push({ lang: lang as Example["lang"], line: i + 1, code: body.join("\n") + "\n" });
    i = j;
  }
  return examples;
}

/** `$NAME` and `${NAME}` of the given variables replaced by their values. */
export function substitute(code: string, values: Record<string, string>): string {
  return code.replace(/\$(?:\{([A-Z_]+)\}|([A-Z_]+)\b)/g, (whole, braced, bare) => {
    const name = braced ?? bare;
    return Object.hasOwn(values, name) ? values[name]! : whole;
  });
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[], env: Record<string, string>): Promise<Run> {
  const child = new Deno.Command(command, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

async function runExample(example: Example, values: Record<string, string>): Promise<Run> {
  const env = { ...values, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1" };
  if (example.lang === "sh") {
    // Environment variables are the shell's own substitution; the text is substituted too,
    // so a block that quotes them in single quotes still gets the values.
    return await run("bash", ["-c", `set -euo pipefail\n${substitute(example.code, values)}`], env);
  }
  const dir = await Deno.makeTempDir({ prefix: "torvus-readme-" });
  try {
    const file = `${dir}/example.mjs`;
    await Deno.writeTextFile(file, substitute(example.code, values));
    // The API's host, any port: the webhook example listens there for its deliveries.
    const host = new URL(values.TORVUS_API_URL!).hostname;
    return await run(Deno.execPath(), [
      "run",
      `--allow-net=${host}`,
      "--allow-env",
      "--no-prompt",
      "--no-lock",
      `--config=${CONFIG.pathname}`,
      file,
    ], env);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("extractExamples() takes only blocks tagged as examples, with their text", () => {
  const md = [
    "```sh",
    "echo not me",
    "```",
    "```sh example",
    "curl --fail-with-body -s $TORVUS_API_URL/x",
    "```",
    "  ```js example",
    "  console.log(1);",
    "  ```",
  ].join("\n");
  assert.deepEqual(extractExamples(md), [
    { lang: "sh", line: 4, code: "curl --fail-with-body -s $TORVUS_API_URL/x\n" },
    { lang: "js", line: 7, code: "console.log(1);\n" },
  ]);
  assert.equal(
    substitute("a $TORVUS_API_URL ${ACCESS_TOKEN} $HOME ${api}", {
      TORVUS_API_URL: "u",
      ACCESS_TOKEN: "t",
    }),
    "a u t $HOME ${api}",
  );
});

const examples = extractExamples(await Deno.readTextFile(README));

if (examples.length === 0) {
  Deno.test("README.md has runnable examples", () => {
    assert.fail(
      "no examples were found in README.md: add fenced blocks with the info string " +
        "`sh example` or `js example` (they are run against the dev server)",
    );
  });
}

for (const example of examples) {
  const first = example.code.split("\n").find((l) => l.trim() !== "" && !l.startsWith("#")) ?? "";
  e2e(
    `README.md:${example.line} (${example.lang}) runs: ${first.trim().slice(0, 60)}`,
    async () => {
      if (example.lang === "sh") {
        const curls = example.code.split("\n").filter((l) => /(^|[\s;|&(])curl\s/.test(l));
        for (const curl of curls) {
          assert.match(curl, /--fail-with-body/, `curl without --fail-with-body: ${curl.trim()}`);
        }
      }
      const key = await newKey({ scopes: ["read", "write"] });
      const user = await newUser();
      const owner = await newUser(3600, key.email);
      const values = {
        TORVUS_API_URL: BASE_URL.replace(/\/+$/, ""),
        TORVUS_API_KEY: key.key,
        ACCESS_TOKEN: user.token,
        KEY_OWNER_TOKEN: owner.token,
      };
      const result = await runExample(example, values);
      assert.equal(
        result.code,
        0,
        `README.md:${example.line} exited ${result.code}\n--- stdout\n${result.stdout}` +
          `\n--- stderr\n${result.stderr}`,
      );
    },
  );
}

closeDbLast("README examples");
