// Path routing without a library: the address bar is the state (so every view is a
// shareable link), `navigate` pushes, the back button pops.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html";

type Listener = () => void;
const listeners = new Set<Listener>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

/** Goes to `to` (a path with an optional query), adding a history entry. */
export function navigate(to: string, replace = false) {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  listeners.forEach((l) => l());
}

/** The current path and query parameters; re-renders when they change. */
export function useLocation(): { path: string; params: URLSearchParams } {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

/** Sets query parameters of the current page without a new history entry. */
export function setParams(values: Record<string, string>) {
  const p = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(values)) {
    if (v) p.set(k, v);
    else p.delete(k);
  }
  const q = p.toString();
  history.replaceState(null, "", location.pathname + (q ? `?${q}` : ""));
}

/** A link that navigates in place (ctrl/cmd-click still opens a tab). */
export function Link({ href, children, current }: { href: string; children: any; current?: boolean }) {
  const click = (e: MouseEvent) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${click} aria-current=${current ? "page" : undefined}>${children}</a>`;
}
