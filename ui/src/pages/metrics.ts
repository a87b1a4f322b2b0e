// Explore metrics: a PromQL query over a time range, drawn and tabled; the query and range
// live in the URL, so a view is a link to share.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../html";
import { get, qs } from "../api";
import { SeriesChart, seriesName, short } from "../chart";
import { setParams, useLocation } from "../router";

interface RangeResult {
  resultType: string;
  result: { metric: Record<string, string>; values: [number, string][] }[];
}

export const RANGES: Record<string, number> = { "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };

/** Completions of the word before the cursor: label names inside `{…}`, metric names
 * elsewhere; at most 8, and none for an empty word or an exact match. */
export function suggest(query: string, cursor: number, names: string[], labels: string[]) {
  const before = query.slice(0, cursor);
  const word = before.match(/[A-Za-z_:][A-Za-z0-9_:]*$/)?.[0] ?? "";
  if (!word) return null;
  const inBraces = before.lastIndexOf("{") > before.lastIndexOf("}");
  const pool = inBraces ? labels : names;
  const words = pool.filter((n) => n.startsWith(word) && n !== word).slice(0, 8);
  return words.length ? { start: cursor - word.length, words, kind: inBraces ? "label" : "metric" } : null;
}

export function MetricsPage() {
  const { params } = useLocation();
  const [query, setQuery] = useState(params.get("query") ?? "");
  const [range, setRange] = useState(params.get("range") ?? "1h");
  const [result, setResult] = useState<RangeResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [names, setNames] = useState<string[]>([]);
  const [labels, setLabels] = useState<string[]>([]);
  const [cursor, setCursor] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const chartEl = useRef<HTMLDivElement>(null);
  const chart = useRef<SeriesChart | null>(null);
  const window_ = useRef<[number, number] | undefined>(undefined);

  useEffect(() => {
    get<string[]>("/api/v1/label/__name__/values").then(setNames, () => setNames([]));
    get<string[]>("/api/v1/labels").then((l) => setLabels(l.filter((x) => x !== "__name__")), () => setLabels([]));
    if (query) run();
    return () => chart.current?.destroy();
  }, []);

  async function run(e?: Event) {
    e?.preventDefault();
    if (!query.trim()) return;
    setBusy(true);
    setParams({ query, range });
    const end = Math.floor(Date.now() / 1000);
    const span = RANGES[range] ?? 3600;
    const step = Math.max(1, Math.floor(span / 240));
    try {
      const r = await get<RangeResult>(`/api/v1/query_range?${qs({ query, start: end - span, end, step })}`);
      window_.current = [(end - span) * 1000, end * 1000];
      setResult(r);
      setError(null);
    } catch (err) {
      setResult(null);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    if (!chartEl.current || !result) return;
    chart.current ??= new SeriesChart(chartEl.current);
    chart.current.set(
      result.result.map((s) => ({
        label: seriesName(s.metric),
        points: s.values.map(([t, v]) => [t * 1000, Number(v)] as [number, number]),
      })),
      window_.current,
    );
  }, [result]);

  return html`
    <section class="card">
      <form class="query" onSubmit=${run} aria-label="PromQL query">
        <input ref=${input} name="query" placeholder="PromQL, e.g. rate(http_requests_total[5m])" value=${query}
          onInput=${(e: any) => { setQuery(e.currentTarget.value); setCursor(e.currentTarget.selectionStart ?? 0); }}
          aria-label="PromQL expression" autocomplete="off" aria-autocomplete="list" aria-controls="suggestions" />
        <select aria-label="Time range" value=${range} onChange=${(e: any) => setRange(e.currentTarget.value)}>
          ${Object.keys(RANGES).map((r) => html`<option value=${r}>Last ${r}</option>`)}
        </select>
        <button type="submit" disabled=${busy}>${busy ? "Running…" : "Run"}</button>
      </form>
      ${(() => {
        const s = suggest(query, cursor, names, labels);
        if (!s) return null;
        const pick = (word: string) => {
          const next = query.slice(0, s.start) + word + query.slice(cursor);
          setQuery(next);
          setCursor(s.start + word.length);
          input.current?.focus();
        };
        return html`<ul id="suggestions" class="suggestions" aria-label=${s.kind === "label" ? "Label names" : "Metric names"}>
          ${s.words.map((w) => html`<li><button type="button" class="link" onClick=${() => pick(w)}>${w}</button></li>`)}</ul>`;
      })()}
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <div ref=${chartEl} class="chart" data-testid="query-chart"></div>
    </section>
    ${result && html`
      <section class="card">
        <table class="grid" aria-label="Series">
          <thead><tr><th>Series</th><th class="num">Last value</th></tr></thead>
          <tbody>
            ${result.result.map((s) => html`<tr><td><code>${seriesName(s.metric)}</code></td>
              <td class="num">${s.values.length ? short(Number(s.values[s.values.length - 1][1])) : ""}</td></tr>`)}
          </tbody>
        </table>
        ${result.result.length === 0 && html`<p class="hint">No series matched.</p>`}
      </section>`}
  `;
}
