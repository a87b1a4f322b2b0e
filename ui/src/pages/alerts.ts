// Alerts: what fires now (acknowledge or resolve, with a comment) and what fired before.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { can, get, request, type Me } from "../api";
import { subscribe } from "../live";
import { RulesSection } from "./rules";
import { SilencesSection } from "./silences";
import { AdviceSection } from "./advice";

interface Alert {
  id: string;
  state: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  activeAt?: string;
  value?: string;
  acknowledged: { at: string; by: string; comment?: string } | null;
}

interface Episode {
  id: string;
  rule: string;
  severity?: string;
  state: string;
  firedAt: string;
  resolvedAt?: string;
  resolvedBy?: string;
  acknowledgedBy?: string;
}

export function AlertsPage({ me }: { me: Me | null }) {
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [history, setHistory] = useState<Episode[]>([]);
  const [comments, setComments] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [live, setLive] = useState(false);
  const writer = can(me, "write");

  async function load() {
    try {
      const [a, h] = await Promise.all([
        get<{ alerts: Alert[] }>("/api/v1/alerts"),
        get<{ episodes: Episode[] }>("/api/v1/alerts/history?limit=50").catch(() => ({ episodes: [] })),
      ]);
      setAlerts(a.alerts);
      setHistory(h.episodes ?? []);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoaded(true);
    }
  }

  useEffect(() => {
    load();
    // The alert set comes live over the WebSocket; the history is read again with it.
    return subscribe({ channel: "alerts" }, (f) => {
      if (f.type !== "alerts") return;
      setAlerts(f.alerts as Alert[]);
      setLive(true);
      get<{ episodes: Episode[] }>("/api/v1/alerts/history?limit=50").then((h) => setHistory(h.episodes ?? []), () => undefined);
    });
  }, []);

  async function act(id: string, what: "acknowledge" | "resolve") {
    try {
      await request("POST", `/api/v1/alerts/${id}/${what}`, { comment: comments[id] ?? "" });
      setComments((c) => ({ ...c, [id]: "" }));
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <h2>Firing and pending ${live && html`<small class="hint" data-testid="live">· live</small>`}</h2>
      ${loaded && alerts.length === 0 && html`<p class="hint">Nothing fires.</p>`}
      <table class="grid" aria-label="Active alerts" data-testid="active-alerts">
        <thead><tr><th>Alert</th><th>State</th><th>Labels</th><th>Since</th><th>Acknowledged</th>${writer && html`<th>Action</th>`}</tr></thead>
        <tbody>
          ${alerts.map((a) => html`<tr data-alert=${a.id}>
            <td><b>${a.labels.alertname}</b><br /><small>${a.annotations.summary ?? ""}</small></td>
            <td><span class=${"badge " + a.state}>${a.state}</span></td>
            <td><small>${Object.entries(a.labels).filter(([k]) => k !== "alertname").map(([k, v]) => `${k}=${v}`).join(" ")}</small></td>
            <td><small>${a.activeAt ?? ""}</small></td>
            <td class="acked">${a.acknowledged ? `${a.acknowledged.by}${a.acknowledged.comment ? ": " + a.acknowledged.comment : ""}` : "—"}</td>
            ${writer && html`<td class="actions">
              <input aria-label=${"Comment on " + a.labels.alertname} placeholder="comment" value=${comments[a.id] ?? ""}
                onInput=${(e: any) => setComments((c) => ({ ...c, [a.id]: e.currentTarget.value }))} />
              ${a.state === "firing" && !a.acknowledged && html`<button onClick=${() => act(a.id, "acknowledge")}>Acknowledge</button>`}
              ${a.state === "firing" && html`<button onClick=${() => act(a.id, "resolve")}>Resolve</button>`}
            </td>`}
          </tr>`)}
        </tbody>
      </table>
    </section>
    <${SilencesSection} me=${me} />
    <${RulesSection} me=${me} />
    <${AdviceSection} />
    <section class="card">
      <h2>History</h2>
      <table class="grid" aria-label="Alert history">
        <thead><tr><th>Rule</th><th>Severity</th><th>Fired</th><th>Resolved</th><th>By</th></tr></thead>
        <tbody>
          ${history.map((e) => html`<tr><td>${e.rule}</td><td>${e.severity ?? ""}</td><td><small>${e.firedAt}</small></td>
            <td><small>${e.resolvedAt ?? "—"}</small></td><td>${e.resolvedBy ?? e.acknowledgedBy ?? ""}</td></tr>`)}
        </tbody>
      </table>
    </section>
  `;
}
