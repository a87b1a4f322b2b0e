// Dozor UI entry point: the login page until there is a session, then the app — a header
// with the pages the user's role may use, and the page the address names.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { html } from "./html";
import { can, logout, me as fetchMe, onSessionChange, session, type Me, type Session } from "./api";
import { Link, navigate, useLocation } from "./router";
import { LoginPage } from "./pages/login";
import { StatusPage } from "./pages/status";
import { MetricsPage } from "./pages/metrics";
import { LogsPage } from "./pages/logs";
import { AlertsPage } from "./pages/alerts";
import { AuditPage } from "./pages/audit";
import { DashboardsPage } from "./pages/dashboards";
import { IncidentsPage } from "./pages/incidents";
import { KktPage } from "./pages/kkt";
import { SlaPage } from "./pages/sla";
import { TicketingPage } from "./pages/ticketing";
import { SettingsPage } from "./pages/settings";
import "./style.css";

/** The pages, with the scope each needs (the API refuses the rest anyway). */
const PAGES: { path: string; title: string; scope: string }[] = [
  { path: "/status", title: "Status", scope: "read" },
  { path: "/explore", title: "Metrics", scope: "read" },
  { path: "/logs", title: "Logs", scope: "read" },
  { path: "/dashboards", title: "Dashboards", scope: "read" },
  { path: "/alerts", title: "Alerts", scope: "read" },
  { path: "/incidents", title: "Incidents", scope: "read" },
  { path: "/kkt", title: "Cash registers", scope: "read" },
  { path: "/sla", title: "Service levels", scope: "read" },
  { path: "/ticketing", title: "Ticketing", scope: "read" },
  { path: "/audit", title: "Audit", scope: "audit" },
  { path: "/settings", title: "Settings", scope: "admin" },
];

function Shell({ session: s }: { session: Session }) {
  const { path } = useLocation();
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => {
    fetchMe().then(setMe, () => setMe(null));
  }, [s.access_token]);
  const allowed = PAGES.filter((p) => can(me, p.scope));
  const page = PAGES.find((p) => p.path === path || path.startsWith(p.path + "/"));
  useEffect(() => {
    // An unknown path goes to the first page; a known one the role may not use says so.
    if (me && !page && allowed.length > 0) navigate(allowed[0].path, true);
  }, [me, path]);
  let body: any = null;
  if (me && page && !allowed.includes(page)) {
    body = html`<p class="error" role="alert">Your role (${me.role}) may not use this page.</p>`;
  } else if (me) {
    body =
      path === "/explore" ? html`<${MetricsPage} />`
      : path === "/logs" ? html`<${LogsPage} />`
      : page?.path === "/dashboards" ? html`<${DashboardsPage} me=${me} />`
      : path === "/alerts" ? html`<${AlertsPage} me=${me} />`
      : page?.path === "/incidents" ? html`<${IncidentsPage} me=${me} />`
      : page?.path === "/kkt" ? html`<${KktPage} />`
      : path === "/sla" ? html`<${SlaPage} />`
      : path === "/ticketing" ? html`<${TicketingPage} me=${me} />`
      : path === "/audit" ? html`<${AuditPage} />`
      : path === "/settings" ? html`<${SettingsPage} />`
      : html`<${StatusPage} />`;
  }
  return html`
    <header class="top">
      <span class="brand"><span class="logo" aria-hidden="true">◉</span> Dozor</span>
      <nav aria-label="Pages">
        ${allowed.map((p) => html`<${Link} href=${p.path} current=${p === page}>${p.title}<//>`)}
      </nav>
      <span class="who">${s.user.name} · ${s.user.role} · tenant ${s.user.tenant}${me?.sees ? html` · <abbr title=${me.sees}>sees part</abbr>` : ""}</span>
      <button class="link" onClick=${() => logout()}>Log out</button>
    </header>
    <main class="page" id="main">${body}</main>
  `;
}

function App() {
  const [s, setS] = useState<Session | null>(session());
  useEffect(() => onSessionChange(setS), []);
  useEffect(() => {
    if (!s && location.pathname !== "/login") navigate("/login", true);
    // After logging in, the shell sends "/" to the first page the role may use.
    if (s && location.pathname === "/login") navigate("/", true);
  }, [s]);
  return s ? html`<${Shell} session=${s} />` : html`<${LoginPage} />`;
}

const root = document.getElementById("app");
if (root) render(html`<${App} />`, root);
