/**
 * Run in a fresh process by the cold-start measurement: prints, as one JSON line, how long the
 * runtime took to reach this module (`bootMs`, since process start) and how long a dynamic
 * `import()` of the module given as the first argument took (`importMs`).
 *
 * @module
 */
const bootMs = performance.now();
const specifier = Deno.args[0];
if (specifier === undefined) {
  console.error("usage: import_probe.ts <module URL or path>");
  Deno.exit(2);
}
const started = performance.now();
await import(new URL(specifier, `file://${Deno.cwd()}/`).href);
const importMs = performance.now() - started;
console.log(JSON.stringify({ bootMs, importMs }));
Deno.exit(0);
