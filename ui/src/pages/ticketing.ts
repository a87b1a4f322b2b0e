// Ticketing: the marketplace's sales over a range (sales, tickets, revenue, buyers) and, for
// roles that see security data, the fraud findings — counts by pattern, risk and outcome, and
// the open findings newest first, each investigated (confirmed, false positive or
// inconclusive, with a note) by those with the write scope; and the chain behind the tickets
// (NFT mints and transfers): per operation the settled and failed transactions and the
// confirmation times, the commonest errors, the RPC nodes' health, and the failed
// transactions newest first, each with its history. Read from /api/v1/analytics/dashboard,
// /api/v1/fraud/events and /api/v1/chain/*, refreshed every 30 s.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { ApiError, can, get, qs, request, type Me } from "../api";
import { setParams, useLocation } from "../router";

interface FraudCounts {
  total: number;
  open: number;
  byPattern: Record<string, number>;
  byRisk: Record<string, number>;
  byOutcome: Record<string, number>;
}

interface Dashboard {
  range: string;
  sales: { sales: number; tickets: number; revenue: number; buyers: number };
  fraud: FraudCounts | null;
}

interface Finding {
  id: string;
  userId: string;
  subject: string;
  pattern: string;
  riskLevel: string;
  reason: string;
  timestamp: string;
  data: unknown;
  investigated: boolean;
}

const REFRESH_MS = 30_000;
const RANGES = ["24h", "7d", "8d"];
const OUTCOMES: [string, string][] = [
  ["confirmed", "confirmed"],
  ["false_positive", "false positive"],
  ["inconclusive", "inconclusive"],
];
const RISK_BADGE: Record<string, string> = { high: "kkt-critical", medium: "kkt-warning" };
const CHAIN_BADGE: Record<string, string> = { failed: "kkt-critical", confirmed: "kkt-ok", finalized: "kkt-ok" };
/** Failed chain transactions listed. */
const FAILED_LIMIT = 20;

interface ChainOperation {
  operation: string;
  events: Record<string, number>;
  settled: number;
  failed: number;
  failureRatio: number | null;
  confirmationMs: { p50?: number; p95?: number } | null;
}

interface ChainMetrics {
  range: string;
  operations: ChainOperation[];
  errors: { operation: string; error: string; count: number }[];
  rpc: { probe: string; up: boolean; durationSeconds: number | null }[];
}

interface ChainTx {
  signature: string;
  operation: string | null;
  status: string;
  error: string | null;
  lastSeen: string;
}

interface ChainStep {
  time: string;
  status: string;
  error?: string;
  confirmationMs?: number | string;
}

/** A whole count with thin groups: 12345 → "12 345". */
function count(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "—" : String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, " ");
}

function money(n: number): string {
  const [whole, frac] = Math.abs(n).toFixed(2).split(".");
  return `${n < 0 ? "−" : ""}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, " ")}.${frac}`;
}

/** Milliseconds: 1234 → "1 234 ms". */
function ms(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(Number(n)) ? "—" : `${count(Number(n))} ms`;
}

/** A share as a percentage: 0.3333 → "33.3 %". */
function percent(r: number | null | undefined): string {
  return r === null || r === undefined || !Number.isFinite(r) ? "—" : `${(r * 100).toFixed(1)} %`;
}

/** A transaction signature shortened for display: its first 8 characters. */
export function shortSignature(s: string): string {
  return s.length > 9 ? s.slice(0, 8) + "…" : s;
}

function when(s: string): string {
  return s.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC");
}

/** Findings newest first (RFC 3339 in UTC sorts as text once the fractions are cut). */
export function newestFirst(list: Finding[]): Finding[] {
  const key = (f: Finding) => f.timestamp.replace(/\.\d+/, "");
  return [...list].sort((a, b) => key(b).localeCompare(key(a)) || a.id.localeCompare(b.id));
}

