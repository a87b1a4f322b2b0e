//! The OFD client against the simulated OFD (`dozor sim ofd`'s server) over real HTTP: the
//! three dialects agree with the fleet, and refused credentials, a slow OFD, an outage and
//! a malformed answer each give their error — and the fleet's `ofd_api_*` series say so.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::time::Duration;

use dozor_kkt::fleet::{Fleet, FleetOptions};
use dozor_kkt::ofd::{Auth, Client, Dialect, Hidden, OfdError, Provider};
use dozor_kkt::sim::{Scenario, SimOptions};
use dozor_kkt::sim_ofd::OfdSimConfig;

const PASSWORD: &str = "s3cret-ofd";
const TOKEN: &str = "tok-0123456789";

fn fleet_options() -> SimOptions {
    let end = dozor_model::time::now_ms();
    let mut o = SimOptions::demo(6, 11, end, 3_600_000);
    o.faults = vec![
        (1, Scenario::FnEndOfLife { days_left: 5.0 }),
        (2, Scenario::ContractExpiring { days: 10.0 }),
        (3, Scenario::Autonomous),
    ];
    o
}

async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = OfdSimConfig {
        sim: fleet_options(),
        login: "dozor".into(),
        password: PASSWORD.into(),
        token: TOKEN.into(),
        integrator_id: "integrator-1".into(),
        inn: "7700000000".into(),
    };
    tokio::spawn(dozor_kkt::sim_ofd::serve(listener, config));
    url
}

fn provider(url: &str, dialect: Dialect, auth: Auth) -> Provider {
    Provider {
        name: format!("{dialect:?}").to_lowercase(),
        dialect,
        url: url.to_owned(),
        auth,
        inn: Some("7700000000".into()),
        integrator_id: Some(Hidden("integrator-1".into())),
        timeout: Duration::from_secs(2),
    }
}

fn login(password: &str) -> Auth {
    Auth::Login {
        login: "dozor".into(),
        password: Hidden(password.into()),
    }
}

