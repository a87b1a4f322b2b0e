//! Secrets never leave Dozor: a real `dozor serve` at debug log level is given passwords,
//! tokens, a JWT key, a scraper's basic-auth password and receiver keys (Slack URL,
//! PagerDuty routing key, webhook bearer and URL token, SMTP password), then used the way
//! operators use it — logins (wrong and right), refresh and refresh reuse, tokens, users,
//! notifications that succeed and fail — and every API answer (every GET route of the
//! registry's fixture, the audit export, the Alertmanager status), the server's whole log
//! and the audit chain and state store on disk are scanned for each secret.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Listener, Server};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "Adm1n-Secret-Pass-7431";
const ADMIN_TOKEN: &str = "dzr_Admin-Token-Secret-0123456789abcdef";
const JWT_SECRET: &str = "Jwt-Signing-Secret-5f1e2d3c4b5a69788796a5b4";
const BASIC_PASSWORD: &str = "Scraper-Basic-Secret-8812";
const SLACK_PATH: &str = "T0SECRET/B0SECRET/SlackPathSecret991";
const PD_KEY: &str = "Pd-Routing-Key-Secret-4411";
const WEBHOOK_BEARER: &str = "Webhook-Bearer-Secret-7777";
const WEBHOOK_URL_TOKEN: &str = "Webhook-Url-Token-Secret-3131";
const SMTP_PASSWORD: &str = "Smtp-Auth-Secret-6262";
const OIDC_SECRET: &str = "Oidc-Client-Secret-8080";
const LLM_KEY: &str = "Llm-Api-Key-Secret-9191";
const USER_PASSWORD: &str = "Viewer-Secret-Pass-5150";
const WRONG_PASSWORD: &str = "Wrong-Guess-Secret-2020";

/// A request and its answer: (method path, status, body).
type Answer = (String, u16, String);

struct Client {
    http: reqwest::Client,
    server: Server,
    answers: Vec<Answer>,
}

