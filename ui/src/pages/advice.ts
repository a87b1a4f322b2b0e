// The alert advisor's recommendations (`/api/v1/ai/alert-recommendations`).
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { get } from "../api";

interface Recommendation {
  kind: string;
  rule?: string;
  metric?: string;
  advice: string;
  suggested?: number;
}

export function AdviceSection() {
  const [recs, setRecs] = useState<Recommendation[] | null>(null);
  useEffect(() => {
    get<{ recommendations: Recommendation[] }>("/api/v1/ai/alert-recommendations").then((r) => setRecs(r.recommendations), () => setRecs([]));
  }, []);
  return html`
    <section class="card">
      <h2>Advice on the rules, from the last 7 days</h2>
      <ul class="advice" aria-label="Rule advice">
        ${(recs ?? []).map((r) => html`<li><span class="badge">${r.kind}</span> <b>${r.rule ?? r.metric}</b>: ${r.advice}${r.suggested === undefined ? "" : ` (suggested: ${r.suggested})`}</li>`)}
      </ul>
      ${recs && recs.length === 0 && html`<p class="hint">Nothing to advise.</p>`}
    </section>
  `;
}
