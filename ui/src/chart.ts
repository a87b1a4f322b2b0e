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
