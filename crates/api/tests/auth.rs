//! Login, tokens, expiry, revocation, refresh rotation, and their audit records.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use base64::Engine;
use dozor_model::Role;
use dozor_model::time::now_ms;
use serde_json::json;

use common::ADMIN_PASSWORD;

#[tokio::test]
async fn login_returns_tokens_that_identify_the_user_and_tenant() {
    let app = common::app().await;
    let data = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(data["token_type"], "Bearer");
    assert_eq!(data["expires_in"], 900);
    assert!(data["refresh_token"].as_str().unwrap().starts_with("dzrr_"));
    let auth = format!("Bearer {}", data["access_token"].as_str().unwrap());
    let (status, me) = app.call("GET", "/api/v1/auth/me", Some(&auth), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            me["data"]["actor"].as_str(),
            me["data"]["tenant"].as_str(),
            me["data"]["role"].as_str()
        ),
        (Some("admin"), Some("default"), Some("admin"))
    );
    let login = app
        .audit_records()
        .into_iter()
        .find(|r| r["action"] == "auth.login")
        .unwrap();
    assert_eq!(
        (login["outcome"].as_str(), login["actor"].as_str()),
        (Some("success"), Some("admin"))
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_audited() {
    let app = common::app().await;
    for (user, password) in [("admin", "wrong-password"), ("nobody", "whatever")] {
        let (status, body) = app
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": user, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // One message for both: the answer does not reveal which users exist.
        assert_eq!(body["error"], "invalid username or password");
    }
    let failures: Vec<_> = app
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "auth.login" && r["outcome"] == "failure")
        .map(|r| r["actor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(failures, ["admin", "nobody"]);
    let text = std::fs::read_to_string(app.dir.path().join("audit/chain.jsonl")).unwrap();
    assert!(
        !text.contains("wrong-password"),
        "passwords never reach the audit chain"
    );
}

#[tokio::test]
async fn malformed_login_bodies_get_400_naming_the_field() {
    let app = common::app().await;
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("password"),
        "{body}"
    );
    let (status, _, _) = app
        .call_raw("POST", "/api/v1/auth/login", None, Some("{not json".into()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let huge = json!({"username": "a".repeat(100_000), "password": "x"}).to_string();
    let (status, _, _) = app
        .call_raw("POST", "/api/v1/auth/login", None, Some(huge))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let app = common::app().await;
    let user = app
        .state
        .store()
        .user_by_name("admin")
        .await
        .unwrap()
        .unwrap();
    let issued_long_ago = now_ms() - 3_600_000;
    let stale = app
        .state
        .jwt()
        .issue(&user, "session", issued_long_ago)
        .unwrap();
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            Some(&format!("Bearer {stale}")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = app.state.jwt().issue(&user, "session", now_ms()).unwrap();
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            Some(&format!("Bearer {fresh}")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A token signed with another secret is refused too.
    let other = dozor_api::JwtKeys::new(
        b"another-secret-another-secret-xx",
        std::time::Duration::from_secs(900),
    );
    let forged = other.issue(&user, "session", now_ms()).unwrap();
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            Some(&format!("Bearer {forged}")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn create_token(
    app: &common::TestApp,
    auth: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    app.call("POST", "/api/v1/tokens", Some(auth), Some(body))
        .await
}

#[tokio::test]
async fn api_tokens_work_as_bearer_and_basic_until_revoked() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (status, created) =
        create_token(&app, &admin, json!({"name": "grafana", "scopes": ["read"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["data"]["token"].as_str().unwrap().to_owned();
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {secret}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("promtool:{secret}"))
    );
    for auth in [&bearer, &basic] {
        assert_eq!(
            app.call("GET", "/api/v1/status", Some(auth), None).await.0,
            StatusCode::OK
        );
    }
    // A read token cannot manage tokens.
    assert_eq!(
        app.call("GET", "/api/v1/tokens", Some(&bearer), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // The list shows the token without its secret.
    let (_, list) = app.call("GET", "/api/v1/tokens", Some(&admin), None).await;
    assert!(!list.to_string().contains(&secret));
    assert_eq!(list["data"][0]["id"], id);

    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for auth in [&bearer, &basic] {
        assert_eq!(
            app.call("GET", "/api/v1/status", Some(auth), None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let actions: Vec<_> = app
        .audit_records()
        .into_iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.contains(&"token.create".to_owned())
            && actions.contains(&"token.revoke".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_expired_api_token_is_refused() {
    let app = common::app().await;
    let secret = dozor_api::auth::new_secret(dozor_api::auth::API_TOKEN_PREFIX).unwrap();
    app.state
        .store()
        .create_api_token(dozor_state::tokens::NewApiToken {
            tenant: &dozor_model::TenantId::default_tenant(),
            name: "old",
            scopes: dozor_model::ScopeSet::from_iter([dozor_model::Scope::Read]),
            created_by: "test",
            expires_ms: Some(now_ms() - 1),
            token_hash: &dozor_api::auth::token_hash(&secret),
        })
        .await
        .unwrap();
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/status",
            Some(&format!("Bearer {secret}")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_cannot_exceed_their_creators_scopes_and_viewers_cannot_create_them() {
    let app = common::app().await;
    app.add_user("default", "viv", "viewer-password", Role::Viewer)
        .await;
    let viewer = app.bearer("viv", "viewer-password").await;
    let (status, _) = create_token(&app, &viewer, json!({"name": "x", "scopes": ["read"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (_, created) = create_token(
        &app,
        &admin,
        json!({"name": "writer", "scopes": ["write", "read"]}),
    )
    .await;
    let writer = format!("Bearer {}", created["data"]["token"].as_str().unwrap());
    // A token without admin cannot reach the token routes at all.
    let (status, _) = create_token(&app, &writer, json!({"name": "y", "scopes": ["admin"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) =
        create_token(&app, &admin, json!({"name": "bad", "scopes": ["root"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("root"), "{body}");
    let (status, body) = create_token(&app, &admin, json!({"name": "none", "scopes": []})).await;
    assert_eq!(
        (
            status,
            body["error"].as_str().unwrap().starts_with("scopes")
        ),
        (StatusCode::BAD_REQUEST, true)
    );
}

#[tokio::test]
async fn refresh_rotates_and_logout_revokes() {
    let app = common::app().await;
    let first = app.login("admin", ADMIN_PASSWORD).await;
    let refresh = |t: &serde_json::Value| json!({"refresh_token": t["refresh_token"]});
    let (status, second) = app
        .call("POST", "/api/v1/auth/refresh", None, Some(refresh(&first)))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second = second["data"].clone();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // (Presenting the first again ends the session: see
    // a_rotated_refresh_token_used_again_ends_the_whole_session.)

    let auth = format!("Bearer {}", second["access_token"].as_str().unwrap());
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/logout",
            Some(&auth),
            Some(refresh(&second)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call("POST", "/api/v1/auth/refresh", None, Some(refresh(&second)))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_are_created_in_the_admins_tenant_only() {
    let app = common::app().await;
    app.add_user("other", "olga", "olga-password", Role::Admin)
        .await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"name": "ops", "password": "tangerine-lighthouse", "role": "operator"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = app.call("GET", "/api/v1/users", Some(&admin), None).await;
    let names: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "ops"], "olga lives in another tenant");
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"name": "x", "password": "short", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("password"));
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"name": "ops", "password": "another-fine-phrase", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The new operator logs in and lands in the admin's tenant.
    let ops = app.login("ops", "tangerine-lighthouse").await;
    assert_eq!(ops["user"]["tenant"], "default");
}

#[tokio::test]
async fn the_audit_chain_verifies_over_the_api_and_metrics_count_requests() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (status, body) = app
        .call("GET", "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["problem"], serde_json::Value::Null);
    assert!(body["data"]["records"].as_u64().unwrap() >= 1);
    let (status, headers, metrics) = app.call_raw("GET", "/metrics", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(metrics).unwrap();
    assert!(
        text.contains(
            "dozor_http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",code=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("dozor_build_info{version="), "{text}");
}

#[tokio::test]
async fn a_rotated_refresh_token_used_again_ends_the_whole_session() {
    let app = common::app().await;
    let first = app.login("admin", ADMIN_PASSWORD).await;
    let refresh = |t: &serde_json::Value| json!({"refresh_token": t["refresh_token"]});
    let (status, second) = app
        .call("POST", "/api/v1/auth/refresh", None, Some(refresh(&first)))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second = second["data"].clone();
    let access = format!("Bearer {}", second["access_token"].as_str().unwrap());
    let (status, _) = app
        .call("GET", "/api/v1/auth/me", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Someone replays the first, rotated-away token: refused, and the session it belongs
    // to ends — the legitimate holder's newer tokens too.
    let (status, _) = app
        .call("POST", "/api/v1/auth/refresh", None, Some(refresh(&first)))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call("POST", "/api/v1/auth/refresh", None, Some(refresh(&second)))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the newest refresh token survived"
    );
    let (status, _) = app
        .call("GET", "/api/v1/auth/me", Some(&access), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the session's access token survived"
    );
    // Other sessions of the same user are untouched.
    let other = app.bearer("admin", ADMIN_PASSWORD).await;
    let (status, _) = app.call("GET", "/api/v1/auth/me", Some(&other), None).await;
    assert_eq!(status, StatusCode::OK);
    app.state.audit().close().unwrap();
    let chain = std::fs::read_to_string(app.dir.path().join("audit/chain.jsonl")).unwrap();
    let reuse = chain
        .lines()
        .find(|l| l.contains("\"auth.refresh_reuse\""))
        .expect("reuse audited");
    assert!(reuse.contains("\"denied\""), "{reuse}");
    assert!(
        !chain.contains(first["refresh_token"].as_str().unwrap()),
        "a secret reached the audit chain"
    );
}

#[tokio::test]
async fn logout_stops_the_sessions_access_token_at_once() {
    let app = common::app().await;
    let session = app.login("admin", ADMIN_PASSWORD).await;
    let access = format!("Bearer {}", session["access_token"].as_str().unwrap());
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/logout",
            Some(&access),
            Some(json!({"refresh_token": session["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .call("GET", "/api/v1/auth/me", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A second node sharing the store (a fresh cache) refuses it too.
    let db = app.state.store().clone();
    let node2 = common::app_on_shared(db).await;
    let (status, _) = node2
        .call("GET", "/api/v1/auth/me", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_lock_the_name_then_the_lock_ends() {
    let app = common::app_with_settings(|s| {
        s.auth.lockout = dozor_state::lockout::LockoutPolicy {
            max_failures: 3,
            window_ms: 60_000,
            lock_ms: 1_500,
        };
    })
    .await;
    let login = |password: &str| json!({"username": "admin", "password": password});
    for _ in 0..3 {
        let (status, _) = app
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(login("wrong-password-0")),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password waits, and is told how long.
    let (status, headers, body) = app
        .call_raw(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(login(ADMIN_PASSWORD).to_string()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    // Names are locked whether or not they exist, and one name's lock is not another's.
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(login(ADMIN_PASSWORD)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the lock did not end");
    app.state.audit().close().unwrap();
    let chain = std::fs::read_to_string(app.dir.path().join("audit/chain.jsonl")).unwrap();
    assert!(chain.contains("\"auth.lockout\""), "lock-out not audited");
    assert!(
        !chain.contains("wrong-password-0"),
        "a password reached the audit chain"
    );
}

#[tokio::test]
async fn logins_from_one_address_are_rate_limited() {
    let app = common::app_with_settings(|s| s.auth.logins_per_minute = 3).await;
    let body = || Some(json!({"username": "nobody", "password": "whatever-it-is"}).to_string());
    for _ in 0..3 {
        let (status, _, _) = app
            .call_raw("POST", "/api/v1/auth/login", None, body())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, _) = app
        .call_raw("POST", "/api/v1/auth/login", None, body())
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
}

#[tokio::test]
async fn new_passwords_follow_the_policy() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let create =
        |name: &str, password: &str| json!({"name": name, "password": password, "role": "viewer"});
    for (name, password, why) in [
        ("vera", "short-one", "at least 12 characters"),
        (
            "vera",
            "vera-is-my-password",
            "must not contain the user name",
        ),
        ("vera", "Password1234", "too common"),
        ("vera", "aaaaaaaaaaaaaaaa", "too common or too repetitive"),
    ] {
        let (status, body) = app
            .call(
                "POST",
                "/api/v1/users",
                Some(&admin),
                Some(create(name, password)),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with("password: ") && error.contains(why),
            "{error}"
        );
        assert!(
            !error.contains(password),
            "the password was echoed: {error}"
        );
    }
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(create("vera", "correct horse battery")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
