// The audit chain: verify it (and see where it breaks), search it.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { get, qs } from "../api";

interface Report {
  records: number;
  first: number;
  checkpoints: number;
  problem: { line: number; seq: number; kind: string; message: string } | null;
}

interface Record_ {
  seq: number;
  ts_ms: number;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  source?: string;
  request_id?: string;
}

export function AuditPage() {
  const [report, setReport] = useState<Report | null>(null);
  const [records, setRecords] = useState<Record_[]>([]);
  const [filter, setFilter] = useState({ actor: "", action: "", outcome: "", request_id: "" });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function verify() {
    setBusy(true);
    try {
      setReport(await get<Report>("/api/v1/audit/verify"));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function search(e?: Event) {
    e?.preventDefault();
    try {
      const r = await get<{ records: Record_[] }>(`/api/v1/audit/records?${qs({ ...filter, limit: 100 })}`);
      setRecords(r.records);
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }

  useEffect(() => {
    search();
  }, []);

  const field = (name: keyof typeof filter, label: string) => html`<label>${label}
    <input name=${name} value=${filter[name]} onInput=${(e: any) => setFilter((f) => ({ ...f, [name]: e.currentTarget.value }))} /></label>`;

  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <div class="chart-head"><h2>Integrity</h2>
        <button onClick=${verify} disabled=${busy}>${busy ? "Verifying…" : "Verify the chain"}</button></div>
      ${report && !report.problem && html`<p class="ok" data-testid="verify-result">Intact: records ${report.first} to ${report.records},
        ${report.checkpoints} signed checkpoints.</p>`}
      ${report?.problem && html`<p class="error" data-testid="verify-result">Broken at line ${report.problem.line}
        (record ${report.problem.seq}, ${report.problem.kind}): ${report.problem.message}</p>`}
    </section>
    <section class="card">
      <form class="filters" onSubmit=${search} aria-label="Search the audit chain">
        ${field("actor", "Actor")} ${field("action", "Action (auth.*)")} ${field("outcome", "Outcome")} ${field("request_id", "Request id")}
        <button type="submit">Search</button>
      </form>
      <table class="grid" aria-label="Audit records" data-testid="audit-records">
        <thead><tr><th>#</th><th>Time</th><th>Actor</th><th>Action</th><th>Target</th><th>Outcome</th><th>Source</th></tr></thead>
        <tbody>
          ${records.map((r) => html`<tr><td>${r.seq}</td><td><small>${new Date(r.ts_ms).toISOString()}</small></td><td>${r.actor}</td>
            <td><code>${r.action}</code></td><td><small>${r.target}</small></td><td>${r.outcome}</td><td><small>${r.source ?? ""}</small></td></tr>`)}
        </tbody>
      </table>
    </section>
  `;
}
