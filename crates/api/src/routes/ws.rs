//! `GET /api/v1/ws`: live updates over one WebSocket (seed 004's subscription model). The
//! client sends JSON messages; the server answers on the same socket:
//!
//! - `{"type": "subscribe", "id": "cpu", "channel": "metrics", "query": "…", "every": "5s"}`
//!   → `{"type": "data", "id": "cpu", "time": ms, "data": {"resultType": …, "result": …}}`
//!   at once and every `every` (1 s to 1 h, default 5 s): an instant PromQL query, as the
//!   caller's role sees the tenant's metrics;
//! - `{"type": "subscribe", "id": "a", "channel": "alerts"}` → `{"type": "alerts", "id":
//!   "a", "alerts": […]}` at once and whenever the set of pending and firing alerts or
//!   their states change (checked every second);
//! - `{"type": "unsubscribe", "id": "cpu"}` → `{"type": "unsubscribed", "id": "cpu"}`;
//! - `{"type": "ping"}` → `{"type": "pong"}`.
//!
//! A message that is not understood gets `{"type": "error", "id": …, "error": "…"}` naming
//! the field, and the socket stays open. At most [`MAX_SUBSCRIPTIONS`] per socket, messages
//! up to 64 KiB. The server pings every 30 s and closes a socket that did not answer the
//! previous ping; clients reconnect and subscribe again. Browsers authenticate with the
//! `bearer.<token>` sub-protocol (`auth::WS_PROTOCOL`). Each subscription is audited as a
//! read (`metrics.ws_query`, `alerts.ws`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::Method;
use axum::response::Response;
use dozor_model::Scope;
use dozor_model::time::now_ms;
use serde_json::{Value, json};

use crate::policy::{Policy, Registry};
use crate::promjson;
use crate::routes::query::{QuerySpec, parse_query, run};
use crate::routes::series::audit_read_of;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Most subscriptions one socket holds.
pub const MAX_SUBSCRIPTIONS: usize = 32;
/// Largest client message, in bytes.
const MAX_MESSAGE: usize = 64 * 1024;
/// How often the server pings.
const PING: Duration = Duration::from_secs(30);
/// How often due subscriptions are looked at.
const TICK: Duration = Duration::from_millis(250);
/// How often the alert set is compared.
const ALERTS_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn register(r: Registry) -> Registry {
    r.route(Method::GET, "/api/v1/ws", Policy::Scope(Scope::Read), ws)
}

async fn ws(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols([crate::auth::WS_PROTOCOL])
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| {
            Session {
                state,
                principal,
                source,
                subs: HashMap::new(),
            }
            .serve(socket)
        })
}

enum Channel {
    Metrics {
        query: String,
        every: Duration,
    },
    /// The last alert set sent (ids and states), to send only changes.
    Alerts {
        last: Option<Vec<(String, String)>>,
    },
}

struct Sub {
    channel: Channel,
    due: Instant,
}

struct Session {
    state: AppState,
    principal: Principal,
    source: String,
    subs: HashMap<String, Sub>,
}

/// A client message's mistake: the subscription id it concerns and what is wrong.
struct Refusal(Option<String>, String);

