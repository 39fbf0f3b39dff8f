/**
 * Reading a resource as the caller: one item by its id, or one page of a list with the number of
 * items the whole list holds (what every list operation answers as `data` and `pagination`, see
 * `schemas/common.ts`).
 *
 * A page and its total come from one statement, `count(*) over ()` riding on every row, so a list
 * stays a single round trip. A page past the end has no rows to carry that count: only then does
 * a second statement count the list.
 *
 * @module
 */
import type postgres from "postgres";
import type { Tx } from "./client.ts";

/** Where a resource's items are read. The strings are trusted SQL of the handler, never input. */
export interface Source {
  /** The select list of an item. */
  columns: string;
  /** The table, or join, the items come from. */
  from: string;
  /** The order of a list; it ends with a unique column, so that pages never overlap. */
  orderBy: string;
}

/**
 * A resource listed newest first: by `created_at`, then by `id` so that pages never overlap;
 * `alias` names the table of those columns in a join. The columns are qualified by their table:
 * a bare `created_at` in ORDER BY would name the select list's `created_at`, which is the
 * instant's text (db/rows.ts), and sorting by it could not use the table's index.
 */
export function newestFirst(columns: string, from: string, alias?: string): Source {
  const at = `${alias ?? from}.`;
  return { columns, from, orderBy: `${at}created_at desc, ${at}id desc` };
}

/** The page a client asked for (the list's query). */
export interface PageRequest {
  limit: number;
  offset: number;
}

/** A page's items, and its `pagination` as the API answers it. */
export interface Page<R> {
  rows: R[];
  pagination: { limit: number; offset: number; total: number };
}

/**
 * Runs `fn` in a transaction as the caller (RLS decides which items they see). A statement `fn`
 * returns unawaited is the whole transaction in one round trip (see `inTransaction`).
 */
export type RunAsCaller = <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>;

/** The item `id` of `source` (its column `id`), if the caller may see it. */
export async function readById<R extends object>(
  run: RunAsCaller,
  source: Source,
  id: string,
): Promise<R | undefined> {
  const [row] = await run((tx) =>
    tx<R[]>`select ${tx.unsafe(source.columns)} from ${tx.unsafe(source.from)} where id = ${id}`
  );
  return row;
}

/**
 * Reads the page `page` of the items of `source` that pass the request's filter `where` (built
 * in the transaction it runs in), with the number of those items in all.
 */
export async function readPage<R extends object>(
  run: RunAsCaller,
  source: Source,
  page: PageRequest,
  where: (tx: Tx) => postgres.Fragment,
): Promise<Page<R>> {
  const rows = await run((tx) =>
    tx<(R & { total: string })[]>`select ${tx.unsafe(source.columns)}, count(*) over () as total
      from ${tx.unsafe(source.from)}
      where ${where(tx)}
      order by ${tx.unsafe(source.orderBy)}
      limit ${page.limit} offset ${page.offset}`
  );
  const total = rows[0] !== undefined
    ? Number(rows[0].total)
    : page.offset === 0
    ? 0
    : await run(async (tx) => {
      const [row] = await tx<{ n: string }[]>`select count(*) as n
        from ${tx.unsafe(source.from)} where ${where(tx)}`;
      return Number(row?.n ?? 0);
    });
  return { rows, pagination: { limit: page.limit, offset: page.offset, total } };
}
