/**
 * The admin tool's operations, for the CLI and for tests that call them in-process. Each takes
 * a postgres.js client (or transaction) connected as an operator role, validates its input with
 * zod and throws {@link AdminError} (with the CLI exit code) for bad input or unknown objects.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./keys.ts";
export * from "./tiers.ts";
export * from "./users.ts";