impl Client {
    /// Sends a request; keeps the answer for the scan unless `keep` is false (the one
    /// answer that hands a secret out on purpose).
    fn send(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
        keep: bool,
    ) -> (u16, Value) {
        let url = self.server.url(path);
        let (status, text) = common::block_on(async {
            let mut req = self
                .http
                .request(method.parse().unwrap(), &url)
                .timeout(Duration::from_secs(20));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
        if keep {
            self.answers
                .push((format!("{method} {path}"), status, text.clone()));
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Where each secret turns up in `haystack` (by name).
fn leaks<'a>(secrets: &'a [(String, String)], haystack: &str) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|(_, s)| haystack.contains(s.as_str()))
        .map(|(name, _)| name.as_str())
        .collect()
}

#[test]
fn secrets_never_reach_logs_answers_or_the_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::answering(0, r#"{"ok":true}"#);
    // A port nobody listens on: the webhook and e-mail deliveries fail, and their errors
    // are logged and kept in the delivery log.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            r"global:
  smtp_smarthost: 127.0.0.1:{closed}
  smtp_from: dozor@shop.example
  smtp_auth_username: dozor
  smtp_auth_password: {SMTP_PASSWORD}
  smtp_require_tls: false
route:
  receiver: all
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: all
    slack_configs:
      - api_url: http://127.0.0.1:{port}/services/{SLACK_PATH}
        channel: '#ops'
    pagerduty_configs:
      - url: http://127.0.0.1:{port}/v2/enqueue
        routing_key: {PD_KEY}
    webhook_configs:
      - url: http://127.0.0.1:{closed}/hook?token={WEBHOOK_URL_TOKEN}
        http_config: {{authorization: {{credentials: {WEBHOOK_BEARER}}}}}
    email_configs:
      - to: ops@shop.example
",
            port = hook.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        format!(
            "auth:\n  jwt_secret: {JWT_SECRET}\n  oidc: {{issuer: 'http://127.0.0.1:{closed}', client_id: dozor, client_secret: {OIDC_SECRET}, redirect_url: 'http://127.0.0.1/cb'}}\nai:\n  llm: {{provider: openai, base_url: 'http://127.0.0.1:{closed}/v1', model: m, api_key: {LLM_KEY}}}\nserver:\n  metrics_access:\n    basic_auth: {{username: prometheus, password: {BASIC_PASSWORD}}}\nrules:\n  evaluation_interval: 1s\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n"
        ),
    )
    .unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_logging(
        &dir.path().join("data"),
        &[
            ("DOZOR_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("DOZOR_ADMIN_TOKEN", ADMIN_TOKEN),
            ("DOZOR_LOG", "debug"),
        ],
        &["--config", dir.path().join("dozor.yml").to_str().unwrap()],
        Stdio::from(log),
    );
    let mut c = Client {
        http: reqwest::Client::new(),
        server,
        answers: Vec::new(),
    };
    let mut secrets: Vec<(String, String)> = [
        ("admin password", ADMIN_PASSWORD),
        ("admin token", ADMIN_TOKEN),
        ("JWT key", JWT_SECRET),
        ("basic-auth password", BASIC_PASSWORD),
        ("Slack URL path", SLACK_PATH),
        ("PagerDuty routing key", PD_KEY),
        ("webhook bearer", WEBHOOK_BEARER),
        ("webhook URL token", WEBHOOK_URL_TOKEN),
        ("SMTP password", SMTP_PASSWORD),
        ("user password", USER_PASSWORD),
        ("wrong password", WRONG_PASSWORD),
        ("OIDC client secret", OIDC_SECRET),
        ("model API key", LLM_KEY),
    ]
    .iter()
    .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
    .collect();

    // Logins: a wrong password, then the right one (its answer hands out the tokens).
    let (status, _) = c.send(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "admin", "password": WRONG_PASSWORD})),
        true,
    );
    assert_eq!(status, 401);
    let (status, session) = c.send(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        false,
    );
    assert_eq!(status, 200, "{session}");
    let access = session["data"]["access_token"].as_str().unwrap().to_owned();
    let refresh = session["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(("access token".into(), access.clone()));
    secrets.push(("refresh token".into(), refresh.clone()));
    let admin = format!("Bearer {access}");

    // A refresh, then the old refresh token used again (reuse: refused, session ended).
    let (status, renewed) = c.send(
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
        false,
    );
    assert_eq!(status, 200, "{renewed}");
    secrets.push((
        "renewed access token".into(),
        renewed["data"]["access_token"].as_str().unwrap().to_owned(),
    ));
    secrets.push((
        "renewed refresh token".into(),
        renewed["data"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    ));
    let (status, _) = c.send(
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
        true,
    );
    assert_eq!(status, 401);
    // The reuse ended the session: log in again through the admin token's eyes.
    let admin_token = format!("Bearer {ADMIN_TOKEN}");
    let (status, _) = c.send("GET", "/api/v1/auth/me", Some(&admin), None, true);
    assert_eq!(status, 401, "the session's access token stops with it");
    let _ = admin;

    // A user and an API token (whose creation answer is the one place it is shown).
    let (status, body) = c.send(
        "POST",
        "/api/v1/users",
        Some(&admin_token),
        Some(json!({"name": "bob", "password": USER_PASSWORD, "role": "viewer"})),
        true,
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, token) = c.send(
        "POST",
        "/api/v1/tokens",
        Some(&admin_token),
        Some(json!({"name": "shipper", "scopes": ["ingest", "read"]})),
        false,
    );
    assert!(status == 200 || status == 201, "{status} {token}");
    let shipper = token["data"]["token"].as_str().unwrap().to_owned();
    secrets.push(("created API token".into(), shipper.clone()));
    let (status, _) = c.send(
        "GET",
        "/api/v1/status",
        Some(&format!("Bearer {shipper}")),
        None,
        true,
    );
    assert_eq!(status, 200);
    let basic = {
        use base64::Engine as _;
        let pair = format!("prometheus:{BASIC_PASSWORD}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let (status, _) = c.send("GET", "/metrics", Some(&basic), None, true);
    assert_eq!(status, 200);
    let wrong_basic = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("prometheus:{WRONG_PASSWORD}"))
        )
    };
    let (status, _) = c.send("GET", "/metrics", Some(&wrong_basic), None, true);
    assert_eq!(status, 401);

    // Notifications: Slack and PagerDuty reach the listener; the webhook and the e-mail
    // fail (nobody listens), and their errors land in the log and the delivery log.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, d) = c.send(
            "GET",
            "/api/v1/alerts/deliveries",
            Some(&admin_token),
            None,
            false,
        );
        let rows = d["data"]["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let failed = |integration: &str| {
            rows.iter()
                .any(|r| r["integration"] == integration && r["status"] == "failed")
        };
        if failed("webhook") && failed("email") && hook.seen.lock().unwrap().len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < until,
            "deliveries not settled in 60 s: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let paths: Vec<String> = hook
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert!(paths.iter().any(|p| p.contains(SLACK_PATH)), "{paths:?}");

    // The model and the identity provider are unreachable: their failures are logged.
    let (status, body) = c.send(
        "GET",
        "/api/v1/ai/error-clusters?summarize=true",
        Some(&admin_token),
        None,
        true,
    );
    assert_eq!(status, 200);
    assert!(body["data"]["summaryError"].is_string(), "{body}");
    let (status, _) = c.send("GET", "/api/v1/auth/oidc/login", None, None, true);
    assert_eq!(status, 502);

    // Every GET route of the registry without path parameters, as the admin.
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../api/tests/fixtures/route_policies.txt"),
    )
    .unwrap();
    let routes: Vec<String> = fixture
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("GET")).then(|| f.next().unwrap().to_owned())
        })
        .filter(|p| !p.contains('{'))
        .collect();
    assert!(routes.len() > 40, "{} GET routes", routes.len());
    for path in &routes {
        c.send("GET", path, Some(&admin_token), None, true);
    }
    let (status, am) = c.send("GET", "/api/v2/status", Some(&admin_token), None, true);
    assert_eq!(status, 200);
    let original = am["config"]["original"].as_str().unwrap();
    assert!(original.contains("routing_key: <secret>"), "{original}");
    assert!(
        original.contains("smtp_from: dozor@shop.example"),
        "{original}"
    );

    // Stop the server so its log is complete.
    let Client {
        server, answers, ..
    } = c;
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(30)).success());

    let mut found = Vec::new();
    for (request, status, body) in &answers {
        for name in leaks(&secrets, body) {
            found.push(format!("{name} in the answer to {request} ({status})"));
        }
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines().count() > 50,
        "the debug log is too short to mean anything:\n{log}"
    );
    // The failure paths ran: their errors are in the log (and must hold no secret).
    assert!(
        log.lines()
            .any(|l| l.contains("notification given up") && l.contains("webhook")),
        "no webhook failure logged"
    );
    for (i, line) in log.lines().enumerate() {
        for name in leaks(&secrets, line) {
            found.push(format!("{name} in log line {}: {line}", i + 1));
        }
    }
    // On disk: the audit chain and the state store (tokens and passwords only as hashes).
    let data = dir.path().join("data");
    let mut files = vec![data.join("state.db")];
    for entry in std::fs::read_dir(data.join("audit")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for name in leaks(&secrets, &String::from_utf8_lossy(&bytes)) {
            found.push(format!("{name} in {}", f.display()));
        }
    }
    assert!(
        found.is_empty(),
        "secrets leaked ({} answers and {} log lines scanned):\n{}",
        answers.len(),
        log.lines().count(),
        found.join("\n")
    );
}
