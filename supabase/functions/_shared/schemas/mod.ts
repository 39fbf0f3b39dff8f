/**
 * The response schemas of every function, for handlers and the OpenAPI document.
 *
 * @module
 */
export * from "./common.ts";
export * from "./errors.ts";
export * from "./health.ts";
export * from "./identity.ts";
export * from "./keys.ts";
export * from "./usage.ts";
export * from "./vaults.ts";
export * from "./webhooks.ts";
export { respond } from "./respond.ts";
export * from "./openapi.ts";