export function TicketingPage({ me }: { me: Me | null }) {
  const { params } = useLocation();
  const [range, setRange] = useState(RANGES.includes(params.get("range") ?? "") ? params.get("range")! : "24h");
  const [dash, setDash] = useState<Dashboard | null>(null);
  const [findings, setFindings] = useState<Finding[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const writer = can(me, "write");

  useEffect(() => {
    let stop = false;
    const load = () => {
      get<Dashboard>("/api/v1/analytics/dashboard?" + qs({ range })).then(
        (d) => {
          if (stop) return;
          setDash(d);
          setError(null);
          if (!d.fraud) return setFindings(null);
          get<{ events: Finding[] }>("/api/v1/fraud/events?investigated=false&limit=50").then(
            (f) => !stop && setFindings(newestFirst(f.events)),
            (e) => !stop && !(e instanceof ApiError && e.status === 401) && setError(e.message),
          );
        },
        (e) => !stop && !(e instanceof ApiError && e.status === 401) && setError(e.message),
      );
    };
    load();
    const t = setInterval(load, REFRESH_MS);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, [range, tick]);

  const s = dash?.sales;
  const f = dash?.fraud;
  const patterns = Object.entries(f?.byPattern ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const outcomes = Object.entries(f?.byOutcome ?? {});
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <div class="chart-head">
        <h2>Ticket sales</h2>
        <small class="hint">From the <code>ticket_sale</code> events the marketplace sends. Refreshed every ${REFRESH_MS / 1000} s.</small>
        <label class="inline kkt-filter">Range
          <select name="range" value=${range} onChange=${(e: any) => { setRange(e.currentTarget.value); setParams({ range: e.currentTarget.value }); }}>
            ${RANGES.map((r) => html`<option value=${r}>${r}</option>`)}
          </select></label>
      </div>
      <div class="cards" role="group" aria-label="Sales" data-testid="ticket-sales">
        <div class="card stat" data-stat="sales"><h3>Sales</h3><b>${s ? count(s.sales) : "…"}</b></div>
        <div class="card stat" data-stat="tickets"><h3>Tickets</h3><b>${s ? count(s.tickets) : "…"}</b></div>
        <div class="card stat" data-stat="revenue"><h3>Revenue</h3><b>${s ? money(s.revenue) : "…"}</b></div>
        <div class="card stat" data-stat="buyers"><h3>Buyers</h3><b>${s ? count(s.buyers) : "…"}</b></div>
      </div>
    </section>
    <${ChainSection} range=${range} />
    ${dash && !f && html`<p class="hint" data-testid="fraud-hidden">Fraud findings name accounts, cards and addresses, which your role (${me?.role ?? "this token"}) does not see.</p>`}
    ${f && html`<section class="card">
      <h2>Fraud findings</h2>
      <div class="cards" role="group" aria-label="Findings" data-testid="fraud-counts">
        <div class="card stat" data-stat="total"><h3>Findings</h3><b>${count(f.total)}</b><small>in ${dash!.range}</small></div>
        <div class="card stat" data-stat="open"><h3>Open</h3><b>${count(f.open)}</b><small>not investigated</small></div>
        <div class="card stat" data-stat="high"><h3>High risk</h3><b>${count(f.byRisk.high ?? 0)}</b></div>
        <div class="card stat" data-stat="medium"><h3>Medium risk</h3><b>${count(f.byRisk.medium ?? 0)}</b></div>
        <div class="card stat" data-stat="investigated"><h3>Investigated</h3><b>${count(f.total - f.open)}</b>
          <small>${outcomes.map(([o, n]) => `${n} ${o.replace("_", " ")}`).join(", ")}</small></div>
      </div>
      <table class="grid" aria-label="Findings by pattern" data-testid="fraud-patterns">
        <thead><tr><th scope="col">Pattern</th><th scope="col" class="num">Findings</th></tr></thead>
        <tbody>${patterns.map(([p, n]) => html`<tr data-pattern=${p}><td>${p}</td><td class="num">${count(n)}</td></tr>`)}</tbody>
      </table>
      ${patterns.length === 0 && html`<p class="hint">No findings in this range.</p>`}
    </section>`}
    ${f && html`<section class="card">
      <h2>Open findings</h2>
      <${OpenFindings} findings=${findings} writer=${writer}
        onDone=${(id: string) => { setFindings((l) => l && l.filter((x) => x.id !== id)); setTick((n) => n + 1); }}
        onError=${setError} />
    </section>`}
  `;
}

/** The chain behind the tickets over `range`, refreshed every REFRESH_MS. */
function ChainSection({ range }: { range: string }) {
  const [metrics, setMetrics] = useState<ChainMetrics | null>(null);
  const [failed, setFailed] = useState<{ transactions: ChainTx[]; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stop = false;
    const fail = (e: Error) => !stop && !(e instanceof ApiError && e.status === 401) && setError(e.message);
    const load = () => {
      get<ChainMetrics>("/api/v1/chain/metrics?" + qs({ range })).then((m) => {
        if (stop) return;
        setMetrics(m);
        setError(null);
      }, fail);
      get<{ transactions: ChainTx[]; total: number }>("/api/v1/chain/transactions?" + qs({ range, status: "failed", limit: FAILED_LIMIT })).then(
        (t) => !stop && setFailed(t),
        fail,
      );
    };
    load();
    const t = setInterval(load, REFRESH_MS);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, [range]);

  const ops = metrics?.operations ?? [];
  const errors = metrics?.errors ?? [];
  const rpc = metrics?.rpc ?? [];
  return html`
    <section class="card" aria-labelledby="chain-title" data-testid="chain">
      <div class="chart-head">
        <h2 id="chain-title">Chain</h2>
        <small class="hint">The NFT mints and transfers behind the tickets, from the <code>chain-events</code> the marketplace reports, over ${range}.</small>
      </div>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <table class="grid" aria-label="Chain transactions by operation" data-testid="chain-operations">
        <thead><tr>
          <th scope="col">Operation</th><th scope="col" class="num">Settled</th><th scope="col" class="num">Failed</th>
          <th scope="col" class="num"><abbr title="Failed of the settled (confirmed or failed) transactions">Failure ratio</abbr></th>
          <th scope="col" class="num"><abbr title="Median time from submission to confirmation">p50 confirmation</abbr></th>
          <th scope="col" class="num"><abbr title="95th percentile of the time from submission to confirmation">p95 confirmation</abbr></th>
        </tr></thead>
        <tbody>
          ${ops.map((o) => html`<tr key=${o.operation} data-operation=${o.operation}>
            <td>${o.operation || "—"}</td>
            <td class="num">${count(o.settled)}</td>
            <td class=${"num" + (o.failed > 0 ? " error" : "")}>${count(o.failed)}</td>
            <td class=${"num" + ((o.failureRatio ?? 0) > 0.1 ? " error" : "")}>${percent(o.failureRatio)}</td>
            <td class="num">${ms(o.confirmationMs?.p50)}</td>
            <td class="num">${ms(o.confirmationMs?.p95)}</td>
          </tr>`)}
        </tbody>
      </table>
      ${metrics && ops.length === 0 && html`<p class="hint" data-testid="chain-empty">No chain events in this range.</p>`}
      <div class="panels chain-parts">
        ${errors.length > 0 && html`<div>
          <h3 class="chain-sub">Commonest errors</h3>
          <table class="grid" aria-label="Chain errors" data-testid="chain-errors">
            <thead><tr><th scope="col">Operation</th><th scope="col">Error</th><th scope="col" class="num">Failed</th></tr></thead>
            <tbody>${errors.map((e) => html`<tr key=${e.operation + "/" + e.error} data-error=${e.error}>
              <td>${e.operation || "—"}</td><td><code>${e.error || "—"}</code></td><td class="num">${count(e.count)}</td>
            </tr>`)}</tbody>
          </table>
        </div>`}
        ${rpc.length > 0 && html`<div>
          <h3 class="chain-sub">RPC nodes</h3>
          <table class="grid" aria-label="Chain RPC nodes" data-testid="chain-rpc">
            <thead><tr><th scope="col">Probe</th><th scope="col">State</th><th scope="col" class="num">Response</th></tr></thead>
            <tbody>${rpc.map((r) => html`<tr key=${r.probe} data-probe=${r.probe}>
              <td>${r.probe}</td>
              <td><span class=${"badge " + (r.up ? "kkt-ok" : "kkt-critical")}>${r.up ? "up" : "down"}</span></td>
              <td class="num">${r.durationSeconds === null || r.durationSeconds === undefined ? "—" : ms(r.durationSeconds * 1000)}</td>
            </tr>`)}</tbody>
          </table>
        </div>`}
      </div>
      <h3 class="chain-sub">Failed transactions</h3>
      <${FailedTransactions} list=${failed?.transactions ?? null} range=${range} />
      ${failed && failed.transactions.length === 0 && html`<p class="hint">No failed transactions in this range.</p>`}
      ${failed && failed.total > failed.transactions.length && html`<p class="hint">The ${failed.transactions.length} newest of ${count(failed.total)} failed transactions.</p>`}
    </section>
  `;
}

/** The failed transactions, newest first; a signature's button shows its history below it. */
function FailedTransactions({ list, range }: { list: ChainTx[] | null; range: string }) {
  const [open, setOpen] = useState<string | null>(null);
  const [history, setHistory] = useState<ChainStep[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setHistory(null);
    setError(null);
    if (!open) return;
    let stop = false;
    // The history endpoint looks back 7 days unless told more.
    get<{ history: ChainStep[] }>(`/api/v1/chain/transactions/${encodeURIComponent(open)}?` + qs({ range: range === "8d" ? "8d" : undefined })).then(
      (t) => !stop && setHistory(t.history),
      (e) => !stop && !(e instanceof ApiError && e.status === 401) && setError(e.message),
    );
    return () => {
      stop = true;
    };
  }, [open]);

  return html`
    <table class="grid" aria-label="Failed chain transactions" data-testid="chain-failed">
      <thead><tr><th scope="col">Time</th><th scope="col">Operation</th><th scope="col">Error</th><th scope="col">Signature</th></tr></thead>
      <tbody>
        ${(list ?? []).flatMap((t) => [
          html`<tr key=${t.signature} data-signature=${t.signature}>
            <td><small>${when(t.lastSeen)}</small></td>
            <td>${t.operation ?? "—"}</td>
            <td><code>${t.error ?? "—"}</code></td>
            <td><button type="button" class="link" aria-label=${`Transaction ${t.signature}`} title=${t.signature}
              aria-expanded=${open === t.signature} onClick=${() => setOpen(open === t.signature ? null : t.signature)}><code>${shortSignature(t.signature)}</code></button></td>
          </tr>`,
          open === t.signature && html`<tr key=${t.signature + "-history"} data-history=${t.signature}><td colspan="4">
            ${error && html`<p class="error" role="alert">${error}</p>`}
            ${!history && !error && html`<p class="hint">Loading…</p>`}
            ${history && html`<ol class="timeline" aria-label=${`History of transaction ${t.signature}`} data-testid="chain-history">
              ${history.map((h) => html`<li data-status=${h.status}>
                <small>${when(h.time)}</small> <span class=${"badge " + (CHAIN_BADGE[h.status] ?? "")}>${h.status}</span>
                ${h.error && html` <code>${h.error}</code>`}
                ${h.confirmationMs !== undefined && html` <small>confirmed in ${ms(Number(h.confirmationMs))}</small>`}
              </li>`)}
            </ol>`}
          </td></tr>`,
        ])}
      </tbody>
    </table>
  `;
}

function OpenFindings({ findings, writer, onDone, onError }: {
  findings: Finding[] | null;
  writer: boolean;
  onDone: (id: string) => void;
  onError: (m: string) => void;
}) {
  const [open, setOpen] = useState<string | null>(null);
  const [outcome, setOutcome] = useState("confirmed");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const columns = writer ? 7 : 6;
  // The form takes the place of its button: the focus goes to its first field.
  useEffect(() => {
    if (open) document.querySelector<HTMLSelectElement>(`tr[data-investigate="${CSS.escape(open)}"] select`)?.focus();
  }, [open]);

  async function investigate(e: Event, id: string) {
    e.preventDefault();
    setBusy(true);
    try {
      await request("POST", `/api/v1/fraud/events/${encodeURIComponent(id)}/investigate`, { outcome, note });
      setOpen(null);
      setNote("");
      onDone(id);
    } catch (err) {
      onError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const start = (id: string) => {
    setOpen(id);
    setOutcome("confirmed");
    setNote("");
  };
  return html`
    <table class="grid" aria-label="Open findings" data-testid="fraud-findings">
      <thead><tr>
        <th scope="col">Time</th><th scope="col">Risk</th><th scope="col">Pattern</th><th scope="col">User</th>
        <th scope="col">Subject</th><th scope="col">Reason</th>${writer && html`<th scope="col">Action</th>`}
      </tr></thead>
      <tbody>
        ${(findings ?? []).flatMap((x) => [
          html`<tr key=${x.id} data-finding=${x.id} data-pattern=${x.pattern}>
            <td><small>${when(x.timestamp)}</small></td>
            <td><span class=${"badge " + (RISK_BADGE[x.riskLevel] ?? "")}>${x.riskLevel}</span></td>
            <td>${x.pattern}</td>
            <td><code>${x.userId}</code></td>
            <td><code>${x.subject}</code></td>
            <td>${x.reason}</td>
            ${writer && html`<td>${open === x.id ? "" : html`<button aria-label=${`Investigate finding ${x.id}`} onClick=${() => start(x.id)}>Investigate</button>`}</td>`}
          </tr>`,
          writer && open === x.id && html`<tr key=${x.id + "-form"} data-investigate=${x.id}><td colspan=${columns}>
            <form class="filters" aria-label=${`Investigate finding ${x.id}`} onSubmit=${(e: Event) => investigate(e, x.id)}>
              <label>Outcome
                <select name="outcome" value=${outcome} onChange=${(e: any) => setOutcome(e.currentTarget.value)}>
                  ${OUTCOMES.map(([v, t]) => html`<option value=${v}>${t}</option>`)}
                </select></label>
              <label class="grow">Note
                <input name="note" maxLength=${2000} value=${note} onInput=${(e: any) => setNote(e.currentTarget.value)} /></label>
              <button type="submit" disabled=${busy}>Save</button>
              <button type="button" class="link" onClick=${() => setOpen(null)}>Cancel</button>
            </form>
          </td></tr>`,
        ])}
      </tbody>
    </table>
    ${findings && findings.length === 0 && html`<p class="hint">No open findings.</p>`}
    ${findings && findings.length >= 50 && html`<p class="hint">The 50 newest open findings.</p>`}
  `;
}
