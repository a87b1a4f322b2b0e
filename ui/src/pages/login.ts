import { useState } from "preact/hooks";
import { html } from "../html";
import { login } from "../api";

export function LoginPage() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(username, password);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return html`
    <main class="login">
      <form class="card" onSubmit=${submit} aria-label="Log in">
        <h1><span class="logo">◉</span> Dozor</h1>
        <label>User <input name="username" autocomplete="username" value=${username}
          onInput=${(e: any) => setUsername(e.currentTarget.value)} required /></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" value=${password}
          onInput=${(e: any) => setPassword(e.currentTarget.value)} required /></label>
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <button type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
      </form>
    </main>
  `;
}
