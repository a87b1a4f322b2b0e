// Dashboards: the list (new, import — Dozor's JSON or Grafana's), and one dashboard — its
// panels (graph, stat, gauge, table, logs, alert list) over a time range with variables,
// refreshed on a timer; edit its JSON, share, duplicate, export, delete.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../html";
import { can, get, qs, request, type Me } from "../api";
import { SeriesChart, seriesName, short } from "../chart";
import { Link, navigate, setParams, useLocation } from "../router";
import { RANGES } from "./metrics";

export interface Widget {
  type: string;
  title?: string;
  query?: string;
  options?: Record<string, unknown>;
}

export interface Dashboard {
  id?: string;
  name: string;
  description?: string;
  widgets: Widget[];
  layout?: unknown;
  settings?: { range?: string; refresh?: string; variables?: { name: string; query: string }[] };
  shared?: boolean;
  owner?: string;
  version?: number;
}

/** The body the API takes, from a dashboard as it answered. */
function body(d: Dashboard) {
  const { name, description, widgets, layout, settings, shared } = d;
  return { name, description, widgets, layout, settings, shared };
}

/** A Grafana dashboard's panels as ours, for the types both have; the rest are left out. */
export function fromGrafana(g: any): Dashboard {
  const kinds: Record<string, string> = { timeseries: "graph", graph: "graph", stat: "stat", singlestat: "stat", gauge: "gauge", table: "table", logs: "logs", alertlist: "alert-list" };
  const panels: any[] = (g.panels ?? []).flatMap((p: any) => (p.type === "row" ? p.panels ?? [] : [p]));
  const widgets: Widget[] = panels
    .filter((p) => kinds[p.type])
    .map((p) => {
      const w: Widget = { type: kinds[p.type], title: p.title ?? "" };
      const expr = p.targets?.find((t: any) => t.expr)?.expr;
      if (w.type !== "alert-list") w.query = expr ?? "";
      return w;
    })
    .filter((w) => w.type === "alert-list" || (w.query ?? "").trim() !== "");
  const variables = (g.templating?.list ?? [])
    .filter((v: any) => v.type === "query" && /^[A-Za-z_]\w*$/.test(v.name ?? ""))
    .map((v: any) => ({ name: v.name, query: typeof v.query === "string" ? v.query : v.query?.query ?? "" }));
  const range = typeof g.time?.from === "string" && g.time.from.startsWith("now-") ? g.time.from.slice(4) : "1h";
  return { name: g.title ?? "Imported", description: g.description ?? "", widgets, settings: { range, refresh: g.refresh || "", variables } };
}

export function DashboardsPage({ me }: { me: Me | null }) {
  const { path } = useLocation();
  const id = path.startsWith("/dashboards/") ? decodeURIComponent(path.slice("/dashboards/".length)) : null;
  return id ? html`<${DashboardView} id=${id} me=${me} />` : html`<${DashboardList} me=${me} />`;
}