impl Session {
    async fn serve(mut self, mut socket: WebSocket) {
        let mut tick = tokio::time::interval(TICK);
        let mut ping = tokio::time::interval(PING);
        ping.tick().await;
        let mut awaiting_pong = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for frame in self.due_frames().await {
                        if socket.send(Message::Text(frame.into())).await.is_err() {
                            return;
                        }
                    }
                }
                _ = ping.tick() => {
                    if awaiting_pong || socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return;
                    }
                    awaiting_pong = true;
                }
                msg = socket.recv() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t.to_string(),
                        Some(Ok(Message::Pong(_))) => {
                            awaiting_pong = false;
                            continue;
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => continue,
                    };
                    let answer = match self.handle(&text).await {
                        Ok(Some(a)) => a,
                        Ok(None) => continue,
                        Err(Refusal(id, error)) => json!({"type": "error", "id": id, "error": error}),
                    };
                    if socket.send(Message::Text(answer.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// One client message: the answer to send at once, if any.
    async fn handle(&mut self, text: &str) -> Result<Option<Value>, Refusal> {
        let msg: Value =
            serde_json::from_str(text).map_err(|e| Refusal(None, format!("not JSON: {e}")))?;
        let field = |name: &str| msg.get(name).and_then(Value::as_str);
        let id = field("id").map(str::to_owned);
        let refuse = |why: String| Refusal(id.clone(), why);
        match field("type") {
            Some("ping") => Ok(Some(json!({"type": "pong"}))),
            Some("unsubscribe") => {
                let id = id.clone().ok_or_else(|| refuse("id: required".into()))?;
                self.subs
                    .remove(&id)
                    .ok_or_else(|| refuse(format!("id: no subscription {id:?}")))?;
                Ok(Some(json!({"type": "unsubscribed", "id": id})))
            }
            Some("subscribe") => {
                let id = id
                    .clone()
                    .filter(|i| !i.is_empty() && i.len() <= 64)
                    .ok_or_else(|| refuse("id: required, 1 to 64 characters".into()))?;
                if !self.subs.contains_key(&id) && self.subs.len() >= MAX_SUBSCRIPTIONS {
                    return Err(refuse(format!("at most {MAX_SUBSCRIPTIONS} subscriptions")));
                }
                let channel = match field("channel") {
                    Some("metrics") => {
                        let query = field("query")
                            .filter(|q| !q.trim().is_empty())
                            .ok_or_else(|| refuse("query: required".into()))?;
                        parse_query(query).map_err(|e| refuse(e.message().to_owned()))?;
                        let every = match field("every") {
                            None => Duration::from_secs(5),
                            Some(e) => dozor_model::duration::parse(e)
                                .ok()
                                .filter(|d| {
                                    (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(d)
                                })
                                .ok_or_else(|| refuse("every: a duration from 1s to 1h".into()))?,
                        };
                        self.audit("metrics", "ws_query", query).await?;
                        Channel::Metrics {
                            query: query.to_owned(),
                            every,
                        }
                    }
                    Some("alerts") => {
                        self.audit("alerts", "ws", "").await?;
                        Channel::Alerts { last: None }
                    }
                    _ => return Err(refuse("channel: one of metrics, alerts".into())),
                };
                self.subs.insert(
                    id,
                    Sub {
                        channel,
                        due: Instant::now(),
                    },
                );
                Ok(None)
            }
            _ => Err(refuse("type: one of subscribe, unsubscribe, ping".into())),
        }
    }

    async fn audit(&self, area: &str, what: &str, query: &str) -> Result<(), Refusal> {
        audit_read_of(
            &self.state,
            &self.principal,
            self.source.clone(),
            area,
            what,
            query,
        )
        .await
        .map_err(|e: ApiError| Refusal(None, e.message().to_owned()))
    }

    /// The frames of the subscriptions that are due now.
    async fn due_frames(&mut self) -> Vec<String> {
        let now = Instant::now();
        let mut out = Vec::new();
        let due: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, s)| s.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            let id_json = Value::String(id.clone()).to_string();
            match &mut sub.channel {
                Channel::Metrics { query, every } => {
                    sub.due = now + *every;
                    let query = query.clone();
                    out.push(metrics_frame(&self.state, &self.principal, &id_json, &query).await);
                }
                Channel::Alerts { last } => {
                    sub.due = now + ALERTS_EVERY;
                    let alerts = match crate::routes::alerts::active_json(
                        &self.state,
                        &self.principal,
                    )
                    .await
                    {
                        Ok(a) => a,
                        Err(e) => {
                            out.push(error_frame(&id_json, e.message()));
                            continue;
                        }
                    };
                    let key: Vec<(String, String)> = alerts
                        .iter()
                        .map(|a| {
                            (
                                a["id"].as_str().unwrap_or("").to_owned(),
                                a["state"].as_str().unwrap_or("").to_owned(),
                            )
                        })
                        .collect();
                    if last.as_ref() != Some(&key) {
                        *last = Some(key);
                        out.push(json!({"type": "alerts", "id": id, "alerts": alerts}).to_string());
                    }
                }
            }
        }
        out
    }
}

/// One evaluation of a metrics subscription, as a frame (an error frame if it failed).
async fn metrics_frame(state: &AppState, principal: &Principal, id: &str, query: &str) -> String {
    let t = now_ms();
    let spec = match parse_query(query) {
        Ok(expr) => QuerySpec {
            expr,
            start: t,
            end: t,
            step: 0,
            instant: true,
        },
        Err(e) => return error_frame(id, e.message()),
    };
    match run(state, principal, state.settings().query, spec).await {
        Ok(res) => format!(
            r#"{{"type":"data","id":{id},"time":{t},"data":{}}}"#,
            promjson::query_data(&res.value)
        ),
        Err(e) => error_frame(id, e.message()),
    }
}

fn error_frame(id: &str, error: &str) -> String {
    format!(
        r#"{{"type":"error","id":{id},"error":{}}}"#,
        Value::String(error.to_owned())
    )
}
