// Incidents: the list (open first), and one incident — its timeline, the context collected
// when it opened, notes, and acknowledge / resolve / reopen.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { can, get, request, type Me } from "../api";
import { Link, useLocation } from "../router";

interface Incident {
  id: string;
  title: string;
  description?: string;
  status: string;
  severity: string;
  service_name?: string;
  detected_at: string;
  acknowledged_by?: string;
  resolved_by?: string;
  postmortem?: string;
  timeline?: { seq: number; at: string; kind: string; actor: string; text: string }[];
  context?: unknown;
}

export function IncidentsPage({ me }: { me: Me | null }) {
  const { path } = useLocation();
  const id = path.startsWith("/incidents/") ? decodeURIComponent(path.slice("/incidents/".length)) : null;
  return id ? html`<${IncidentView} id=${id} me=${me} />` : html`<${IncidentList} />`;
}

function IncidentList() {
  const [list, setList] = useState<Incident[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    get<{ incidents: Incident[] }>("/api/v1/incidents?limit=200").then(
      (r) => setList([...r.incidents].sort((a, b) => Number(a.status === "resolved") - Number(b.status === "resolved"))),
      (e) => setError(e.message),
    );
  }, []);
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <h2>Incidents</h2>
      <table class="grid" aria-label="Incidents">
        <thead><tr><th>Title</th><th>Status</th><th>Severity</th><th>Service</th><th>Detected</th></tr></thead>
        <tbody>
          ${list.map((i) => html`<tr><td><${Link} href=${`/incidents/${i.id}`}>${i.title}<//></td>
            <td><span class=${"badge " + (i.status === "open" ? "firing" : "")}>${i.status}</span></td>
            <td>${i.severity}</td><td>${i.service_name ?? ""}</td><td><small>${i.detected_at}</small></td></tr>`)}
        </tbody>
      </table>
      ${list.length === 0 && html`<p class="hint">No incidents.</p>`}
    </section>
  `;
}

function IncidentView({ id, me }: { id: string; me: Me | null }) {
  const [i, setI] = useState<Incident | null>(null);
  const [note, setNote] = useState("");
  const [error, setError] = useState<string | null>(null);
  const writer = can(me, "write");
  const path = `/api/v1/incidents/${encodeURIComponent(id)}`;

  const load = () => get<Incident>(path).then(setI, (e) => setError(e.message));
  useEffect(() => {
    load();
  }, [id]);

  async function act(what: string, body?: unknown) {
    try {
      await request("POST", `${path}/${what}`, body);
      setNote("");
      setError(null);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  if (!i) return html`${error ? html`<p class="error" role="alert">${error}</p>` : html`<p class="hint">Loading…</p>`}`;
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <div class="chart-head">
        <h2>${i.title}</h2>
        <span class=${"badge " + (i.status === "open" ? "firing" : "")} data-testid="incident-status">${i.status}</span>
        <small>${i.severity}${i.service_name ? " · " + i.service_name : ""} · detected ${i.detected_at}</small>
        ${writer && i.status === "open" && html`<button onClick=${() => act("acknowledge", { comment: note })}>Acknowledge</button>`}
        ${writer && i.status !== "resolved" && html`<button onClick=${() => act("resolve", { comment: note })}>Resolve</button>`}
        ${writer && i.status === "resolved" && html`<button onClick=${() => act("reopen", { comment: note })}>Reopen</button>`}
      </div>
      ${i.description && html`<p>${i.description}</p>`}
      ${i.postmortem && html`<p><b>Postmortem:</b> ${i.postmortem}</p>`}
    </section>
    <section class="card">
      <h2>Timeline</h2>
      <ol class="timeline" data-testid="timeline">
        ${(i.timeline ?? []).map((e) => html`<li><small>${e.at}</small> <b>${e.kind}</b> ${e.actor}${e.text ? ": " + e.text : ""}</li>`)}
      </ol>
      ${writer && html`<form class="query" aria-label="Add a note" onSubmit=${(e: Event) => { e.preventDefault(); if (note.trim()) act("notes", { text: note }); }}>
        <input aria-label="Note" placeholder="a note, or the comment of the next action" value=${note} onInput=${(e: any) => setNote(e.currentTarget.value)} />
        <button type="submit">Add note</button>
      </form>`}
    </section>
    ${i.context !== null && i.context !== undefined && html`<section class="card"><h2>Context</h2>
      <pre class="context">${JSON.stringify(i.context, null, 2)}</pre></section>`}
  `;
}
