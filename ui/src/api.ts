// The UI talks to Dozor only through its public HTTP API. This module keeps the session
// (access and refresh tokens in sessionStorage, gone when the tab closes), attaches the
// access token to every call, and refreshes it once when the server answers 401.

export interface Session {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  user: { name: string; role: string; tenant: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const KEY = "dozor.session";
type Listener = (s: Session | null) => void;
const listeners = new Set<Listener>();

export function session(): Session | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    return null;
  }
}

function setSession(s: Session | null) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  listeners.forEach((l) => l(s));
}

export function onSessionChange(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

async function parse<T>(res: Response): Promise<T> {
  let body: any = null;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(res.status, `HTTP ${res.status}`);
  }
  if (!res.ok || body?.status !== "success") {
    throw new ApiError(res.status, body?.error ?? `HTTP ${res.status}`);
  }
  return body.data as T;
}

export async function login(username: string, password: string): Promise<Session> {
  const res = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const s = await parse<Session>(res);
  setSession(s);
  return s;
}

async function refresh(s: Session): Promise<Session | null> {
  const res = await fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: s.refresh_token }),
  });
  if (!res.ok) return null;
  const next = await parse<Session>(res);
  setSession(next);
  return next;
}

export async function logout(): Promise<void> {
  const s = session();
  if (s) {
    await fetch("/api/v1/auth/logout", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${s.access_token}` },
      body: JSON.stringify({ refresh_token: s.refresh_token }),
    }).catch(() => undefined);
  }
  setSession(null);
}

/** Calls a JSON API path with the session's token, refreshing it once on 401. */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let s = session();
  if (!s) throw new ApiError(401, "not logged in");
  const call = (t: Session) =>
    fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${t.access_token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let res = await call(s);
  if (res.status === 401) {
    s = await refresh(s);
    if (!s) {
      setSession(null);
      throw new ApiError(401, "session expired");
    }
    res = await call(s);
  }
  return parse<T>(res);
}

/** Calls an API that answers without Dozor's envelope (Alertmanager's API v2): the JSON
 * body, or an error with its message. */
export async function bare<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${session()?.access_token ?? ""}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) {
    let why = text;
    try {
      why = JSON.parse(text).error ?? text;
    } catch {}
    throw new ApiError(res.status, why || `HTTP ${res.status}`);
  }
  return (text ? JSON.parse(text) : null) as T;
}

/** GET a JSON API path. */
export function get<T>(path: string): Promise<T> {
  return request<T>("GET", path);
}

/** Query string of `params` (empty values left out). */
export function qs(params: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") p.set(k, String(v));
  return p.toString();
}

/** Who is logged in: role, tenant, scopes, and what part of the data the role sees. */
export interface Me {
  tenant: string;
  actor: string;
  role?: string;
  scopes: string;
  sees?: string;
}

export function me(): Promise<Me> {
  return get<Me>("/api/v1/auth/me");
}

/** Whether `me` holds `scope`. */
export function can(m: Me | null, scope: string): boolean {
  return !!m && m.scopes.split(",").includes(scope);
}

/** A WebSocket to an API path, authenticated by the access token offered as a
 * sub-protocol (browsers cannot set headers on WebSockets; URLs end up in logs). */
export function socket(path: string): WebSocket {
  const s = session();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return new WebSocket(`${proto}//${location.host}${path}`, ["dozor", `bearer.${s?.access_token ?? ""}`]);
}
