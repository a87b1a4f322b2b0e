// Cash registers (KKT, law 54-FZ): the fleet worst first — counters by status, a filter, and
// per register its FN's expiry, the OFD backlog against the 30-day block, the shift against
// the 24-hour limit and the last driver error — and one register in detail: FN, OFD queue,
// shift, error counts with their meaning, the OFD's views and its last fiscal documents.
// Read from /api/v1/kkt/*, refreshed every 10 s.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { ApiError, get } from "../api";
import { Link, navigate, setParams, useLocation } from "../router";

type Status = "blocked" | "critical" | "warning" | "down" | "ok" | "unknown";

interface Register {
  kkt: string;
  serial: string;
  model: string;
  firmware?: string;
  driver: string;
  ffd: string;
  inn: string;
  ofd: string;
  autonomous: boolean;
  up: boolean;
  status: Status;
  problems: string[];
  last_seen: string | null;
  clock_skew_seconds: number | null;
  fn: {
    number: string | null;
    expires_at: string | null;
    days_until_expiry: number | null;
    validity_months: number | null;
    memory_used_ratio: number | null;
    last_fd_number: number | null;
    flags: Record<string, boolean> | null;
  };
  ofd_queue: {
    unsent: number;
    first_unsent_fd: number | null;
    oldest_unsent_at: string | null;
    oldest_unsent_age_seconds: number | null;
    days_until_block: number | null;
    last_ack_at: string | null;
    unsent_marking_notices: number | null;
  } | null;
  shift: {
    number: number | null;
    open: boolean;
    opened_at: string | null;
    open_duration_seconds: number | null;
    receipts: number;
  } | null;
  last_document_at: string | null;
  last_error: { at: string; code: string; category: string; message: string; blocking: boolean; advice: string | null } | null;
  errors_total: number;
  documents_total: number;
}

interface Detail extends Register {
  documents: Record<string, number>;
  receipts_amount_kopecks: Record<string, number>;
  errors: { driver: string; code: string; category: string; count: number; meaning: string | null }[];
  ofd_views: {
    provider: string;
    state: string | null;
    last_document_state: string | null;
    last_document_at: string | null;
    fn_number: string | null;
    fn_end_at: string | null;
    contract_end_at: string | null;
    unsent_documents: number | null;
    checked_at: string | null;
  }[];
}

interface Fleet {
  summary: Record<Status | "total", number>;
  registers: Register[];
  ofd: { name: string; up: boolean; checked_at: string | null; last_error: string | null; polls: number }[];
}

interface FiscalDocument {
  at: string;
  fd_number: number;
  kind: string;
  kind_code: number;
  datetime: string | null;
  fpd: number | null;
  shift: number | null;
  operation: string | null;
  total_kop: number | null;
  cash_kop: number | null;
  cashless_kop: number | null;
}

const REFRESH_MS = 10_000;
/** Worst first: what stops sales, then what will soon, then the unreachable. */
const RANK: Record<Status, number> = { blocked: 0, critical: 1, down: 2, warning: 3, unknown: 4, ok: 5 };
/** The counters, in the order the brief of the page names them. */
const COUNTERS: Status[] = ["blocked", "critical", "warning", "down", "ok"];
const FLAG_NAMES: Record<string, string> = {
  resource_exhaustion_30d: "under 30 days of validity (tag 1050)",
  urgent_replacement_3d: "replace urgently, under 3 days (tag 1051)",
  memory_full_90pct: "archive over 90 % full (tag 1052)",
  ofd_timeout: "no OFD acknowledgement for over 2 days (tag 1053)",
};

/** Kopecks as roubles: 125050 → "1 250,50 ₽". */
export function roubles(kop: number | null | undefined): string {
  if (kop === null || kop === undefined || !Number.isFinite(kop)) return "—";
  const k = Math.round(kop);
  const abs = Math.abs(k);
  const whole = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, " ");
  return `${k < 0 ? "−" : ""}${whole},${String(abs % 100).padStart(2, "0")} ₽`;
}

