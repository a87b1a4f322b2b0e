// Live updates over one WebSocket (`/api/v1/ws`): pages subscribe to PromQL results or to
// the alert set and get frames as they come. The socket reconnects by itself (backing off
// to 10 s) and subscribes again; it closes when nobody listens.
import { socket } from "./api";

export type Frame = { type: string; id: string; [k: string]: unknown };
type Sub = { msg: Record<string, unknown>; on: (f: Frame) => void };

const subs = new Map<string, Sub>();
let ws: WebSocket | null = null;
let backoff = 500;
let next = 0;

function open() {
  if (ws || subs.size === 0) return;
  const s = socket("/api/v1/ws");
  ws = s;
  s.onopen = () => {
    backoff = 500;
    for (const [id, sub] of subs) s.send(JSON.stringify({ type: "subscribe", id, ...sub.msg }));
  };
  s.onmessage = (m) => {
    const f = JSON.parse(m.data) as Frame;
    subs.get(f.id)?.on(f);
  };
  s.onclose = () => {
    if (ws !== s) return;
    ws = null;
    if (subs.size > 0) {
      setTimeout(open, backoff);
      backoff = Math.min(backoff * 2, 10_000);
    }
  };
}

/** Subscribes (`{channel: "alerts"}` or `{channel: "metrics", query, every}`); returns the
 * unsubscribe function. */
export function subscribe(msg: Record<string, unknown>, on: (f: Frame) => void): () => void {
  const id = `s${++next}`;
  subs.set(id, { msg, on });
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "subscribe", id, ...msg }));
  else open();
  return () => {
    subs.delete(id);
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "unsubscribe", id }));
    if (subs.size === 0) {
      const s = ws;
      ws = null;
      s?.close();
    }
  };
}
