// Dozor UI entry point: shows the login page until there is a session, then the app.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { html } from "./html";
import { onSessionChange, session, type Session } from "./api";
import { LoginPage } from "./pages/login";
import { StatusPage } from "./pages/status";
import "./style.css";

function App() {
  const [s, setS] = useState<Session | null>(session());
  useEffect(() => onSessionChange(setS), []);
  useEffect(() => {
    if (s && location.pathname !== "/status") history.replaceState(null, "", "/status");
    if (!s && location.pathname !== "/login") history.replaceState(null, "", "/login");
  }, [s]);
  return s ? html`<${StatusPage} session=${s} />` : html`<${LoginPage} />`;
}

const root = document.getElementById("app");
if (root) render(html`<${App} />`, root);
