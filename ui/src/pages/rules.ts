// Alert rules: the structured rules of the tenant, and an editor that previews what a rule
// would have fired over the last day before it is saved.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { can, get, request, type Me } from "../api";

interface StoredRule {
  id: string;
  name: string;
  enabled: boolean;
  expression: string | null;
  state: string;
}

interface Preview {
  expression: string;
  forMs: number;
  fired: number;
  episodes: { labels: Record<string, string>; from: string; until: string; fired: boolean; firedAt?: string }[];
}

const TEMPLATE = JSON.stringify(
  {
    name: "High load",
    condition: { type: "threshold", metric: "node_load1", operator: ">", value: 4 },
    severity: "warning",
    for: "5m",
    description: "The host is busier than it should be",
  },
  null,
  2,
);

export function RulesSection({ me }: { me: Me | null }) {
  const [rules, setRules] = useState<StoredRule[]>([]);
  const [text, setText] = useState(TEMPLATE);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const writer = can(me, "write");

  const load = () => get<{ rules: StoredRule[] }>("/api/v1/alerts/rules").then((r) => setRules(r.rules), (e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);

  function parsed(): unknown | null {
    try {
      return JSON.parse(text);
    } catch (e) {
      setError(`not JSON: ${(e as Error).message}`);
      return null;
    }
  }

  async function run() {
    const body = parsed();
    if (body === null) return;
    try {
      setPreview(await request<Preview>("POST", "/api/v1/alerts/rules/preview", body));
      setError(null);
    } catch (e) {
      setPreview(null);
      setError((e as Error).message);
    }
  }

  async function save() {
    const body = parsed();
    if (body === null) return;
    try {
      await request("POST", "/api/v1/alerts/rules", body);
      setError(null);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function remove(id: string) {
    try {
      await request("DELETE", `/api/v1/alerts/rules/${encodeURIComponent(id)}`);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return html`
    <section class="card">
      <h2>Rules</h2>
      <table class="grid" aria-label="Alert rules">
        <thead><tr><th>Name</th><th>Expression</th><th>State</th>${writer && html`<th></th>`}</tr></thead>
        <tbody>${rules.map((r) => html`<tr><td>${r.name}</td><td><code>${r.expression ?? ""}</code></td><td>${r.enabled ? r.state : "disabled"}</td>
          ${writer && html`<td><button class="link" aria-label=${"Delete rule " + r.name} onClick=${() => remove(r.id)}>Delete</button></td>`}</tr>`)}</tbody>
      </table>
      ${rules.length === 0 && html`<p class="hint">No structured rules yet (rule files are listed by /api/v1/rules).</p>`}
      <h2>Rule editor</h2>
      <textarea aria-label="Rule JSON" rows="10" value=${text} onInput=${(e: any) => setText(e.currentTarget.value)}></textarea>
      <div class="actions">
        <button type="button" onClick=${run}>Preview the last day</button>
        ${writer && html`<button type="button" onClick=${save}>Save rule</button>`}
      </div>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${preview && html`<div data-testid="preview">
        <p><code>${preview.expression}</code>${preview.forMs ? ` for ${preview.forMs / 60000} min` : ""}:
          <b>would have fired ${preview.fired} time${preview.fired === 1 ? "" : "s"}</b> in the last day
          (${preview.episodes.length} span${preview.episodes.length === 1 ? "" : "s"} where the condition held).</p>
        <table class="grid"><thead><tr><th>Series</th><th>From</th><th>Until</th><th>Fired</th></tr></thead>
          <tbody>${preview.episodes.map((e) => html`<tr><td><small>${Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(" ")}</small></td>
            <td><small>${e.from}</small></td><td><small>${e.until}</small></td><td>${e.fired ? "yes, " + e.firedAt : "no (shorter than for)"}</td></tr>`)}</tbody></table>
      </div>`}
    </section>
  `;
}
