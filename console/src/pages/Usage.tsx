/**
 * Usage: requests per hour (last 24 h) or per day (last 30 days), in total or of one key, split
 * into success, rate limited, client and server errors, as a chart (uPlot, loaded with this page
 * only) and a table (`/api/usage`, `/api/keys/{id}/usage`).
 */
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client.ts";
import type { components } from "../api/schema.gen.ts";
import { mode } from "../ui/state.ts";
import { ErrorNote, Table, useAction } from "../ui/parts.tsx";
import { SERIES, UsageChart } from "./UsageChart.tsx";

type Usage = components["schemas"]["Usage"];
type Key = components["schemas"]["ApiKey"];

export function Usage() {
  const [granularity, setGranularity] = useState<"hour" | "day">("hour");
  const [keyId, setKeyId] = useState("");
  const [keys, setKeys] = useState<Key[]>([]);
  const [usage, setUsage] = useState<Usage | null>(null);

  const loadKeys = useAction(async () => {
    const list = await unwrap(
      api.GET("/api/keys", { params: { query: { mode: mode.value, limit: 100 } } }),
    );
    setKeys(list.data);
  });
  const load = useAction(async () => {
    setUsage(
      keyId === ""
        ? await unwrap(
          api.GET("/api/usage", { params: { query: { granularity, mode: mode.value } } }),
        )
        : await unwrap(
          api.GET("/api/keys/{id}/usage", {
            params: { path: { id: keyId }, query: { granularity } },
          }),
        ),
    );
  });
  useEffect(() => {
    setKeyId("");
    void loadKeys.run();
  }, [mode.value]);
  useEffect(() => void load.run(), [granularity, keyId, mode.value]);

  const format = (iso: string) =>
    new Date(iso).toLocaleString(
      undefined,
      granularity === "hour" ? { hour: "2-digit", minute: "2-digit" } : { dateStyle: "medium" },
    );

  return (
    <>
      <h1>Usage ({mode.value})</h1>
      <div class="row card">
        <label>
          Per
          <select
            value={granularity}
            onChange={(e) => setGranularity(e.currentTarget.value as "hour" | "day")}
          >
            <option value="hour">hour (last 24 hours)</option>
            <option value="day">day (last 30 days)</option>
          </select>
        </label>
        <label>
          Key
          <select value={keyId} onChange={(e) => setKeyId(e.currentTarget.value)}>
            <option value="">all {mode.value} keys</option>
            {keys.map((k) => <option value={k.id} key={k.id}>{k.name} ({k.start}…)</option>)}
          </select>
        </label>
        <button type="button" class="secondary" onClick={() => void load.run()}>Refresh</button>
      </div>
      <ErrorNote error={load.error ?? loadKeys.error} />
      {usage && (
        <>
          <p role="status" class="totals">
            <strong data-testid="total-requests">{usage.totals.requests}</strong> requests:{" "}
            {SERIES.map(([k, label]) => `${usage.totals[k]} ${label.toLowerCase()}`).join(", ")}
          </p>
          <UsageChart usage={usage} />
          <Table
            caption={<>Requests per {granularity}, newest first</>}
            showCaption
            columns={[
              granularity === "hour" ? "Hour" : "Day",
              "Requests",
              ...SERIES.map(([, label]) => label),
            ]}
          >
            {[...usage.buckets].reverse().map((b) => (
              <tr key={b.start}>
                <td>{format(b.start)}</td>
                <td>{b.requests}</td>
                {SERIES.map(([k]) => <td key={k}>{b[k]}</td>)}
              </tr>
            ))}
          </Table>
        </>
      )}
    </>
  );
}
