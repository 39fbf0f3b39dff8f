/**
 * One description of a resource's shape: its output schema (`schemas/*.ts`, the shape the API
 * answers and the OpenAPI document shows). The row a handler reads, the select list that reads
 * it and the mapping that presents it all follow from that schema, instead of being written
 * again beside it as an interface, a column string and a field-by-field mapper.
 *
 * A field is read from the column of its name; an instant (`Timestamp`, an ISO 8601 string in
 * the API) is a `timestamptz` that PostgreSQL formats as the API shows it (`to_char` in UTC to
 * the millisecond, truncated: what `Date.prototype.toISOString()` gives for the same value, for
 * years 0000-9999), so no row goes through a `Date` on its way out: parsing each instant into a
 * `Date` and formatting it again cost about a tenth of a vault page's CPU (issue 26). Where the SQL
 * differs (a joined table, an alias), a handler names the expression for that field. The select
 * list is built from code constants only (the schema's keys and the handler's expressions, never
 * input), and every name is checked to be a plain SQL identifier.
 *
 * @module
 */
import { z } from "zod";

/** An instant of the API (`Timestamp`), nullable or not. */
type Instant = z.ZodISODateTime | z.ZodNullable<z.ZodISODateTime>;

/** What the database gives for a field of the output schema: an instant as its ISO text. */
type ColumnOf<F> = F extends z.ZodType ? z.output<F> : never;

/** The row a resource is read as: one column per field of its output schema `S`. */
export type RowOf<S extends z.ZodObject> = { [K in keyof S["shape"]]: ColumnOf<S["shape"][K]> };

/** How a resource is read and shown, from its output schema. */
export interface RowShape<S extends z.ZodObject, R extends RowOf<S> = RowOf<S>> {
  /** The select list: one column per field of the schema, then the extra columns. */
  readonly columns: string;
  /** The row as the API shows it: the schema's fields in its order, without the extra columns. */
  present(row: R): z.input<S>;
}

/** Options of {@link rowShape}. */
export interface RowShapeOptions<S extends z.ZodObject> {
  /** A table alias the plain columns are read from (`d` for `d.id`), in a join. */
  table?: string;
  /** The SQL of a field that is not the column of its name (`ev.type`), read `as` the field. */
  sql?: Partial<Record<Extract<keyof S["shape"], string>, string>>;
  /** Columns read beside the schema's fields and never shown (`epoch_shard`). */
  extra?: readonly string[];
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function identifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`"${name}" is not a plain SQL identifier`);
  return name;
}

/** The SQL of a `timestamptz` as the API's `Timestamp`: `2026-01-02T03:04:05.678Z`. */
export function isoText(expression: string): string {
  return `to_char(${expression} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

function isInstant(field: z.ZodType): field is Instant {
  return field instanceof z.ZodISODateTime ||
    (field instanceof z.ZodNullable && field.unwrap() instanceof z.ZodISODateTime);
}

/**
 * The select list and the presentation of the resource whose output schema is `schema`; `R` is
 * the row type when `extra` columns are read too (`RowOf<S> & { epoch_shard: number }`).
 */
export function rowShape<S extends z.ZodObject, R extends RowOf<S> = RowOf<S>>(
  schema: S,
  options: RowShapeOptions<S> = {},
): RowShape<S, R> {
  const sql: Partial<Record<string, string>> = options.sql ?? {};
  const prefix = options.table === undefined ? "" : `${identifier(options.table)}.`;
  const fields = Object.entries(schema.shape as Record<string, z.ZodType>);
  const columns = [
    ...fields.map(([name, field]) => {
      const own = sql[name];
      const expression = own ?? prefix + identifier(name);
      if (isInstant(field)) return `${isoText(expression)} as ${identifier(name)}`;
      return own === undefined ? expression : `${own} as ${identifier(name)}`;
    }),
    ...(options.extra ?? []).map((name) => prefix + identifier(name)),
  ].join(", ");
  const names = fields.map(([name]) => name);
  return {
    columns,
    present(row) {
      const values = row as Record<string, unknown>;
      const shown: Record<string, unknown> = {};
      for (const name of names) shown[name] = values[name];
      return shown as z.input<S>;
    },
  };
}
