/** The usage chart: one uPlot line per outcome over the buckets; the table says the same. */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { components } from "../api/schema.gen.ts";

/** The series, in the order the chart and the table show them. */
export const SERIES = [
  ["success", "Success (2xx)"],
  ["rate_limited", "Rate limited (429)"],
  ["client_errors", "Client errors (4xx)"],
  ["server_errors", "Server errors (5xx)"],
] as const;

const COLORS = ["#1a7f37", "#9a6700", "#b35900", "#cf222e"];

export function UsageChart({ usage }: { usage: components["schemas"]["Usage"] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const xs = usage.buckets.map((b) => Date.parse(b.start) / 1000);
    const data: uPlot.AlignedData = [
      xs,
      ...SERIES.map(([k]) => usage.buckets.map((b) => b[k])),
    ];
    const plot = new uPlot(
      {
        width: Math.max(320, Math.min(el.clientWidth || 800, 960)),
        height: 260,
        series: [
          {},
          ...SERIES.map(([, label], i) => ({ label, stroke: COLORS[i]!, width: 2 })),
        ],
        axes: [{}, { label: "requests" }],
      },
      data,
      el,
    );
    return () => plot.destroy();
  }, [usage]);
  return (
    <figure>
      <div ref={box} class="chart" aria-hidden="true" />
      <figcaption>
        Requests per {usage.granularity} by outcome (the table below has the figures).
      </figcaption>
    </figure>
  );
}
