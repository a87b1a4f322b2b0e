//! `/api/v1/ws`: one socket, several live subscriptions — PromQL results at their own
//! pace, as the caller's role sees the tenant, and the alert set — with mistakes answered
//! on the socket, unsubscribing, pings and a bound on subscriptions.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use dozor_api::visibility::AccessPolicy;
use dozor_model::Role;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket authenticated the browser's way: the token as a sub-protocol.
async fn connect(addr: SocketAddr, bearer: &str) -> Socket {
    let mut req = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .unwrap();
    let token = bearer.trim_start_matches("Bearer ");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("dozor, bearer.{token}").parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON frame (pings are answered by the client library).
async fn next(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn subscriptions_stream_queries_and_alerts_and_mistakes_are_answered() {
    let app = common::app_with_settings(|s| {
        s.access = AccessPolicy {
            owners: HashMap::from([("dev".to_owned(), vec!["shop".to_owned()])]),
            ..AccessPolicy::default()
        };
    })
    .await;
    app.add_user("default", "dev", "developer-password-1", Role::Developer)
        .await;
    let now = dozor_model::time::now_ms();
    app.append(
        "default",
        &[("__name__", "orders"), ("service", "shop")],
        &[(now - 1000, 3.0)],
    );
    app.append(
        "default",
        &[("__name__", "orders"), ("service", "crm")],
        &[(now - 1000, 4.0)],
    );
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let addr = app.listen().await;
    let mut ws = connect(addr, &admin).await;

    send(&mut ws, json!({"type": "subscribe", "id": "total", "channel": "metrics", "query": "sum(orders)", "every": "1s"})).await;
    let frame = next(&mut ws).await;
    assert_eq!(
        (frame["type"].as_str(), frame["id"].as_str()),
        (Some("data"), Some("total")),
        "{frame}"
    );
    assert_eq!(frame["data"]["resultType"], "vector");
    assert_eq!(frame["data"]["result"][0]["value"][1], "7");
    // Again a second later, at its own pace.
    let again = next(&mut ws).await;
    assert_eq!(again["id"], "total");
    assert!(again["time"].as_i64() > frame["time"].as_i64());

    send(
        &mut ws,
        json!({"type": "subscribe", "id": "al", "channel": "alerts"}),
    )
    .await;
    let mut seen_alerts = false;
    for _ in 0..5 {
        let f = next(&mut ws).await;
        if f["type"] == "alerts" {
            assert_eq!(
                (f["id"].as_str(), f["alerts"].as_array().map(Vec::len)),
                (Some("al"), Some(0))
            );
            seen_alerts = true;
            break;
        }
    }
    assert!(seen_alerts);

    // Mistakes are answered on the socket, naming what is wrong; the socket stays.
    for (msg, expect) in [
        (json!("not an object"), "type:"),
        (
            json!({"type": "subscribe", "id": "x", "channel": "weather"}),
            "channel:",
        ),
        (
            json!({"type": "subscribe", "id": "x", "channel": "metrics", "query": "sum("}),
            "query\": unclosed",
        ),
        (
            json!({"type": "subscribe", "id": "x", "channel": "metrics", "query": "up", "every": "0s"}),
            "every:",
        ),
        (json!({"type": "subscribe", "channel": "alerts"}), "id:"),
        (
            json!({"type": "unsubscribe", "id": "nope"}),
            "no subscription",
        ),
    ] {
        send(&mut ws, msg.clone()).await;
        loop {
            let f = next(&mut ws).await;
            if f["type"] == "error" {
                assert!(f["error"].as_str().unwrap().contains(expect), "{msg} → {f}");
                break;
            }
        }
    }
    ws.send(Message::Text("{".into())).await.unwrap();
    loop {
        let f = next(&mut ws).await;
        if f["type"] == "error" {
            assert!(f["error"].as_str().unwrap().starts_with("not JSON"), "{f}");
            break;
        }
    }
    send(&mut ws, json!({"type": "ping"})).await;
    loop {
        if next(&mut ws).await["type"] == "pong" {
            break;
        }
    }

    // Unsubscribed: no more frames of it.
    send(&mut ws, json!({"type": "unsubscribe", "id": "total"})).await;
    loop {
        if next(&mut ws).await["type"] == "unsubscribed" {
            break;
        }
    }
    let quiet = tokio::time::timeout(Duration::from_millis(2500), async {
        loop {
            let f = next(&mut ws).await;
            if f["id"] == "total" {
                return f;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "frames after unsubscribing: {quiet:?}");

    // A bound on subscriptions per socket.
    for i in 0..40 {
        send(&mut ws, json!({"type": "subscribe", "id": format!("s{i}"), "channel": "metrics", "query": "vector(1)", "every": "1h"})).await;
    }
    let mut refused = 0;
    let mut data = 0;
    while refused + data < 40 {
        let f = next(&mut ws).await;
        match f["type"].as_str() {
            Some("error") => {
                assert!(f["error"].as_str().unwrap().contains("at most 32"), "{f}");
                refused += 1;
            }
            Some("data") if f["id"].as_str().unwrap().starts_with('s') => data += 1,
            _ => {}
        }
    }
    assert_eq!(
        (data, refused),
        (31, 9),
        "32 subscriptions at most, the alerts one included"
    );

    // A developer's subscription sees only their services.
    let dev = app.bearer("dev", "developer-password-1").await;
    let mut dws = connect(addr, &dev).await;
    send(
        &mut dws,
        json!({"type": "subscribe", "id": "all", "channel": "metrics", "query": "sum(orders)"}),
    )
    .await;
    let f = next(&mut dws).await;
    assert_eq!(f["data"]["result"][0]["value"][1], "3", "{f}");
    let audited = app
        .audit_records()
        .iter()
        .filter(|r| r["action"] == "metrics.ws_query")
        .count();
    assert!(audited >= 2);
}

#[tokio::test]
async fn the_socket_needs_credentials() {
    let app = common::app().await;
    let addr = app.listen().await;
    let req = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .unwrap();
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    let mut req = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "dozor, bearer.wrong".parse().unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}