function days(x: number | null | undefined): string {
  return x === null || x === undefined ? "—" : x.toFixed(1);
}

function when(s: string | null | undefined): string {
  return s ? s.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : "—";
}

/** Days of margin before the nearest limit (FN expiry, OFD block, 24-hour shift). */
function margin(r: Register): number {
  const m = [r.fn.days_until_expiry, r.ofd_queue?.days_until_block];
  if (r.shift?.open && r.shift.open_duration_seconds !== null) m.push((86_400 - r.shift.open_duration_seconds) / 86_400);
  return Math.min(Infinity, ...m.filter((x): x is number => typeof x === "number"));
}

/** Registers worst first: by status, then the nearest limit, then number. */
export function worstFirst(list: Register[]): Register[] {
  return [...list].sort((a, b) => RANK[a.status] - RANK[b.status] || margin(a) - margin(b) || a.kkt.localeCompare(b.kkt));
}

function Badge({ status }: { status: string }) {
  return html`<span class=${"badge kkt-" + status}>${status}</span>`;
}

export function KktPage() {
  const { path } = useLocation();
  const kkt = path.startsWith("/kkt/") ? decodeURIComponent(path.slice("/kkt/".length)) : null;
  return kkt ? html`<${RegisterView} kkt=${kkt} />` : html`<${FleetView} />`;
}

/** Calls `tick` now and every REFRESH_MS until the component goes. */
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

