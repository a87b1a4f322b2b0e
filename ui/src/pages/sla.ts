// Service levels: per probed service, the uptime over a window against a target — met or
// not, the probes' p95 response time, the hours under the target, the downtime and the
// error budget left (negative: overspent) — and per endpoint of a latency histogram, the
// request rate, p50/p95/p99 and error ratio, slowest first. Read from
// /api/v1/dashboard/sla and /api/v1/dashboard/performance, refreshed every 60 s.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { ApiError, get, qs } from "../api";
import { setParams, useLocation } from "../router";

interface ServiceLevel {
  service: string;
  uptimePercent: number;
  p95ResponseSeconds: number | null;
  violations: number;
  met: boolean;
  downtimeSeconds: number;
  errorBudgetRemaining: number;
}

interface Sla {
  window: string;
  targetPercent: number;
  services: ServiceLevel[];
}

interface Endpoint {
  requestsPerSecond: number;
  p50Seconds: number | null;
  p95Seconds: number | null;
  p99Seconds: number | null;
  errorRatio: number;
  [label: string]: string | number | null;
}

interface Performance {
  range: string;
  by: string;
  metric: string;
  endpoints: Endpoint[];
}

const REFRESH_MS = 60_000;
const WINDOWS = ["1d", "7d", "30d"];
const RANGES = ["15m", "1h", "24h"];

/** Seconds as milliseconds: 0.1234 → "123 ms". */
function ms(s: number | null | undefined): string {
  return s === null || s === undefined || !Number.isFinite(s) ? "—" : `${(s * 1000).toFixed(0)} ms`;
}

