// A live time-series chart on uPlot: fixed size to its container, redrawn in place when new
// points arrive.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export type Points = [number, number][];

export class LiveChart {
  private plot: uPlot | null = null;

  constructor(
    private readonly el: HTMLElement,
    private label: string,
  ) {}

  /** Replaces the data; `points` are [ms since epoch, value]. */
  set(label: string, points: Points) {
    const xs = points.map((p) => p[0] / 1000);
    const ys = points.map((p) => p[1]);
    this.el.dataset.points = String(points.length);
    this.el.dataset.series = label;
    if (this.plot && label === this.label) {
      this.plot.setData([xs, ys]);
      return;
    }
    this.label = label;
    this.plot?.destroy();
    const width = Math.max(320, this.el.clientWidth);
    this.plot = new uPlot(
      {
        width,
        height: 280,
        scales: { x: { time: true } },
        axes: [{ stroke: "#8a94a6" }, { stroke: "#8a94a6", size: 70, values: (_u, v) => v.map(short) }],
        series: [{}, { label, stroke: "#2f7df6", width: 2, fill: "rgba(47,125,246,0.12)", points: { show: false } }],
        legend: { show: true },
      },
      [xs, ys],
      this.el,
    );
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
  }
}

/** 1234567 → "1.23M". */
export function short(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (a === 0) return "0";
  return a < 1 ? v.toFixed(3) : v.toFixed(1);
}

/** One line of a chart: a label and [ms, value] points (null: a gap). */
export interface Line {
  label: string;
  points: [number, number | null][];
}

const PALETTE = ["#2f7df6", "#12b76a", "#f79009", "#d92d20", "#7a5af8", "#06aed4", "#ee46bc", "#667085"];

/** A chart of several series over one time axis (PromQL and LogQL range results). */
export class SeriesChart {
  private plot: uPlot | null = null;
  private labels = "";

  constructor(private readonly el: HTMLElement) {}

  /** Draws `lines`; `range` ([ms, ms]) fixes the time axis to the query's window. */
  set(lines: Line[], range?: [number, number]) {
    const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const ys = lines.map((l) => {
      const col: (number | null)[] = new Array(xs.length).fill(null);
      for (const [t, v] of l.points) col[index.get(t)!] = v;
      return col;
    });
    this.el.dataset.points = String(lines.reduce((n, l) => n + l.points.length, 0));
    this.el.dataset.series = String(lines.length);
    const data = [xs.map((x) => x / 1000), ...ys] as uPlot.AlignedData;
    const labels = lines.map((l) => l.label).join("\n");
    const x = range ? { min: range[0] / 1000, max: range[1] / 1000 } : null;
    if (this.plot && labels === this.labels) {
      this.plot.setData(data, !x);
      if (x) this.plot.setScale("x", x);
      return;
    }
    this.labels = labels;
    this.plot?.destroy();
    this.plot = new uPlot(
      {
        width: Math.max(320, this.el.clientWidth),
        height: 280,
        scales: { x: x ? { time: true, range: () => [x.min, x.max] } : { time: true } },
        axes: [{ stroke: "#8a94a6" }, { stroke: "#8a94a6", size: 70, values: (_u, v) => v.map(short) }],
        series: [
          {},
          ...lines.map((l, i) => ({
            label: l.label,
            stroke: PALETTE[i % PALETTE.length],
            width: 2,
            // A lone sample would be invisible as a line.
            points: { show: l.points.length < 3 },
          })),
        ],
        legend: { show: lines.length <= 12 },
      },
      data,
      this.el,
    );
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
  }
}

/** `{a="1", b="2"}` of a label set, `__name__` first as the metric name. */
export function seriesName(labels: Record<string, string>): string {
  const { __name__: name, ...rest } = labels;
  const inner = Object.entries(rest)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ");
  return `${name ?? ""}{${inner}}`;
}
