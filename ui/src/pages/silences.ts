// Silences (Alertmanager's API v2): the active and pending ones, a new one from matchers,
// and expiring one early.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { bare as am, can, type Me } from "../api";

interface Silence {
  id: string;
  matchers: { name: string; value: string; isRegex: boolean; isEqual?: boolean }[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  status: { state: string };
}

/** `alertname=Disk, service=~"shop|crm"` → Alertmanager's matchers. */
function parseMatchers(text: string) {
  return text
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean)
    .map((m) => {
      const x = m.match(/^([A-Za-z_][\w]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?$/);
      if (!x) throw new Error(`not a matcher: ${m}`);
      return { name: x[1], value: x[3], isRegex: x[2].includes("~"), isEqual: !x[2].startsWith("!") };
    });
}

export function SilencesSection({ me }: { me: Me | null }) {
  const [list, setList] = useState<Silence[]>([]);
  const [matchers, setMatchers] = useState("");
  const [hours, setHours] = useState("2");
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const writer = can(me, "write");

  const load = () => am<Silence[]>("GET", "/api/v2/silences").then((s) => setList(s.filter((x) => x.status.state !== "expired")), (e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);

  async function create(e: Event) {
    e.preventDefault();
    try {
      const endsAt = new Date(Date.now() + Number(hours) * 3_600_000).toISOString();
      await am("POST", "/api/v2/silences", { matchers: parseMatchers(matchers), startsAt: new Date().toISOString(), endsAt, createdBy: me?.actor ?? "", comment });
      setMatchers("");
      setComment("");
      setError(null);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  async function expire(id: string) {
    try {
      await am("DELETE", `/api/v2/silence/${encodeURIComponent(id)}`);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return html`
    <section class="card">
      <h2>Silences</h2>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <table class="grid" aria-label="Silences">
        <thead><tr><th>Matchers</th><th>State</th><th>Ends</th><th>By</th><th>Comment</th>${writer && html`<th></th>`}</tr></thead>
        <tbody>${list.map((s) => html`<tr><td><code>${s.matchers.map((m) => `${m.name}${m.isEqual === false ? "!" : ""}${m.isRegex ? "=~" : "="}"${m.value}"`).join(", ")}</code></td>
          <td>${s.status.state}</td><td><small>${s.endsAt}</small></td><td>${s.createdBy}</td><td>${s.comment}</td>
          ${writer && html`<td><button class="link" aria-label=${"Expire silence " + s.comment} onClick=${() => expire(s.id)}>Expire</button></td>`}</tr>`)}</tbody>
      </table>
      ${list.length === 0 && html`<p class="hint">No active silences.</p>`}
      ${writer && html`<form class="filters" aria-label="Add a silence" onSubmit=${create}>
        <label>Matchers <input name="matchers" placeholder='alertname="DiskFull", service=~"shop|crm"' value=${matchers} onInput=${(e: any) => setMatchers(e.currentTarget.value)} required /></label>
        <label>Hours <input name="hours" type="number" min="1" max="720" value=${hours} onInput=${(e: any) => setHours(e.currentTarget.value)} /></label>
        <label>Comment <input name="comment" value=${comment} onInput=${(e: any) => setComment(e.currentTarget.value)} required /></label>
        <button type="submit">Silence</button>
      </form>`}
    </section>
  `;
}