function DashboardList({ me }: { me: Me | null }) {
  const [list, setList] = useState<Dashboard[]>([]);
  const [shipped, setShipped] = useState<(Dashboard & { key: string })[]>([]);
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const writer = can(me, "write");

  useEffect(() => {
    get<{ dashboards: Dashboard[] }>("/api/v1/dashboards").then((r) => setList(r.dashboards), (e) => setError(e.message));
    get<{ dashboards: (Dashboard & { key: string })[] }>("/api/v1/dashboards/library").then((r) => setShipped(r.dashboards), () => undefined);
  }, []);

  async function create(d: Dashboard) {
    try {
      const made = await request<Dashboard>("POST", "/api/v1/dashboards", body(d));
      navigate(`/dashboards/${made.id}`);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  function importJson(e: Event) {
    e.preventDefault();
    try {
      const parsed = JSON.parse(text);
      // Grafana's export has `panels`; ours has `widgets`.
      create(parsed.panels ? fromGrafana(parsed) : parsed);
    } catch (err) {
      setError(`not JSON: ${(err as Error).message}`);
    }
  }

  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <h2>Dashboards</h2>
      <table class="grid" aria-label="Dashboards">
        <thead><tr><th>Name</th><th>Owner</th><th>Shared</th><th>Panels</th></tr></thead>
        <tbody>
          ${list.map((d) => html`<tr><td><${Link} href=${`/dashboards/${d.id}`}>${d.name}<//></td><td>${d.owner}</td>
            <td>${d.shared ? "yes" : "no"}</td><td>${d.widgets.length}</td></tr>`)}
        </tbody>
      </table>
      ${list.length === 0 && html`<p class="hint">No dashboards yet.</p>`}
    </section>
    ${writer && shipped.length > 0 && html`
      <section class="card">
        <h2>Shipped with Dozor</h2>
        <ul class="library" aria-label="Shipped dashboards">
          ${shipped.map((d) => html`<li><b>${d.name}</b> <small class="hint">${d.description}</small>
            <button onClick=${() => create(d)} aria-label=${"Add " + d.name}>Add</button></li>`)}
        </ul>
      </section>`}
    ${writer && html`
      <section class="card">
        <div class="chart-head"><h2>New</h2>
          <button onClick=${() => create({ name: "New dashboard", widgets: [{ type: "graph", title: "Load", query: "node_load1" }] })}>New dashboard</button></div>
        <form onSubmit=${importJson} aria-label="Import a dashboard">
          <label>Dashboard JSON (Dozor's, or a Grafana export)
            <textarea rows="6" value=${text} onInput=${(e: any) => setText(e.currentTarget.value)}></textarea></label>
          <button type="submit">Import</button>
        </form>
      </section>`}
  `;
}

/** `source` as an anchored regular expression (as PromQL's `=~`), or null when it does not
 * compile. */
function safeRegExp(source: string): RegExp | null {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch {
    return null;
  }
}

function substitute(q: string, vars: Record<string, string>): string {
  return q.replace(/\$(\w+)|\$\{(\w+)\}/g, (m, a, b) => vars[a ?? b] ?? m);
}

function DashboardView({ id, me }: { id: string; me: Me | null }) {
  const { params } = useLocation();
  const [d, setD] = useState<Dashboard | null>(null);
  const [range, setRange] = useState(params.get("range") ?? "");
  const [vars, setVars] = useState<Record<string, string>>({});
  const [options, setOptions] = useState<Record<string, string[]>>({});
  const [tick, setTick] = useState(0);
  const [editing, setEditing] = useState<string | null>(null);
  const [panel, setPanel] = useState<Widget>({ type: "graph", title: "", query: "" });
  const [error, setError] = useState<string | null>(null);
  const writer = can(me, "write") && (d?.owner === me?.actor || can(me, "admin"));

  useEffect(() => {
    get<Dashboard>(`/api/v1/dashboards/${encodeURIComponent(id)}`).then(
      (x) => {
        setD(x);
        if (!range) setRange(x.settings?.range && RANGES[x.settings.range] ? x.settings.range : "1h");
      },
      (e) => setError(e.message),
    );
  }, [id]);

  // Variables: `label_values(label)` or `label_values(metric, label)` become choices.
  useEffect(() => {
    for (const v of d?.settings?.variables ?? []) {
      const m = v.query.match(/^label_values\(\s*(?:([^,]+),\s*)?(\w+)\s*\)$/);
      if (!m) continue;
      const match = m[1] ? `?${qs({ "match[]": m[1].trim() })}` : "";
      get<string[]>(`/api/v1/label/${m[2]}/values${match}`).then((vals) => {
        setOptions((o) => ({ ...o, [v.name]: vals }));
        setVars((cur) => (cur[v.name] ? cur : { ...cur, [v.name]: params.get(`var-${v.name}`) ?? vals[0] ?? "" }));
      }, () => undefined);
    }
  }, [d]);

  // Auto-refresh.
  useEffect(() => {
    const every = d?.settings?.refresh;
    const m = every?.match(/^(\d+)(s|m)$/);
    if (!m) return;
    const ms = Number(m[1]) * (m[2] === "m" ? 60_000 : 1000);
    const t = setInterval(() => setTick((n) => n + 1), Math.max(5000, ms));
    return () => clearInterval(t);
  }, [d]);

  async function save(next: Dashboard) {
    try {
      setD(await request<Dashboard>("PUT", `/api/v1/dashboards/${encodeURIComponent(id)}`, body(next)));
      setEditing(null);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function duplicate() {
    try {
      const copy = await request<Dashboard>("POST", `/api/v1/dashboards/${encodeURIComponent(id)}/duplicate`);
      navigate(`/dashboards/${copy.id}`);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function remove() {
    try {
      await request("DELETE", `/api/v1/dashboards/${encodeURIComponent(id)}`);
      navigate("/dashboards");
    } catch (e) {
      setError((e as Error).message);
    }
  }

  function exportJson() {
    if (!d) return;
    const blob = new Blob([JSON.stringify(body(d), null, 2)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${d.name.replace(/[^\w-]+/g, "_")}.json`;
    a.click();
    URL.revokeObjectURL(a.href);
  }

  if (!d) return html`${error ? html`<p class="error" role="alert">${error}</p>` : html`<p class="hint">Loading…</p>`}`;
  const span = RANGES[range] ?? 3600;
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <div class="chart-head">
        <h2>${d.name}</h2>
        <small>${d.owner}${d.shared ? " · shared" : ""}</small>
        <select aria-label="Time range" value=${range} onChange=${(e: any) => { setRange(e.currentTarget.value); setParams({ range: e.currentTarget.value }); }}>
          ${Object.keys(RANGES).map((r) => html`<option value=${r}>Last ${r}</option>`)}
        </select>
        ${(d.settings?.variables ?? []).map((v) => html`<label class="inline">${v.name}
          <select aria-label=${"Variable " + v.name} value=${vars[v.name] ?? ""} onChange=${(e: any) => { setVars({ ...vars, [v.name]: e.currentTarget.value }); setParams({ [`var-${v.name}`]: e.currentTarget.value }); }}>
            ${(options[v.name] ?? []).map((o) => html`<option value=${o}>${o}</option>`)}
          </select></label>`)}
        <button type="button" onClick=${() => setTick(tick + 1)}>Refresh</button>
        <button type="button" onClick=${exportJson}>Export</button>
        ${can(me, "write") && html`<button type="button" onClick=${duplicate}>Duplicate</button>`}
        ${writer && html`
          <button type="button" onClick=${() => save({ ...d, shared: !d.shared })}>${d.shared ? "Unshare" : "Share"}</button>
          <button type="button" onClick=${() => setEditing(JSON.stringify(body(d), null, 2))}>Edit JSON</button>
          <button type="button" class="danger" onClick=${remove}>Delete</button>`}
      </div>
      ${d.description && html`<p class="hint">${d.description}</p>`}
      ${editing !== null && html`
        <form onSubmit=${(e: Event) => { e.preventDefault(); try { save({ ...d, ...JSON.parse(editing) }); } catch (err) { setError((err as Error).message); } }} aria-label="Edit the dashboard">
          <textarea aria-label="Dashboard JSON" rows="14" value=${editing} onInput=${(e: any) => setEditing(e.currentTarget.value)}></textarea>
          <button type="submit">Save</button> <button type="button" class="link" onClick=${() => setEditing(null)}>Cancel</button>
        </form>`}
    </section>
    ${writer && html`<section class="card">
      <form class="filters" aria-label="Add a panel" onSubmit=${(e: Event) => {
        e.preventDefault();
        const w: Widget = { type: panel.type, title: panel.title };
        if (panel.type !== "alert-list") w.query = panel.query;
        save({ ...d, widgets: [...d.widgets, w] }).then(() => setPanel({ type: panel.type, title: "", query: "" }));
      }}>
        <label>Panel <select name="panel-type" value=${panel.type} onChange=${(e: any) => setPanel({ ...panel, type: e.currentTarget.value })}>
          ${["graph", "stat", "gauge", "table", "logs", "alert-list"].map((t) => html`<option value=${t}>${t}</option>`)}</select></label>
        <label>Title <input name="panel-title" value=${panel.title} onInput=${(e: any) => setPanel({ ...panel, title: e.currentTarget.value })} /></label>
        ${panel.type !== "alert-list" && html`<label class="grow">Query (${panel.type === "logs" ? "LogQL" : "PromQL"})
          <input name="panel-query" value=${panel.query} onInput=${(e: any) => setPanel({ ...panel, query: e.currentTarget.value })} required /></label>`}
        <button type="submit">Add panel</button>
      </form>
    </section>`}
    <section class="panels" data-testid="panels">
      ${d.widgets.map((w, i) => html`<${Panel} key=${i} widget=${w} span=${span} vars=${vars} tick=${tick} />`)}
    </section>
  `;
}

/** One panel: fetches its data when the range, variables or refresh tick change. */
function Panel({ widget, span, vars, tick }: { widget: Widget; span: number; vars: Record<string, string>; tick: number }) {
  const [data, setData] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  const chartEl = useRef<HTMLDivElement>(null);
  const chart = useRef<SeriesChart | null>(null);
  const query = substitute(widget.query ?? "", vars);

  useEffect(() => {
    let live = true;
    const end = Math.floor(Date.now() / 1000);
    const start = end - span;
    const step = Math.max(1, Math.floor(span / 240));
    const load = async () => {
      switch (widget.type) {
        case "graph":
          return get<any>(`/api/v1/query_range?${qs({ query, start, end, step })}`);
        case "logs":
          return get<any>(`/loki/api/v1/query_range?${qs({ query, start, end, limit: 50 })}`);
        case "alert-list":
          return get<any>("/api/v1/alerts");
        default:
          return get<any>(`/api/v1/query?${qs({ query, time: end })}`);
      }
    };
    load().then(
      (r) => {
        if (!live) return;
        setData(r);
        setError(null);
        if (widget.type === "graph" && chartEl.current) {
          chart.current ??= new SeriesChart(chartEl.current);
          chart.current.set(
            r.result.map((s: any) => ({ label: seriesName(s.metric), points: s.values.map(([t, v]: [number, string]) => [t * 1000, Number(v)]) })),
            [start * 1000, end * 1000],
          );
        }
      },
      (e) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [query, span, tick]);
  useEffect(() => () => chart.current?.destroy(), []);

  // An alert list may keep to some alerts: `options.alertname`, a regular expression.
  const only = typeof widget.options?.alertname === "string" ? safeRegExp(widget.options.alertname) : null;
  const alerts: any[] = (data?.alerts ?? []).filter((a: any) => !only || only.test(a.labels.alertname ?? ""));
  const first = data?.result?.[0];
  const value = first?.value ? Number(first.value[1]) : undefined;
  const max = Number(widget.options?.max ?? 1);
  const min = Number(widget.options?.min ?? 0);
  return html`
    <article class="card panel" data-type=${widget.type} data-state=${error ? "error" : data ? "done" : "loading"}>
      <h3>${widget.title || widget.query || widget.type}</h3>
      ${error && html`<p class="error">${error}</p>`}
      ${widget.type === "graph" && html`<div ref=${chartEl} class="chart small"></div>`}
      ${widget.type === "stat" && html`<b class="big">${value === undefined ? "—" : short(value)}</b>`}
      ${widget.type === "gauge" && html`<div class="gauge" role="meter" aria-valuemin=${min} aria-valuemax=${max} aria-valuenow=${value ?? min}>
        <div style=${`width: ${Math.max(0, Math.min(100, (((value ?? min) - min) / (max - min || 1)) * 100))}%`}></div></div>
        <b>${value === undefined ? "—" : short(value)}</b>`}
      ${widget.type === "table" && data && html`<table class="grid"><tbody>${(data.result ?? []).slice(0, 50).map((s: any) => html`<tr><td><code>${seriesName(s.metric)}</code></td><td class="num">${short(Number(s.value?.[1]))}</td></tr>`)}</tbody></table>`}
      ${widget.type === "logs" && data && html`<ol class="lines">${(data.result ?? []).flatMap((s: any) => s.values.map((v: [string, string]) => html`<li>${v[1]}</li>`)).slice(0, 50)}</ol>`}
      ${widget.type === "alert-list" && data && html`<ul>${alerts.map((a: any) => html`<li><span class=${"badge " + a.state}>${a.state}</span> ${a.labels.alertname}${a.labels.kkt ? html` <small>${a.labels.kkt}</small>` : ""}</li>`)}
        ${alerts.length === 0 && html`<li class="hint">Nothing fires.</li>`}</ul>`}
    </article>
  `;
}
