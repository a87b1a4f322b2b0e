//! OIDC login against a local stub issuer over real HTTP: discovery, the authorization
//! redirect with PKCE and a nonce, the code exchange with client credentials, an RS256 ID
//! token checked against the JWKS; users made on first login with the role their groups
//! map to; replayed states, wrong nonces, audiences and keys, unmapped users and name
//! collisions with local users refused.
//!
//! The RSA key in `fixtures/oidc_rsa.pem` was generated for these tests only.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use dozor_api::oidc::{Oidc, OidcSettings};
use dozor_model::Role;
use serde_json::{Value, json};

const CLIENT: &str = "dozor";
const SECRET: &str = "client-secret-for-tests";

/// How the stub issuer misbehaves, and who logs in.
#[derive(Clone, Default)]
struct Mode {
    username: String,
    groups: Vec<String>,
    wrong_nonce: bool,
    wrong_audience: bool,
    unknown_key: bool,
}

#[derive(Default)]
struct Stub {
    issuer: String,
    mode: Mode,
    /// code → (nonce, PKCE challenge, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
    /// The scopes and challenge methods of the authorization requests seen.
    seen: Vec<(String, String)>,
    next: u32,
}

type Shared = Arc<Mutex<Stub>>;

async fn discovery(State(s): State<Shared>) -> Response {
    let issuer = s.lock().unwrap().issuer.clone();
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

/// The browser at the provider: the stub approves at once and sends it back.
async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut stub = s.lock().unwrap();
    stub.seen
        .push((q["scope"].clone(), q["code_challenge_method"].clone()));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT);
    stub.next += 1;
    let code = format!("code-{}", stub.next);
    stub.codes.insert(
        code.clone(),
        (
            q["nonce"].clone(),
            q["code_challenge"].clone(),
            q["redirect_uri"].clone(),
        ),
    );
    let back = format!(
        "{}?{}",
        q["redirect_uri"],
        serde_urlencoded::to_string([("code", code.as_str()), ("state", q["state"].as_str())])
            .unwrap()
    );
    (StatusCode::FOUND, [(header::LOCATION, back)]).into_response()
}

async fn token(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let refuse =
        |e: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(basic.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut stub = s.lock().unwrap();
    if f.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return refuse("unsupported_grant_type");
    }
    // Codes are single-use.
    let Some((nonce, challenge, redirect)) = stub.codes.remove(&f["code"]) else {
        return refuse("invalid_grant");
    };
    if f["redirect_uri"] != redirect || dozor_api::oidc::challenge(&f["code_verifier"]) != challenge
    {
        return refuse("invalid_grant");
    }
    let mode = stub.mode.clone();
    let now = dozor_model::time::now_ms() / 1000;
    let claims = json!({
        "iss": stub.issuer,
        "aud": if mode.wrong_audience { "someone-else" } else { CLIENT },
        "sub": format!("sub-{}", mode.username),
        "iat": now,
        "exp": now + 300,
        "nonce": if mode.wrong_nonce { "not-this-one".to_owned() } else { nonce },
        "preferred_username": mode.username,
        "groups": mode.groups,
    });
    let mut head = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    head.kid = Some(
        if mode.unknown_key {
            "rotated-away"
        } else {
            "test-key-1"
        }
        .to_owned(),
    );
    let pem = include_str!("fixtures/oidc_rsa.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
    let id_token = jsonwebtoken::encode(&head, &claims, &key).unwrap();
    axum::Json(json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn jwks() -> Response {
    let set: Value = serde_json::from_str(include_str!("fixtures/oidc_jwks.json")).unwrap();
    axum::Json(set).into_response()
}

/// A running stub issuer.
async fn stub() -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let shared = Arc::new(Mutex::new(Stub {
        issuer,
        ..Stub::default()
    }));
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/jwks", get(jwks))
        .with_state(Arc::clone(&shared));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    shared
}

fn settings(issuer: &str, default_role: Option<Role>) -> OidcSettings {
    OidcSettings {
        issuer: issuer.to_owned(),
        client_id: CLIENT.to_owned(),
        client_secret: dozor_api::Secret(SECRET.as_bytes().to_vec()),
        redirect_url: "http://dozor.test/api/v1/auth/oidc/callback".to_owned(),
        scopes: vec!["profile".to_owned(), "email".to_owned()],
        username_claim: "preferred_username".to_owned(),
        roles_claim: "groups".to_owned(),
        role_map: vec![
            ("dozor-admins".to_owned(), Role::Admin),
            ("developers".to_owned(), Role::Developer),
        ],
        default_role,
        tenant: "default".parse().unwrap(),
    }
}

/// A login through the browser's steps: Dozor's login route, the provider, back to
/// Dozor's callback. The callback's status, headers and JSON, and its path (to replay).
async fn browser_login(
    app: &common::TestApp,
    accept: &str,
) -> (StatusCode, HeaderMap, Value, String) {
    let (status, headers, _) = app
        .call_raw("GET", "/api/v1/auth/oidc/login", None, None)
        .await;
    assert_eq!(status, StatusCode::FOUND);
    let to_provider = headers[header::LOCATION].to_str().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let at_provider = client.get(&to_provider).send().await.unwrap();
    assert_eq!(at_provider.status(), reqwest::StatusCode::FOUND);
    let back = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let path = back.strip_prefix("http://dozor.test").unwrap().to_owned();
    let req = axum::http::Request::builder()
        .uri(&path)
        .header(header::ACCEPT, accept)
        .body(axum::body::Body::empty())
        .unwrap();
    use tower::ServiceExt as _;
    let response = app.router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json, path)
}

fn set_mode(stub: &Shared, mode: Mode) {
    stub.lock().unwrap().mode = mode;
}

fn user(name: &str, groups: &[&str]) -> Mode {
    Mode {
        username: name.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..Mode::default()
    }
}

#[tokio::test]
async fn users_log_in_through_the_provider_with_the_role_their_groups_give() {
    let stub = stub().await;
    let issuer = stub.lock().unwrap().issuer.clone();
    let app = common::app_with_settings(|s| {
        s.oidc = Some(Arc::new(Oidc::new(settings(&issuer, None))));
    })
    .await;

    set_mode(&stub, user("alice", &["staff", "dozor-admins"]));
    let (status, _, session, replay) = browser_login(&app, "application/json").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["data"]["user"]["role"], "admin");
    let access = session["data"]["access_token"].as_str().unwrap();
    let (_, me) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            Some(&format!("Bearer {access}")),
            None,
        )
        .await;
    assert_eq!(
        (me["data"]["actor"].as_str(), me["data"]["tenant"].as_str()),
        (Some("alice"), Some("default"))
    );
    {
        let s = stub.lock().unwrap();
        let (scope, method) = &s.seen[0];
        assert_eq!(method, "S256");
        assert_eq!(scope, "openid profile email");
    }
    // The same callback again: the state was used.
    let (status, _) = app.call("GET", &replay, None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A second login finds the same user; the first made it.
    let (status, _, again, _) = browser_login(&app, "application/json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["data"]["user"]["name"], "alice");
    let made: Vec<bool> = app
        .audit_records()
        .iter()
        .filter(|r| r["action"] == "auth.oidc" && r["outcome"] == "success")
        .map(|r| r["details"]["created"].as_bool().unwrap())
        .collect();
    assert_eq!(made, [true, false]);
    // An OIDC user has no password that works.
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": "anything-at-all-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A developer by group.
    set_mode(&stub, user("dana", &["developers"]));
    let (_, _, dev, _) = browser_login(&app, "application/json").await;
    assert_eq!(dev["data"]["user"]["role"], "developer");

    // A browser gets the UI with the tokens in the fragment.
    set_mode(&stub, user("alice", &["dozor-admins"]));
    let (status, headers, _, _) = browser_login(&app, "text/html,application/xhtml+xml").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("/#access_token=") && location.contains("&refresh_token=dzrr_"),
        "{location}"
    );
}

