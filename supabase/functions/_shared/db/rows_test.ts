import assert from "node:assert/strict";
import { z } from "zod";
import { isoText, type RowOf, rowShape } from "./rows.ts";
import { Timestamp, Ulid } from "../schemas/common.ts";

const Thing = z.object({
  id: Ulid,
  name: z.string(),
  kind: z.string(),
  tags: z.array(z.string()),
  seen_at: Timestamp.nullable().meta({ description: "When it was last seen" }),
  created_at: Timestamp,
});

const iso = (column: string) =>
  `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

Deno.test("the select list is the schema's fields in order, with the SQL given for some", () => {
  assert.equal(
    rowShape(Thing).columns,
    `id, name, kind, tags, ${iso("seen_at")} as seen_at, ${iso("created_at")} as created_at`,
  );
  const joined = rowShape(Thing, { table: "t", sql: { kind: "k.name" }, extra: ["shard"] });
  assert.equal(
    joined.columns,
    `t.id, t.name, k.name as kind, t.tags, ${iso("t.seen_at")} as seen_at, ` +
      `${iso("t.created_at")} as created_at, t.shard`,
  );
  assert.equal(isoText("x.at"), iso("x.at"));
});

Deno.test("a name that is not a plain SQL identifier is refused at start", () => {
  const Odd = z.object({ "id; drop table x": z.string() });
  assert.throws(() => rowShape(Odd), /not a plain SQL identifier/);
  assert.throws(() => rowShape(Thing, { extra: ["a b"] }), /not a plain SQL identifier/);
  assert.throws(() => rowShape(Thing, { table: "t--" }), /not a plain SQL identifier/);
});

Deno.test("a row is shown in the schema's order, extra columns never", () => {
  const shape = rowShape<typeof Thing, RowOf<typeof Thing> & { shard: number }>(Thing, {
    extra: ["shard"],
  });
  const row = {
    shard: 7,
    created_at: "2026-01-02T03:04:05.678Z",
    seen_at: null,
    tags: ["a"],
    kind: "k",
    name: "n",
    id: "01JBG7XKQM9F3Y8W2Z5N4P1R6T",
  };
  const shown = shape.present(row);
  assert.equal(
    JSON.stringify(shown),
    '{"id":"01JBG7XKQM9F3Y8W2Z5N4P1R6T","name":"n","kind":"k","tags":["a"],"seen_at":null,' +
      '"created_at":"2026-01-02T03:04:05.678Z"}',
  );
  const seen = shape.present({ ...row, seen_at: "1970-01-01T00:00:00.000Z" });
  assert.equal(seen.seen_at, "1970-01-01T00:00:00.000Z");
  assert.ok(Thing.safeParse(seen).success);
});
