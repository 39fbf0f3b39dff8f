/**
 * The API scopes of third-party apps: the closed set an app asks for (`/api/apps`) and a user
 * grants (`/api/grants`), with the database's rule for a set of them (`app_scopes_valid`:
 * writing or deleting vaults comes with reading them, because a write returns the row it wrote).
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import { APP_SCOPES } from "../auth/principal.ts";

export { APP_SCOPES, type AppScope } from "../auth/principal.ts";

/** An API scope. */
export const AppScopeSchema = z.enum(APP_SCOPES).register(components, {
  id: "AppScope",
});

/** API scopes as an answer shows them (an app's, a grant's): read back, never checked again. */
export const AppScopeList = z.array(AppScopeSchema).max(APP_SCOPES.length);

/** A set of API scopes: known, each once, and writing or deleting vaults with reading them. */
export const AppScopes = z.array(AppScopeSchema).min(1).max(APP_SCOPES.length)
  .check(
    (ctx) => {
      const scopes = ctx.value;
      if (new Set(scopes).size !== scopes.length) {
        ctx.issues.push({
          code: "custom",
          message: "a scope is listed twice",
          input: scopes,
        });
      } else if (
        !scopes.includes("vaults:read") &&
        (scopes.includes("vaults:write") || scopes.includes("vaults:delete"))
      ) {
        ctx.issues.push({
          code: "custom",
          message: "vaults:write and vaults:delete come with vaults:read",
          input: scopes,
        });
      }
    },
  );
