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