async fn control(url: &str, mode: &str) {
    let (status, _) = dozor_ingest::probe::send_http_body(
        &format!("{url}/mock/control"),
        "POST",
        &[("content-type".into(), "application/json".into())],
        Some(format!(r#"{{"mode":"{mode}"}}"#).into_bytes()),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
}

#[tokio::test]
async fn three_dialects_see_the_same_fleet() {
    let url = start().await;
    let sim = dozor_kkt::sim::Sim::new(fleet_options());
    let registers = sim.registers();
    let mut views = Vec::new();
    for (dialect, auth) in [
        (Dialect::Neutral, Auth::Bearer(Hidden(TOKEN.into()))),
        (
            Dialect::Neutral,
            Auth::Basic {
                username: "dozor".into(),
                password: Hidden(PASSWORD.into()),
            },
        ),
        (Dialect::Ofdru, login(PASSWORD)),
        (Dialect::Taxcom, login(PASSWORD)),
    ] {
        let mut client = Client::new(provider(&url, dialect, auth));
        let mut kkts = client
            .poll()
            .await
            .unwrap_or_else(|e| panic!("{dialect:?}: {e}"));
        kkts.sort_by(|a, b| a.reg_number.cmp(&b.reg_number));
        // The autonomous register does not exchange with an OFD.
        assert_eq!(kkts.len(), 5, "{dialect:?}: {kkts:?}");
        let expiring = kkts
            .iter()
            .find(|k| k.reg_number == registers[1].0)
            .unwrap();
        let days =
            (expiring.fn_end_at.unwrap() - dozor_model::time::now_ms()) as f64 / 86_400_000.0;
        assert!(
            (4.9..5.1).contains(&days),
            "{dialect:?}: FN end in {days} days"
        );
        let contract = kkts
            .iter()
            .find(|k| k.reg_number == registers[2].0)
            .unwrap();
        let days =
            (contract.contract_end_at.unwrap() - dozor_model::time::now_ms()) as f64 / 86_400_000.0;
        assert!(
            (9.9..10.1).contains(&days),
            "{dialect:?}: contract ends in {days} days"
        );
        assert!(
            kkts.iter()
                .all(|k| k.fn_number.as_deref().is_some_and(|f| f.len() == 16))
        );
        views.push((dialect, kkts));
    }
    // Taxcom names states; the neutral dialect names them and counts unsent documents.
    let taxcom = &views[3].1;
    assert_eq!(
        taxcom
            .iter()
            .find(|k| k.reg_number == registers[1].0)
            .unwrap()
            .state
            .as_deref(),
        Some("expires")
    );
    assert!(views[0].1.iter().all(|k| k.unsent_documents.is_some()));
    assert!(views[2].1.iter().all(|k| k.unsent_documents.is_none()));
}

#[tokio::test]
async fn refused_credentials_slow_down_and_malformed_answers() {
    let url = start().await;
    for dialect in [Dialect::Ofdru, Dialect::Taxcom] {
        let mut client = Client::new(provider(&url, dialect, login("wrong")));
        let e = client.poll().await.unwrap_err();
        assert!(matches!(e, OfdError::Auth(401 | 403)), "{dialect:?}: {e}");
        assert_eq!(e.code(), "auth");
    }
    let mut client = Client::new(provider(
        &url,
        Dialect::Neutral,
        Auth::Bearer(Hidden("nope".into())),
    ));
    assert!(matches!(client.poll().await, Err(OfdError::Auth(401))));

    // Nothing listens: unreachable.
    let mut gone = Client::new(provider("http://127.0.0.1:9", Dialect::Neutral, Auth::None));
    assert_eq!(gone.poll().await.unwrap_err().code(), "unreachable");

    let fleet = Fleet::new(FleetOptions::default());
    let mut client = Client::new(provider(&url, Dialect::Ofdru, login(PASSWORD)));
    let now = dozor_model::time::now_ms();
    fleet.apply_ofd(
        "ofdru",
        client.poll().await.map_err(|e| panic!("{e}")),
        0.01,
        now,
    );

    control(&url, "outage").await;
    let e = client.poll().await.unwrap_err();
    assert_eq!(e, OfdError::Status(503));
    fleet.apply_ofd("ofdru", Err(&e), 0.02, now + 1);

    control(&url, "malformed").await;
    let e = client.poll().await.unwrap_err();
    assert!(
        matches!(&e, OfdError::Malformed(m) if m.contains("kkts")),
        "{e}"
    );
    fleet.apply_ofd("ofdru", Err(&e), 0.02, now + 2);

    control(&url, "slow").await;
    let started = std::time::Instant::now();
    let e = client.poll().await.unwrap_err();
    assert_eq!(e, OfdError::Timeout(Duration::from_secs(2)));
    assert!(started.elapsed() < Duration::from_secs(10));
    fleet.apply_ofd("ofdru", Err(&e), 2.0, now + 3);

    control(&url, "ok").await;
    assert_eq!(client.poll().await.unwrap().len(), 5);

    let batch = fleet.tick(now + 4);
    let value = |name: &str, label: Option<(&str, &str)>| {
        batch
            .iter()
            .filter(|(l, _)| {
                l.metric_name() == Some(name) && label.is_none_or(|(k, v)| l.get(k) == Some(v))
            })
            .map(|(_, s)| s.last().unwrap().v)
            .next()
    };
    assert_eq!(value("ofd_api_up", None), Some(0.0));
    for code in ["http_5xx", "malformed", "timeout"] {
        assert_eq!(
            value("ofd_api_errors_total", Some(("code", code))),
            Some(1.0),
            "{code}"
        );
    }
    assert_eq!(
        value("ofd_api_request_duration_seconds_count", None),
        Some(4.0)
    );
    assert_eq!(
        value(
            "ofd_api_request_duration_seconds_bucket",
            Some(("le", "0.05"))
        ),
        Some(3.0)
    );
    // The registers the first poll saw carry the OFD's dates.
    assert!(value("ofd_kkt_contract_expiry_timestamp_seconds", None).is_some());
    let providers = fleet.providers();
    assert_eq!(providers[0]["up"], false);
    assert!(
        providers[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
}

#[tokio::test]
async fn a_revoked_session_is_replaced() {
    let url = start().await;
    for dialect in [Dialect::Ofdru, Dialect::Taxcom] {
        let mut client = Client::new(provider(&url, dialect, login(PASSWORD)));
        assert_eq!(client.poll().await.unwrap().len(), 5);
        // The OFD forgets its sessions: the next poll logs in again by itself.
        let (status, _) = dozor_ingest::probe::send_http_body(
            &format!("{url}/mock/control"),
            "POST",
            &[("content-type".into(), "application/json".into())],
            Some(br#"{"mode":"ok","revoke":true}"#.to_vec()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(status, 204);
        assert_eq!(client.poll().await.unwrap().len(), 5, "{dialect:?}");
    }
    // Another organisation's INN lists nothing.
    let mut p = provider(&url, Dialect::Ofdru, login(PASSWORD));
    p.inn = Some("0000000000".into());
    assert!(Client::new(p).poll().await.unwrap().is_empty());
}
