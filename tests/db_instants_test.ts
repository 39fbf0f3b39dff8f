/**
 * Instants leave PostgreSQL as the API shows them (`_shared/db/rows.ts`: `to_char` in UTC to the
 * millisecond), instead of going through a `Date`. This checks that the text is exactly what
 * `Date.prototype.toISOString()` gives for the same value, as the API answered before, over
 * random instants to the microsecond (the column's precision) across years 0002-9998, in
 * sessions of different time zones; and that a list ordered by `created_at` still sorts by the
 * instant, not by its text (which ties within a millisecond).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { isoText } from "../supabase/functions/_shared/db/rows.ts";
import { newestFirst } from "../supabase/functions/_shared/db/read.ts";
import { connectTestDb } from "./_db.ts";

/**
 * Microseconds since 1970 of 0002-01-01 and of 9998-12-31 23:59:59.999999, UTC: a year inside
 * each end, so that no session zone shows the value as BC or in year 10000.
 */
const FIRST = -62104060800000000n;
const LAST = 253370764799999999n;

Deno.test("an instant's text from PostgreSQL is its Date.toISOString()", async () => {
  const sql = connectTestDb(1);
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.bigInt({ min: FIRST, max: LAST }), { minLength: 1, maxLength: 200 }),
        fc.constantFrom("UTC", "America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham"),
        async (micros, zone) => {
          const rows = await sql.begin(async (tx) => {
            await tx`select set_config('TimeZone', ${zone}, true)`;
            return await tx.unsafe<{ text: string; shown: string }[]>(
              `select t::text as text, ${isoText("t")} as shown
                 from unnest($1::bigint[]) u,
                 lateral (select timestamptz 'epoch' + u * interval '1 microsecond' as t) i
                order by u`,
              [micros.map(String)],
            );
          });
          assert.equal(rows.length, micros.length);
          for (const row of rows) {
            // PostgreSQL's own text of the value, in the session's zone, read as a Date.
            assert.equal(row.shown, new Date(isoOfText(row.text)).toISOString(), row.text);
          }
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await sql.end();
  }
});

/** PostgreSQL's `timestamptz` text (`2026-01-02 03:04:05.678901+05:45`) as ISO 8601. */
function isoOfText(text: string): string {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d)(?::(\d\d))?(?::(\d\d))?$/
    .exec(text);
  if (!m) throw new Error(`unexpected timestamptz text: ${text}`);
  const [, y, mo, d, time, frac = "", h, mi = "00", sec] = m;
  // Date parses at most the milliseconds it keeps, truncating the rest, as to_char's MS does.
  const ms = frac === "" ? "" : (frac + "00").slice(0, 4);
  const offset = `${h}:${mi}`;
  if (sec !== undefined && sec !== "00") {
    // An offset with seconds (old local mean times) has no ISO form: shift by hand.
    const sign = h!.startsWith("-") ? -1 : 1;
    const base = Date.parse(`${y}-${mo}-${d}T${time}${ms}${offset}`);
    return new Date(base - sign * Number(sec) * 1000).toISOString();
  }
  return `${y}-${mo}-${d}T${time}${ms}${offset}`;
}

Deno.test("a list newest first sorts by the instant, not by its text", async () => {
  const sql = connectTestDb(1);
  try {
    const source = newestFirst(`id, ${isoText("created_at")} as created_at`, "pg_temp.things");
    const rows = await sql.begin(async (tx) => {
      await tx`create temporary table things (id text, created_at timestamptz) on commit drop`;
      // Two instants within one millisecond, the later with the smaller id: their texts tie,
      // and then `id desc` would put the earlier first.
      await tx`insert into pg_temp.things values
        ('a', '2026-01-02 03:04:05.678900+00'), ('b', '2026-01-02 03:04:05.678100+00')`;
      return await tx.unsafe<{ id: string; created_at: string }[]>(
        `select ${source.columns} from ${source.from} order by ${source.orderBy}`,
      );
    });
    assert.deepEqual(rows.map((r) => r.id), ["a", "b"]);
    assert.deepEqual(rows.map((r) => r.created_at), [
      "2026-01-02T03:04:05.678Z",
      "2026-01-02T03:04:05.678Z",
    ]);
  } finally {
    await sql.end();
  }
});