/** A duration in seconds, to the two largest units: 5400 → "1 h 30 min". */
export function duration(s: number): string {
  if (!Number.isFinite(s) || s <= 0) return "0 s";
  const d = Math.floor(s / 86_400), h = Math.floor((s % 86_400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${Math.floor(s % 60)} s`;
  return `${s.toFixed(0)} s`;
}

/** Endpoints slowest first (by p95; those without one last). */
export function slowestFirst(list: Endpoint[]): Endpoint[] {
  return [...list].sort((a, b) => (b.p95Seconds ?? -1) - (a.p95Seconds ?? -1));
}

/** Calls `tick` now and every REFRESH_MS until the component goes or `deps` change. */
function usePolling(tick: (alive: () => boolean) => void, deps: unknown[]) {
  useEffect(() => {
    let stop = false;
    const alive = () => !stop;
    tick(alive);
    const t = setInterval(() => tick(alive), REFRESH_MS);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, deps);
}

const failed = (alive: () => boolean, set: (m: string | null) => void) => (e: Error) =>
  alive() && !(e instanceof ApiError && e.status === 401) && set(e.message);

export function SlaPage() {
  const { params } = useLocation();
  const [win, setWin] = useState(WINDOWS.includes(params.get("window") ?? "") ? params.get("window")! : "30d");
  const [target, setTarget] = useState(params.get("target") || "99.9");
  const [range, setRange] = useState(RANGES.includes(params.get("range") ?? "") ? params.get("range")! : "1h");
  const [sla, setSla] = useState<Sla | null>(null);
  const [perf, setPerf] = useState<Performance | null>(null);
  const [slaError, setSlaError] = useState<string | null>(null);
  const [perfError, setPerfError] = useState<string | null>(null);

  usePolling((alive) => {
    get<Sla>("/api/v1/dashboard/sla?" + qs({ window: win, target })).then((s) => {
      if (!alive()) return;
      setSla(s);
      setSlaError(null);
    }, failed(alive, setSlaError));
  }, [win, target]);
  usePolling((alive) => {
    get<Performance>("/api/v1/dashboard/performance?" + qs({ range })).then((p) => {
      if (!alive()) return;
      setPerf(p);
      setPerfError(null);
    }, failed(alive, setPerfError));
  }, [range]);

  const by = perf?.by ?? "endpoint";
  const endpoints = slowestFirst(perf?.endpoints ?? []);
  return html`
    <section class="card">
      <div class="chart-head">
        <h2>Service levels</h2>
        <small class="hint">Uptime and response time from the probes' <code>probe_success</code> and <code>probe_duration_seconds</code>. Refreshed every ${REFRESH_MS / 1000} s.</small>
      </div>
      <form class="filters" aria-label="Service-level settings" onSubmit=${(e: any) => {
        e.preventDefault();
        const t = (e.currentTarget.elements.namedItem("target") as HTMLInputElement).value;
        setTarget(t);
        setParams({ target: t });
      }}>
        <label>Window
          <select name="window" value=${win} onChange=${(e: any) => { setWin(e.currentTarget.value); setParams({ window: e.currentTarget.value }); }}>
            ${WINDOWS.map((w) => html`<option value=${w}>${w}</option>`)}
          </select></label>
        <label>Target, %
          <input name="target" type="number" min="0" step="any" value=${target}
            onChange=${(e: any) => { setTarget(e.currentTarget.value); setParams({ target: e.currentTarget.value }); }} /></label>
      </form>
      ${slaError && html`<p class="error" role="alert">${slaError}</p>`}
      <table class="grid" aria-label="Service levels" data-testid="sla-services">
        <thead><tr>
          <th scope="col">Service</th><th scope="col" class="num">Uptime</th><th scope="col">Target</th>
          <th scope="col" class="num"><abbr title="95th percentile of the probes' response time">p95</abbr></th>
          <th scope="col" class="num"><abbr title="Hours of the window whose uptime fell below the target">Violations, hours</abbr></th>
          <th scope="col" class="num">Downtime</th>
          <th scope="col" class="num"><abbr title="Share of the downtime the target allows that is left; negative: overspent">Error budget left</abbr></th>
        </tr></thead>
        <tbody>
          ${(sla?.services ?? []).map((s) => html`<tr key=${s.service} data-service=${s.service}>
            <td>${s.service}</td>
            <td class="num">${s.uptimePercent.toFixed(3)} %</td>
            <td><span class=${"badge " + (s.met ? "kkt-ok" : "kkt-critical")}>${s.met ? "met" : "missed"}</span></td>
            <td class="num">${ms(s.p95ResponseSeconds)}</td>
            <td class="num">${s.violations}</td>
            <td class="num">${duration(s.downtimeSeconds)}</td>
            <td class=${"num" + (s.errorBudgetRemaining < 0 ? " error" : "")} title=${s.errorBudgetRemaining < 0 ? "overspent" : undefined}>${(s.errorBudgetRemaining * 100).toFixed(1)} %</td>
          </tr>`)}
        </tbody>
      </table>
      ${sla && sla.services.length === 0 && html`<p class="hint" data-testid="sla-empty">No probed services: service levels come from the probes, so add a <code>probes:</code> section to dozor.yml.</p>`}
      ${sla && html`<p class="hint">Target ${sla.targetPercent} % over ${sla.window}.</p>`}
    </section>
    <section class="card">
      <div class="chart-head">
        <h2>Endpoint performance</h2>
        <small class="hint">From the <code>${perf?.metric ?? "http_request_duration_seconds"}</code> histogram, slowest p95 first.</small>
        <label class="inline kkt-filter">Range
          <select name="range" value=${range} onChange=${(e: any) => { setRange(e.currentTarget.value); setParams({ range: e.currentTarget.value }); }}>
            ${RANGES.map((r) => html`<option value=${r}>${r}</option>`)}
          </select></label>
      </div>
      ${perfError && html`<p class="error" role="alert">${perfError}</p>`}
      <table class="grid" aria-label="Endpoint performance" data-testid="performance">
        <thead><tr>
          <th scope="col">${by[0].toUpperCase() + by.slice(1)}</th><th scope="col" class="num">Requests / s</th>
          <th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th>
          <th scope="col" class="num">Errors</th>
        </tr></thead>
        <tbody>
          ${endpoints.map((e) => html`<tr key=${String(e[by])} data-endpoint=${String(e[by] ?? "")}>
            <td><code>${e[by] || "—"}</code></td>
            <td class="num">${e.requestsPerSecond.toFixed(2)}</td>
            <td class="num">${ms(e.p50Seconds)}</td><td class="num">${ms(e.p95Seconds)}</td><td class="num">${ms(e.p99Seconds)}</td>
            <td class=${"num" + (e.errorRatio > 0.01 ? " error" : "")}>${(e.errorRatio * 100).toFixed(2)} %</td>
          </tr>`)}
        </tbody>
      </table>
      ${perf && endpoints.length === 0 && html`<p class="hint" data-testid="performance-empty">No endpoints: this needs an <code>http_request_duration_seconds</code> histogram with an <code>endpoint</code> label among the ingested metrics.</p>`}
    </section>
  `;
}
