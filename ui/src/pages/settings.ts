// Settings (administrators): users and their roles, API tokens (the secret shown once),
// and the notification receivers as loaded.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html";
import { bare, get, request } from "../api";

interface User {
  id: string;
  name: string;
  role: string;
  disabledAt?: number | null;
}

interface Token {
  id: string;
  name: string;
  scopes: string[];
  createdBy?: string;
  revokedAt?: number | null;
}

const ROLES = ["viewer", "operator", "admin", "monitoring", "support", "developer", "business", "auditor", "ingest"];
const SCOPES = ["ingest", "read", "write", "audit", "admin"];

export function SettingsPage() {
  const [users, setUsers] = useState<User[]>([]);
  const [tokens, setTokens] = useState<Token[]>([]);
  const [receivers, setReceivers] = useState<string[]>([]);
  const [routing, setRouting] = useState("");
  const [user, setUser] = useState({ name: "", password: "", role: "viewer" });
  const [token, setToken] = useState({ name: "", scopes: ["read"] as string[] });
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = async () => {
    try {
      const [u, t] = await Promise.all([get<User[]>("/api/v1/users"), get<Token[]>("/api/v1/tokens")]);
      setUsers(u);
      setTokens(t);
    } catch (e) {
      setError((e as Error).message);
    }
    bare<{ name: string }[]>("GET", "/api/v2/receivers").then((r) => setReceivers(r.map((x) => x.name)), () => undefined);
    bare<{ config?: { original?: string } }>("GET", "/api/v2/status").then((st) => setRouting(st?.config?.original ?? ""), () => undefined);
  };
  useEffect(() => {
    load();
  }, []);

  async function addUser(e: Event) {
    e.preventDefault();
    try {
      await request("POST", "/api/v1/users", user);
      setUser({ name: "", password: "", role: "viewer" });
      setError(null);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  async function addToken(e: Event) {
    e.preventDefault();
    try {
      const made = await request<{ token: string }>("POST", "/api/v1/tokens", token);
      setSecret(made.token);
      setToken({ name: "", scopes: ["read"] });
      setError(null);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  async function revoke(id: string) {
    try {
      await request("DELETE", `/api/v1/tokens/${encodeURIComponent(id)}`);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section class="card">
      <h2>Users</h2>
      <table class="grid" aria-label="Users">
        <thead><tr><th>Name</th><th>Role</th></tr></thead>
        <tbody>${users.map((u) => html`<tr><td>${u.name}</td><td>${u.role}</td></tr>`)}</tbody>
      </table>
      <form class="filters" aria-label="Add a user" onSubmit=${addUser}>
        <label>Name <input name="new-user" value=${user.name} onInput=${(e: any) => setUser({ ...user, name: e.currentTarget.value })} required /></label>
        <label>Password <input type="password" name="new-password" autocomplete="new-password" value=${user.password}
          onInput=${(e: any) => setUser({ ...user, password: e.currentTarget.value })} required /></label>
        <label>Role <select name="new-role" value=${user.role} onChange=${(e: any) => setUser({ ...user, role: e.currentTarget.value })}>
          ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
        <button type="submit">Add user</button>
      </form>
    </section>
    <section class="card">
      <h2>API tokens</h2>
      ${secret && html`<p class="ok" role="status">New token (shown once): <code data-testid="token-secret">${secret}</code></p>`}
      <table class="grid" aria-label="API tokens">
        <thead><tr><th>Name</th><th>Scopes</th><th>State</th><th></th></tr></thead>
        <tbody>${tokens.map((t) => html`<tr><td>${t.name}</td><td>${t.scopes.join(", ")}</td><td>${t.revokedAt ? "revoked" : "active"}</td>
          <td>${!t.revokedAt && html`<button class="link" onClick=${() => revoke(t.id)} aria-label=${"Revoke " + t.name}>Revoke</button>`}</td></tr>`)}</tbody>
      </table>
      <form class="filters" aria-label="Create a token" onSubmit=${addToken}>
        <label>Name <input name="token-name" value=${token.name} onInput=${(e: any) => setToken({ ...token, name: e.currentTarget.value })} required /></label>
        <fieldset class="scopes"><legend>Scopes</legend>
          ${SCOPES.map((s) => html`<label class="inline"><input type="checkbox" checked=${token.scopes.includes(s)}
            onChange=${(e: any) => setToken({ ...token, scopes: e.currentTarget.checked ? [...token.scopes, s] : token.scopes.filter((x) => x !== s) })} /> ${s}</label>`)}
        </fieldset>
        <button type="submit">Create token</button>
      </form>
    </section>
    <section class="card">
      <h2>Receivers and routes</h2>
      <p class="hint">From alertmanager.yml (secrets are never shown): ${receivers.join(", ") || "none"}</p>
      ${routing && html`<pre class="context" data-testid="routing">${routing}</pre>`}
    </section>
  `;
}
