// Explore logs: a LogQL query over a time range — a volume histogram, the lines newest
// first with their labels one click away — and a live tail over a WebSocket.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../html";
import { get, qs, socket } from "../api";
import { SeriesChart } from "../chart";
import { setParams, useLocation } from "../router";
import { RANGES } from "./metrics";

interface Stream {
  stream: Record<string, string>;
  values: [string, string][];
}

interface Line {
  ns: string;
  labels: Record<string, string>;
  text: string;
}

/** The lines of Loki streams, newest first. */
function flatten(streams: Stream[]): Line[] {
  const out = streams.flatMap((s) => s.values.map(([ns, text]) => ({ ns, labels: s.stream, text })));
  return out.sort((a, b) => (BigInt(b.ns) > BigInt(a.ns) ? 1 : BigInt(b.ns) < BigInt(a.ns) ? -1 : 0));
}

function when(ns: string): string {
  return new Date(Number(BigInt(ns) / 1_000_000n)).toISOString().replace("T", " ").replace("Z", "");
}

const MAX_LINES = 500;

export function LogsPage() {
  const { params } = useLocation();
  const [query, setQuery] = useState(params.get("query") ?? '{service=~".+"}');
  const [range, setRange] = useState(params.get("range") ?? "1h");
  const [lines, setLines] = useState<Line[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [live, setLive] = useState(false);
  const ws = useRef<WebSocket | null>(null);
  const chartEl = useRef<HTMLDivElement>(null);
  const chart = useRef<SeriesChart | null>(null);

  useEffect(() => {
    run();
    return () => {
      ws.current?.close();
      chart.current?.destroy();
    };
  }, []);

  async function run(e?: Event) {
    e?.preventDefault();
    setBusy(true);
    setParams({ query, range });
    const end = Math.floor(Date.now() / 1000);
    const span = RANGES[range] ?? 3600;
    const step = Math.max(1, Math.floor(span / 60));
    try {
      const [logs, volume] = await Promise.all([
        get<{ result: Stream[] }>(`/loki/api/v1/query_range?${qs({ query, start: end - span, end, limit: MAX_LINES, direction: "backward" })}`),
        get<{ result: { values: [number, string][] }[] }>(
          `/loki/api/v1/query_range?${qs({ query: `sum(count_over_time(${query} [${step}s]))`, start: end - span, end, step })}`,
        ).catch(() => ({ result: [] })),
      ]);
      setLines(flatten(logs.result));
      setError(null);
      if (chartEl.current) {
        chart.current ??= new SeriesChart(chartEl.current);
        chart.current.set(
          [{ label: "lines", points: (volume.result[0]?.values ?? []).map(([t, v]) => [t * 1000, Number(v)] as [number, number]) }],
          [(end - span) * 1000, end * 1000],
        );
      }
    } catch (err) {
      setLines(null);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  function toggleTail() {
    if (ws.current) {
      ws.current.close();
      ws.current = null;
      setLive(false);
      return;
    }
    const start = Math.floor(Date.now() / 1000);
    const s = socket(`/loki/api/v1/tail?${qs({ query, start })}`);
    s.onmessage = (m) => {
      const frame = JSON.parse(m.data) as { streams: Stream[] };
      setLines((old) => [...flatten(frame.streams), ...(old ?? [])].slice(0, MAX_LINES));
    };
    s.onclose = () => {
      if (ws.current === s) {
        ws.current = null;
        setLive(false);
      }
    };
    s.onerror = () => setError("the live tail was refused or broke off");
    ws.current = s;
    setLive(true);
  }

  return html`
    <section class="card">
      <form class="query" onSubmit=${run} aria-label="LogQL query">
        <input name="query" value=${query} onInput=${(e: any) => setQuery(e.currentTarget.value)}
          aria-label="LogQL expression" autocomplete="off" placeholder='{service="shop"} |= "error"' />
        <select aria-label="Time range" value=${range} onChange=${(e: any) => setRange(e.currentTarget.value)}>
          ${Object.keys(RANGES).map((r) => html`<option value=${r}>Last ${r}</option>`)}
        </select>
        <button type="submit" disabled=${busy}>${busy ? "Running…" : "Run"}</button>
        <button type="button" class=${live ? "live on" : "live"} aria-pressed=${live} onClick=${toggleTail}>
          ${live ? "● Live" : "Live tail"}</button>
      </form>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <div ref=${chartEl} class="chart small" data-testid="volume-chart"></div>
    </section>
    <section class="card">
      <ol class="lines" aria-label="Log lines" data-testid="log-lines">
        ${(lines ?? []).map((l) => {
          const key = l.ns + l.text;
          const expanded = open === key;
          return html`<li>
            <button class="line" aria-expanded=${expanded} onClick=${() => setOpen(expanded ? null : key)}>
              <time>${when(l.ns)}</time> <span class="labels">${Object.values(l.labels).join(" ")}</span> ${l.text}
            </button>
            ${expanded && html`<dl class="fields">${Object.entries(l.labels).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`}
          </li>`;
        })}
      </ol>
      ${lines && lines.length === 0 && html`<p class="hint">No lines in this range.</p>`}
    </section>
  `;
}
