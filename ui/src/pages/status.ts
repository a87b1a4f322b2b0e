import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../html";
import { ApiError, get } from "../api";
import { LiveChart, short, type Points } from "../chart";

interface Status {
  version: string;
  build: { profile: string };
  uptimeSeconds: number;
  tenant: string;
  stateStore: { backend: string };
  storage: { stateDbBytes: number; auditRecords: number; auditBytes: number };
}

interface Series {
  name: string;
  help: string;
  points: Points;
}

const REFRESH_MS = 2000;
const PREFERRED = ["demo_shop_log_lines_per_second", "dozor_http_requests_per_second", "process_resident_memory_bytes"];

function uptime(s: number): string {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
}

interface Health {
  status: string;
  services: { total: number; ok: number; degraded: number; down: number };
}

/** The overview cards: health of Dozor and the probed services, firing alerts, and the
 * rate records come in from the sources. */
function Overview() {
  const [health, setHealth] = useState<Health | null>(null);
  const [firing, setFiring] = useState<number | null>(null);
  const [ingest, setIngest] = useState<number | null>(null);
  const [clusters, setClusters] = useState<{ id: string; template: string; count: number; services: string[] }[]>([]);
  const [slos, setSlos] = useState<{ name: string; objective: number; budgetRemaining: number | null; burnRate: Record<string, number | null> }[]>([]);
  useEffect(() => {
    let stop = false;
    const tick = () => {
      get<Health>("/api/v1/health").then((h) => !stop && setHealth(h), () => undefined);
      get<{ alerts: { state: string }[] }>("/api/v1/alerts").then(
        (a) => !stop && setFiring(a.alerts.filter((x) => x.state === "firing").length),
        () => undefined,
      );
      get<{ slos: typeof slos }>("/api/v1/slos").then((s) => !stop && setSlos(s.slos), () => undefined);
      get<{ clusters: { id: string; template: string; count: number; services: string[] }[] }>("/api/v1/ai/error-clusters?limit=5").then(
        (c) => !stop && setClusters(c.clusters),
        () => undefined,
      );
      get<{ result: { value: [number, string] }[] }>("/api/v1/query?query=" + encodeURIComponent("sum(rate(dozor_source_records_total[5m]))")).then(
        (r) => !stop && setIngest(r.result.length ? Number(r.result[0].value[1]) : 0),
        () => undefined,
      );
    };
    tick();
    const t = setInterval(tick, 10_000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, []);
  return html`
    <section class="cards" aria-label="Overview">
      <div class="card stat" data-testid="health"><h3>Health</h3><b class=${"health " + (health?.status ?? "")}>${health?.status ?? "…"}</b>
        <small>${health ? `${health.services.ok} of ${health.services.total} services ok` : ""}</small></div>
      <div class="card stat" data-testid="firing"><h3>Firing alerts</h3><b>${firing ?? "…"}</b></div>
      <div class="card stat"><h3>Records in / s</h3><b>${ingest === null ? "…" : short(ingest)}</b><small>from sources, 5 min</small></div>
    </section>
    ${slos.length > 0 && html`<section class="card">
      <h2>Service-level objectives</h2>
      <table class="grid" aria-label="SLOs">
        <thead><tr><th>SLO</th><th class="num">Objective</th><th class="num">Budget left</th><th class="num">Burn 1 h</th><th class="num">Burn 3 d</th></tr></thead>
        <tbody>${slos.map((s) => html`<tr><td>${s.name}</td><td class="num">${(s.objective * 100).toFixed(2)} %</td>
          <td class="num">${s.budgetRemaining === null ? "—" : (s.budgetRemaining * 100).toFixed(1) + " %"}</td>
          <td class="num">${s.burnRate["1h"] == null ? "—" : s.burnRate["1h"]!.toFixed(2) + "×"}</td>
          <td class="num">${s.burnRate["3d"] == null ? "—" : s.burnRate["3d"]!.toFixed(2) + "×"}</td></tr>`)}</tbody>
      </table>
    </section>`}
    <section class="card">
      <h2>Top error clusters, last 24 h</h2>
      <table class="grid" aria-label="Error clusters">
        <tbody>${clusters.map((c) => html`<tr><td class="num">${c.count}</td><td><code>${c.template}</code></td><td><small>${c.services.join(", ")}</small></td></tr>`)}</tbody>
      </table>
      ${clusters.length === 0 && html`<p class="hint">No error repeated five times.</p>`}
    </section>
  `;
}

export function StatusPage() {
  const [status, setStatus] = useState<Status | null>(null);
  const [series, setSeries] = useState<Series[]>([]);
  const [chosen, setChosen] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const chartEl = useRef<HTMLDivElement>(null);
  const chart = useRef<LiveChart | null>(null);

  useEffect(() => {
    let stop = false;
    async function tick() {
      try {
        const [st, hist] = await Promise.all([get<Status>("/api/v1/status"), get<{ series: Series[] }>("/api/v1/status/history")]);
        if (stop) return;
        setStatus(st);
        setSeries(hist.series);
        setError(null);
      } catch (e) {
        if (!stop && !(e instanceof ApiError && e.status === 401)) setError((e as Error).message);
      }
    }
    tick();
    const timer = setInterval(tick, REFRESH_MS);
    return () => {
      stop = true;
      clearInterval(timer);
    };
  }, []);

  const name = chosen ?? PREFERRED.find((p) => series.some((s) => s.name === p && s.points.length > 0)) ?? series[0]?.name;
  const current = series.find((s) => s.name === name);

  useEffect(() => {
    if (!chartEl.current || !current) return;
    chart.current ??= new LiveChart(chartEl.current, current.name);
    chart.current.set(current.name, current.points);
  }, [current]);
  useEffect(() => () => chart.current?.destroy(), []);

  const last = current?.points.at(-1)?.[1];
  return html`
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <${Overview} />
      <section class="cards" aria-label="Status">
        <div class="card stat"><h3>Version</h3><b>${status?.version ?? "…"}</b><small>${status?.build.profile}</small></div>
        <div class="card stat"><h3>Uptime</h3><b>${status ? uptime(status.uptimeSeconds) : "…"}</b></div>
        <div class="card stat"><h3>State store</h3><b>${status?.stateStore.backend ?? "…"}</b><small>${status ? short(status.storage.stateDbBytes) + "B" : ""}</small></div>
        <div class="card stat"><h3>Audit records</h3><b>${status?.storage.auditRecords ?? "…"}</b><small>${status ? short(status.storage.auditBytes) + "B" : ""}</small></div>
      </section>
      <section class="card">
        <div class="chart-head">
          <h2>${current?.help ?? "Self-metrics"}</h2>
          <span class="now">${last === undefined ? "" : short(last)}</span>
          <select aria-label="Series" value=${name} onChange=${(e: any) => setChosen(e.currentTarget.value)}>
            ${series.map((s) => html`<option value=${s.name}>${s.name}</option>`)}
          </select>
        </div>
        <div ref=${chartEl} class="chart" data-testid="live-chart"></div>
        <p class="hint">Refreshed every ${REFRESH_MS / 1000} s from /api/v1/status/history.</p>
      </section>
  `;
}
