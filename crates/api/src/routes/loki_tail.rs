//! Loki's live tail (`GET /loki/api/v1/tail`, WebSocket, scope `read`): Grafana's "Live"
//! mode and `logcli query --tail`.
//!
//! The socket first gets the lines since `start` (default: an hour ago; at most `limit`),
//! then, every second, the lines that arrived since, as Loki's
//! `{"streams":[…],"dropped_entries":null}` frames. Each poll re-reads the last
//! `delay_for` seconds (default 2, at most 5) so records that land a little late are not
//! missed, and drops what it already sent. A ping every 30 s finds dead peers; the tail ends
//! when the client closes or stops answering. Opening a tail is recorded in the audit chain.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::Method;
use axum::response::Response;
use dozor_logs::Direction;
use dozor_logs::logql::{self, QueryResult, Range};
use dozor_model::Scope;
use serde_json::json;

use super::loki_query::{audit_read, loki_time, parse_query, run, streams_json};
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

/// How often the store is polled for new lines.
const POLL: Duration = Duration::from_secs(1);
/// How often an idle socket is pinged.
const PING: Duration = Duration::from_secs(30);
/// Most lines one frame carries.
const MAX_LIMIT: usize = 5_000;

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/loki/api/v1/tail",
        Policy::Scope(Scope::Read),
        tail,
    )
}

async fn tail(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    ws: WebSocketUpgrade,
    params: Params,
) -> Result<Response, ApiError> {
    let expr = parse_query(&params)?;
    if !matches!(expr, logql::Expr::Log(_)) {
        return Err(ApiError::bad_data(
            "invalid parameter \"query\": tail needs a log query, not a metric query",
        ));
    }
    let now = now_ns();
    let start = loki_time(&params, "start", now - 3_600 * 1_000_000_000)?;
    let limit = params.limit()?.unwrap_or(100).min(MAX_LIMIT);
    let delay_s = match params.get("delay_for").filter(|v| !v.is_empty()) {
        None => 2,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|d| (0..=5).contains(d))
            .ok_or_else(|| {
                ApiError::bad_data("invalid parameter \"delay_for\": whole seconds from 0 to 5")
            })?,
    };
    audit_read(
        &state,
        &principal,
        source,
        params.get("query").unwrap_or(""),
        0,
    )
    .await?;
    let tailer = Tailer {
        state,
        principal,
        expr,
        limit,
        overlap_ns: delay_s.max(1) * 1_000_000_000,
        hasher: std::hash::RandomState::new(),
    };
    Ok(ws
        .protocols([crate::auth::WS_PROTOCOL])
        .on_upgrade(move |socket| tailer.serve(socket, start)))
}

fn now_ns() -> i64 {
    dozor_model::time::now_ms().saturating_mul(1_000_000)
}

struct Tailer {
    state: AppState,
    principal: Principal,
    expr: logql::Expr,
    limit: usize,
    overlap_ns: i64,
    /// Hashes sent lines (one key for the socket's life, so polls agree).
    hasher: std::hash::RandomState,
}

impl Tailer {
    async fn serve(self, mut socket: WebSocket, start: i64) {
        let mut from = start;
        // What was sent with a time at or after `from`: the overlap is read again.
        let mut sent: HashSet<(i64, u64)> = HashSet::new();
        let mut poll = tokio::time::interval(POLL);
        let mut ping = tokio::time::interval(PING);
        ping.tick().await;
        let mut awaiting_pong = false;
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    let now = now_ns();
                    match self.frame(from, now, &mut sent).await {
                        Ok(Some(frame)) => {
                            if socket.send(Message::Text(frame.into())).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = ?e, "log tail query failed");
                            let _ = socket.send(Message::Close(None)).await;
                            return;
                        }
                    }
                    from = (now - self.overlap_ns).max(from);
                    sent.retain(|(t, _)| *t >= from);
                }
                _ = ping.tick() => {
                    if awaiting_pong {
                        return;
                    }
                    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return;
                    }
                    awaiting_pong = true;
                }
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => awaiting_pong = false,
                },
            }
        }
    }

    /// The frame of lines in `[from, to]` not sent yet, oldest first; `None` if none.
    async fn frame(
        &self,
        from: i64,
        to: i64,
        sent: &mut HashSet<(i64, u64)>,
    ) -> Result<Option<String>, ApiError> {
        let range = Range {
            start_ns: from,
            end_ns: to,
            step_ns: 0,
            // Enough to cover what was sent in the overlap plus a frame of new lines.
            limit: self.limit + sent.len(),
            direction: Direction::Forward,
        };
        let (result, _) = run(&self.state, &self.principal, self.expr.clone(), range).await?;
        let QueryResult::Streams(mut streams) = result else {
            return Ok(None);
        };
        let mut budget = self.limit;
        for s in &mut streams {
            s.entries.retain(|(t, line)| {
                let h = std::hash::BuildHasher::hash_one(&self.hasher, (&s.labels, line));
                budget > 0 && sent.insert((*t, h)) && {
                    budget -= 1;
                    true
                }
            });
        }
        streams.retain(|s| !s.entries.is_empty());
        if streams.is_empty() {
            return Ok(None);
        }
        let frame = json!({
            "streams": streams.iter().map(streams_json).collect::<Vec<_>>(),
            "dropped_entries": null,
        });
        Ok(Some(frame.to_string()))
    }
}