function FleetView() {
  const { params } = useLocation();
  const [fleet, setFleet] = useState<Fleet | null>(null);
  const [filter, setFilter] = useState(params.get("status") ?? "");
  const [error, setError] = useState<string | null>(null);

  usePolling((alive) => {
    get<Fleet>("/api/v1/kkt/fleet").then(
      (f) => {
        if (!alive()) return;
        setFleet(f);
        setError(null);
      },
      (e) => alive() && !(e instanceof ApiError && e.status === 401) && setError(e.message),
    );
  }, []);

  const rows = worstFirst(fleet?.registers ?? []).filter((r) => !filter || r.status === filter);
  const open = (e: MouseEvent, kkt: string) => {
    // The number is a link of its own (and the keyboard's way in); the rest of the row is a
    // bigger target for the mouse.
    if ((e.target as HTMLElement).closest("a")) return;
    navigate(`/kkt/${encodeURIComponent(kkt)}`);
  };
  const s = fleet?.summary;
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="cards" aria-label="Registers by status" data-testid="kkt-summary">
      ${COUNTERS.map((st) => html`<div class=${"card stat kkt-count " + st} data-status=${st}><h3>${st}</h3><b>${s ? s[st] : "…"}</b></div>`)}
      <div class="card stat"><h3>Total</h3><b>${s ? s.total : "…"}</b>${s && s.unknown > 0 ? html`<small>${s.unknown} known only to the OFD</small>` : ""}</div>
    </section>
    <section class="card">
      <div class="chart-head">
        <h2>Cash registers</h2>
        <small class="hint">54-FZ: the FN blocks at 30 days of OFD backlog and refuses receipts after a 24-hour shift. Refreshed every ${REFRESH_MS / 1000} s.</small>
        <label class="inline kkt-filter">Status
          <select name="status" value=${filter} onChange=${(e: any) => { setFilter(e.currentTarget.value); setParams({ status: e.currentTarget.value }); }}>
            <option value="">all</option>
            ${["blocked", "critical", "warning", "down", "ok", "unknown"].map((st) => html`<option value=${st}>${st}</option>`)}
          </select></label>
      </div>
      <table class="grid kkt" aria-label="Cash registers" data-testid="kkt-registers">
        <thead><tr>
          <th scope="col">Status</th><th scope="col">Register</th><th scope="col">Model</th>
          <th scope="col" class="num"><abbr title="Days until the fiscal drive's key expires">FN expires, days</abbr></th>
          <th scope="col" class="num"><abbr title="Age of the oldest document the OFD has not acknowledged">OFD backlog, days</abbr></th>
          <th scope="col" class="num"><abbr title="Days until the FN blocks for the OFD backlog (30-day rule)">Until block, days</abbr></th>
          <th scope="col">Shift</th><th scope="col">Last error</th><th scope="col">Problems</th>
        </tr></thead>
        <tbody>
          ${rows.map((r) => html`<tr class="clickable" data-kkt=${r.kkt} data-status=${r.status} onClick=${(e: MouseEvent) => open(e, r.kkt)}>
            <td><${Badge} status=${r.status} /></td>
            <td><${Link} href=${`/kkt/${encodeURIComponent(r.kkt)}`}>${r.kkt}<//></td>
            <td>${r.model || "—"}</td>
            <td class="num">${days(r.fn.days_until_expiry)}</td>
            <td class="num">${r.autonomous ? html`<small>offline</small>` : days(r.ofd_queue ? (r.ofd_queue.oldest_unsent_age_seconds ?? 0) / 86_400 : null)}</td>
            <td class="num">${r.autonomous ? "—" : days(r.ofd_queue?.days_until_block)}</td>
            <td>${!r.shift ? "—" : r.shift.open ? `open ${((r.shift.open_duration_seconds ?? 0) / 3600).toFixed(1)} h` : "closed"}</td>
            <td>${r.last_error ? html`<code title=${r.last_error.message}>${r.last_error.code}</code>` : "—"}</td>
            <td class="problems">${r.problems.join("; ")}</td>
          </tr>`)}
        </tbody>
      </table>
      ${fleet && rows.length === 0 && html`<p class="hint">${fleet.registers.length === 0
        ? "No registers: the KKT pack is off (kkt: in dozor.yml) or no driver line has arrived yet."
        : "No register has this status."}</p>`}
    </section>
    ${fleet && fleet.ofd.length > 0 && html`<section class="card">
      <h2>OFD APIs</h2>
      <table class="grid" aria-label="OFD APIs">
        <thead><tr><th scope="col">OFD</th><th scope="col">State</th><th scope="col">Checked</th><th scope="col" class="num">Polls</th><th scope="col">Last error</th></tr></thead>
        <tbody>${fleet.ofd.map((o) => html`<tr><td>${o.name}</td><td><${Badge} status=${o.up ? "ok" : "down"} /></td>
          <td><small>${when(o.checked_at)}</small></td><td class="num">${o.polls}</td><td>${o.last_error ?? "—"}</td></tr>`)}</tbody>
      </table>
    </section>`}
  `;
}

function Fields({ label, rows }: { label: string; rows: [string, unknown][] }) {
  return html`<dl class="fields" aria-label=${label}>${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v ?? "—"}</dd>`)}</dl>`;
}