#[tokio::test]
async fn bad_tokens_unmapped_users_and_name_collisions_are_refused() {
    let stub = stub().await;
    let issuer = stub.lock().unwrap().issuer.clone();
    let app = common::app_with_settings(|s| {
        s.oidc = Some(Arc::new(Oidc::new(settings(&issuer, None))));
    })
    .await;
    for (mode, status, why) in [
        (
            Mode {
                wrong_nonce: true,
                ..user("eve", &["dozor-admins"])
            },
            StatusCode::UNAUTHORIZED,
            "nonce",
        ),
        (
            Mode {
                wrong_audience: true,
                ..user("eve", &["dozor-admins"])
            },
            StatusCode::UNAUTHORIZED,
            "ID token rejected",
        ),
        (
            Mode {
                unknown_key: true,
                ..user("eve", &["dozor-admins"])
            },
            StatusCode::UNAUTHORIZED,
            "no key",
        ),
        (
            user("eve", &["staff"]),
            StatusCode::FORBIDDEN,
            "none of the groups",
        ),
    ] {
        set_mode(&stub, mode);
        let (got, _, body, _) = browser_login(&app, "application/json").await;
        assert_eq!(got, status, "{body}");
        assert!(body["error"].as_str().unwrap().contains(why), "{body}");
    }
    // A local user's name cannot be taken over through the provider.
    app.add_user("default", "carol", "carol-local-password", Role::Viewer)
        .await;
    set_mode(&stub, user("carol", &["dozor-admins"]));
    let (got, _, body, _) = browser_login(&app, "application/json").await;
    assert_eq!(got, StatusCode::CONFLICT, "{body}");
    // The provider's own refusal, and a made-up state.
    let (got, body) = app
        .call(
            "GET",
            "/api/v1/auth/oidc/callback?error=access_denied&state=x",
            None,
            None,
        )
        .await;
    assert_eq!(got, StatusCode::UNAUTHORIZED, "{body}");
    let (got, _) = app
        .call(
            "GET",
            "/api/v1/auth/oidc/callback?code=c&state=never-issued",
            None,
            None,
        )
        .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    let failures = app
        .audit_records()
        .iter()
        .filter(|r| r["action"] == "auth.oidc" && r["outcome"] == "failure")
        .count();
    assert_eq!(failures, 7, "every refusal is audited");
    assert!(
        app.state
            .store()
            .user_by_name("eve")
            .await
            .unwrap()
            .is_none()
    );

    // With a default role, a user outside the groups gets it.
    let app = common::app_with_settings(|s| {
        s.oidc = Some(Arc::new(Oidc::new(settings(&issuer, Some(Role::Viewer)))));
    })
    .await;
    set_mode(&stub, user("frank", &[]));
    let (got, _, body, _) = browser_login(&app, "application/json").await;
    assert_eq!(got, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["user"]["role"], "viewer");

    // Without auth.oidc the routes are not there.
    let plain = common::app().await;
    let (got, _) = plain
        .call("GET", "/api/v1/auth/oidc/login", None, None)
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
}
