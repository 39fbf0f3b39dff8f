/**
 * Names of the OpenAPI document's schema components, held by the schemas themselves: a schema
 * that is a component is registered here with its name where it is defined
 * (`.register(components, { id: "Vault" })`), and the document (`openapi/document.ts`) takes
 * the names from this registry. No table elsewhere lists them, so a new operation's schemas
 * need nothing beyond their own definition.
 *
 * A zod registry of its own, not zod's global one: an `id` in the global registry would make
 * every conversion (query parameters included) pull the schema out into `$defs`.
 *
 * @module
 */
import { z } from "zod";

/** The component schemas of the document, each with its name. */
export const components = z.registry<{ id: string }, z.ZodType>();

/** The component name of `schema`, or undefined when it is not a component. */
export function componentId(schema: z.ZodType): string | undefined {
  // `get` would inherit a parent's metadata; a component is the registered schema itself.
  return components.has(schema) ? components.get(schema)?.id : undefined;
}

/** Every component schema loaded so far, by name, in the order of their names. */
export function allComponents(): Array<[string, z.ZodType]> {
  return [...components._idmap.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
}