function RegisterView({ kkt }: { kkt: string }) {
  const [r, setR] = useState<Detail | null>(null);
  const [docs, setDocs] = useState<FiscalDocument[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const base = `/api/v1/kkt/registers/${encodeURIComponent(kkt)}`;

  usePolling((alive) => {
    get<Detail>(base).then(
      (x) => {
        if (!alive()) return;
        setR(x);
        setError(null);
      },
      (e) => alive() && !(e instanceof ApiError && e.status === 401) && setError(e.message),
    );
    get<{ documents: FiscalDocument[] }>(`${base}/documents?limit=50`).then((d) => alive() && setDocs(d.documents), () => undefined);
  }, [kkt]);

  if (!r) return html`${error ? html`<p class="error" role="alert">${error}</p>` : html`<p class="hint">Loading…</p>`}
    <p><${Link} href="/kkt">← All registers<//></p>`;
  const f = r.fn;
  const q = r.ofd_queue;
  const sh = r.shift;
  const flags = Object.entries(f.flags ?? {}).filter(([, on]) => on).map(([k]) => FLAG_NAMES[k] ?? k);
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <p><${Link} href="/kkt">← All registers<//></p>
    <section class="card" aria-label="Register">
      <div class="chart-head">
        <h2>Register ${r.kkt}</h2>
        <span data-testid="kkt-status"><${Badge} status=${r.status} /></span>
        <small>${[r.model, r.serial && `serial ${r.serial}`, r.driver, r.ffd && `FFD ${r.ffd}`].filter(Boolean).join(" · ")}</small>
      </div>
      ${r.problems.length > 0 && html`<ul class="advice" aria-label="Problems" data-testid="kkt-problems">${r.problems.map((p) => html`<li>${p}</li>`)}</ul>`}
      <${Fields} label="Identity" rows=${[
        ["INN", r.inn || null],
        ["OFD", r.ofd || null],
        ["Mode", r.autonomous ? "offline (autonomous): no OFD exchange" : "online"],
        ["Reachable", r.up ? "yes" : "no"],
        ["Last seen", when(r.last_seen)],
        ["Clock skew", r.clock_skew_seconds === null ? null : `${r.clock_skew_seconds.toFixed(0)} s`],
        ["Last document", when(r.last_document_at)],
      ]} />
    </section>
    <section class="cards kkt-parts">
      <div class="card" data-testid="kkt-fn">
        <h2>Fiscal drive (FN)</h2>
        <${Fields} label="Fiscal drive" rows=${[
          ["Number", f.number],
          ["Expires", when(f.expires_at)],
          ["Days left", days(f.days_until_expiry)],
          ["Validity", f.validity_months ? `${f.validity_months} months` : null],
          ["Archive used", f.memory_used_ratio === null ? null : `${(f.memory_used_ratio * 100).toFixed(1)} %`],
          ["Last FD number", f.last_fd_number],
          ["Flags", flags.length ? flags.join("; ") : f.flags ? "none" : null],
        ]} />
      </div>
      <div class="card" data-testid="kkt-ofd-queue">
        <h2>OFD queue</h2>
        ${q ? html`<${Fields} label="OFD queue" rows=${[
          ["Unsent documents", q.unsent],
          ["First unsent FD", q.first_unsent_fd],
          ["Oldest unsent", when(q.oldest_unsent_at)],
          ["Backlog, days", days(q.oldest_unsent_age_seconds === null ? null : q.oldest_unsent_age_seconds / 86_400)],
          ["Days until block", days(q.days_until_block)],
          ["Last acknowledgement", when(q.last_ack_at)],
          ["Unsent marking notices", q.unsent_marking_notices],
        ]} />` : html`<p class="hint">${r.autonomous ? "Offline mode: the register does not transmit, so the 30-day rule does not apply." : "Not reported by the driver."}</p>`}
      </div>
      <div class="card" data-testid="kkt-shift">
        <h2>Shift</h2>
        ${sh ? html`<${Fields} label="Shift" rows=${[
          ["Number", sh.number],
          ["State", sh.open ? "open" : "closed"],
          ["Opened", when(sh.opened_at)],
          ["Open for", sh.open && sh.open_duration_seconds !== null ? `${(sh.open_duration_seconds / 3600).toFixed(1)} h of 24` : null],
          ["Receipts", sh.receipts],
        ]} />` : html`<p class="hint">Not reported by the driver.</p>`}
      </div>
    </section>
    <section class="card">
      <h2>Driver errors</h2>
      ${r.last_error && html`<div class="kkt-last-error" data-testid="kkt-last-error">
        <p><b>Last:</b> <code>${r.last_error.code}</code> (${r.last_error.category}${r.last_error.blocking ? ", stops sales" : ""}) ${r.last_error.message} <small>${when(r.last_error.at)}</small></p>
        ${r.last_error.advice && html`<p><b>Advice:</b> ${r.last_error.advice}</p>`}
      </div>`}
      <table class="grid" aria-label="Driver errors">
        <thead><tr><th scope="col">Driver</th><th scope="col">Code</th><th scope="col">Category</th><th scope="col" class="num">Count</th><th scope="col">Meaning</th></tr></thead>
        <tbody>${r.errors.map((e) => html`<tr><td>${e.driver}</td><td><code>${e.code}</code></td><td>${e.category}</td><td class="num">${e.count}</td><td>${e.meaning ?? "—"}</td></tr>`)}</tbody>
      </table>
      ${r.errors.length === 0 && html`<p class="hint">No driver errors since Dozor started reading this register.</p>`}
    </section>
    <section class="card">
      <h2>Documents since Dozor started</h2>
      <table class="grid" aria-label="Document counts">
        <thead><tr><th scope="col">Kind</th><th scope="col" class="num">Count</th></tr></thead>
        <tbody>${Object.entries(r.documents).map(([k, n]) => html`<tr><td>${k}</td><td class="num">${n}</td></tr>`)}</tbody>
      </table>
      <table class="grid" aria-label="Receipt amounts">
        <thead><tr><th scope="col">Operation</th><th scope="col" class="num">Amount</th></tr></thead>
        <tbody>${Object.entries(r.receipts_amount_kopecks).map(([k, n]) => html`<tr><td>${k}</td><td class="num">${roubles(n)}</td></tr>`)}</tbody>
      </table>
    </section>
    ${r.ofd_views.length > 0 && html`<section class="card">
      <h2>What the OFD sees</h2>
      <table class="grid" aria-label="OFD views">
        <thead><tr><th scope="col">OFD</th><th scope="col">State</th><th scope="col">Last document</th><th scope="col">FN</th><th scope="col">FN ends</th>
          <th scope="col">Contract ends</th><th scope="col" class="num">Unsent</th><th scope="col">Checked</th></tr></thead>
        <tbody>${r.ofd_views.map((v) => html`<tr><td>${v.provider}</td><td>${v.state ?? "—"}</td>
          <td><small>${when(v.last_document_at)}</small>${v.last_document_state ? html` <small>(${v.last_document_state})</small>` : ""}</td>
          <td><small>${v.fn_number ?? "—"}</small></td><td><small>${when(v.fn_end_at)}</small></td><td><small>${when(v.contract_end_at)}</small></td>
          <td class="num">${v.unsent_documents ?? "—"}</td><td><small>${when(v.checked_at)}</small></td></tr>`)}</tbody>
      </table>
    </section>`}
    <section class="card">
      <h2>Last documents</h2>
      <table class="grid" aria-label="Fiscal documents" data-testid="kkt-documents">
        <thead><tr><th scope="col" class="num">FD</th><th scope="col">Kind</th><th scope="col">Date (register's clock)</th><th scope="col">Operation</th>
          <th scope="col" class="num">Total</th><th scope="col" class="num">Cash</th><th scope="col" class="num">Cashless</th>
          <th scope="col" class="num">Shift</th><th scope="col" class="num"><abbr title="Fiscal sign (tag 1077)">FPD</abbr></th></tr></thead>
        <tbody>${(docs ?? []).map((d) => html`<tr data-fd=${d.fd_number}><td class="num">${d.fd_number}</td><td>${d.kind}</td><td><small>${d.datetime ?? when(d.at)}</small></td>
          <td>${d.operation ?? "—"}</td><td class="num">${roubles(d.total_kop)}</td><td class="num">${roubles(d.cash_kop)}</td>
          <td class="num">${roubles(d.cashless_kop)}</td><td class="num">${d.shift ?? "—"}</td><td class="num">${d.fpd ?? "—"}</td></tr>`)}</tbody>
      </table>
      ${docs && docs.length === 0 && html`<p class="hint">No documents in the driver log of the last 24 hours.</p>`}
    </section>
  `;
}
