// Ticketing: the marketplace's sales over a range (sales, tickets, revenue, buyers) and, for
// roles that see security data, the fraud findings — counts by pattern, risk and outcome, and
// the open findings newest first, each investigated (confirmed, false positive or
// inconclusive, with a note) by those with the write scope. Read from
// /api/v1/analytics/dashboard and /api/v1/fraud/events, refreshed every 30 s.
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

/** A whole count with thin groups: 12345 → "12 345". */
function count(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "—" : String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, " ");
}

function money(n: number): string {
  const [whole, frac] = Math.abs(n).toFixed(2).split(".");
  return `${n < 0 ? "−" : ""}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, " ")}.${frac}`;
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
