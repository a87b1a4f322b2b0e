//! The cash-register pack end to end, through the real binary: `dozor sim kkt` writes a
//! fleet's driver log with injected faults (its history compressed: the outage began 31 days
//! ago, the shift opened 24.5 hours ago), `dozor serve` tails it, the shipped rules fire
//! exactly the alerts the simulator's ground truth names — those without a `for` window
//! fire, those with one are pending, nothing else — and a real local webhook receives them.
//! `dozor sim ofd` serves the same fleet's OFD, which Dozor polls with ОФД.ру's login.
//! Also: the shipped rules' unit tests under `dozor test rules` (and Prometheus' own
//! `promtool` when installed), the fleet API, and the CLI's errors.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Listener, Server, dozor};

const TOKEN: &str = "dzr_kkt-test-token-0123456789abcd";

/// The shipped rules with a `for` window: pending, not firing, within a test's minutes.
const WITH_FOR: [&str; 7] = [
    "KktOfdBacklogStarted",
    "KktOfdBacklogHigh",
    "KktOfdNoAckWhileQueued",
    "KktDown",
    "KktClockSkew",
    "OfdSeesNoDocuments",
    "KktMarkingNoticesUnsent",
];

fn rules_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kkt/rules")
}

#[test]
fn the_shipped_rules_pass_their_unit_tests() {
    common::rule_tests_pass(&rules_dir().join("kkt-54fz.test.yml"));
}

#[test]
fn sim_cli_refuses_bad_flags_with_a_message() {
    for (args, message) in [
        (&["--registers", "0"][..], "--registers"),
        (&["--history", "soon"][..], "--history"),
        (&["--fault", "99=healthy"][..], "register index"),
        (&["--fault", "1=fire"][..], "unknown scenario"),
        (&["--fault", "oops"][..], "INDEX=SCENARIO"),
        (&["--end", "tomorrow"][..], "--end"),
    ] {
        let out = dozor().args(["sim", "kkt"]).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// The alerts as `/api/v1/alerts` lists them: (name, register, state).
fn alerts(server: &Server) -> BTreeSet<(String, String, String)> {
    let v = server.get_json("/api/v1/alerts", TOKEN);
    v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_owned(),
                a["labels"]["kkt"].as_str().unwrap_or("").to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn injected_faults_raise_exactly_their_alerts_and_reach_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kkt.log");
    // Ten registers, seven of them faulty, twelve hours of history: the same flags give the
    // driver log and the simulated OFD the same fleet.
    let end = dozor_model::time::rfc3339_ns(dozor_model::time::now_ms() * 1_000_000);
    let fleet: Vec<&str> = vec![
        "--registers",
        "10",
        "--seed",
        "5",
        "--history",
        "12h",
        "--end",
        &end,
        "--fault",
        "1=ofd_outage:31",
        "--fault",
        "2=forgotten_shift:24.5",
        "--fault",
        "3=fn_end_of_life:5",
        "--fault",
        "4=memory_fill:0.93",
        "--fault",
        "5=autonomous",
        "--fault",
        "6=clock_skew:600",
        "--fault",
        "7=ofd_outage:3",
        "--fault",
        "8=contract_expiring:10",
    ];
    let truth = simulate(&fleet, &log);
    let registers: BTreeSet<&str> = truth.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        registers.len(),
        7,
        "seven faulty registers raise alerts: {truth:?}"
    );
    // The OFD, over HTTP, with ОФД.ру's login.
    std::fs::write(dir.path().join("ofd.pw"), "ofd-password-1\n").unwrap();
    let mut ofd = Child(
        dozor()
            .args(["sim", "ofd", "--listen", "127.0.0.1:0", "--password-file"])
            .arg(dir.path().join("ofd.pw"))
            .args(&fleet)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(ofd.0.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let ofd_url = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(ofd_url.starts_with("http://127.0.0.1:"), "{first}");
    let (firing, pending): (BTreeSet<_>, BTreeSet<_>) = truth
        .iter()
        .cloned()
        .partition(|(a, _)| !WITH_FOR.contains(&a.as_str()));
    assert!(firing.contains(&(
        "KktOfdBlocked".into(),
        registers_by(&truth, "KktOfdBlocked")
    )));

    let hook = Listener::start(0);
    write(
        dir.path(),
        "alertmanager.yml",
        &format!(
            "route:\n  receiver: hook\n  group_by: [alertname, kkt]\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            hook.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        &format!(
            "rules:\n  evaluation_interval: 1s\nalerting:\n  config_file: alertmanager.yml\nkkt:\n  enabled: true\n  interval: 1s\n  logs: [{}]\n  ofd:\n    - {{name: ofdru, dialect: ofdru, url: '{ofd_url}', inn: '7700000000', login: dozor, password: {{file: {}}}, poll_interval: 1s}}\n",
            log.display(),
            dir.path().join("ofd.pw").display(),
        ),
    );
    let server = Server::start_with(
        &dir.path().join("data"),
        &[("DOZOR_ADMIN_TOKEN", TOKEN)],
        &["--config", dir.path().join("dozor.yml").to_str().unwrap()],
    );

    // Wait until every alert without a `for` window fires.
    let until = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let seen = alerts(&server);
        let now_firing: BTreeSet<(String, String)> = seen
            .iter()
            .filter(|(_, _, s)| s == "firing")
            .map(|(a, k, _)| (a.clone(), k.clone()))
            .collect();
        if firing.is_subset(&now_firing) || Instant::now() > until {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // Give a wrong alert the time to show up, then compare: exactly the truth.
    std::thread::sleep(Duration::from_secs(3));
    let seen: BTreeSet<_> = alerts(&server).union(&seen).cloned().collect();
    let got_firing: BTreeSet<(String, String)> = seen
        .iter()
        .filter(|(_, _, s)| s == "firing")
        .map(|(a, k, _)| (a.clone(), k.clone()))
        .collect();
    let got_pending: BTreeSet<(String, String)> = seen
        .iter()
        .filter(|(_, _, s)| s == "pending")
        .map(|(a, k, _)| (a.clone(), k.clone()))
        .collect();
    assert_eq!(
        got_firing, firing,
        "firing alerts differ from the ground truth"
    );
    // The OFD sees nothing from a register whose backlog is days old; that it says so
    // depends on the shift being open (Moscow business hours), so it may be pending too.
    let outages: BTreeSet<&str> = truth
        .iter()
        .filter(|(a, _)| a == "KktOfdBacklogStarted")
        .map(|(_, k)| k.as_str())
        .collect();
    let got_pending: BTreeSet<(String, String)> = got_pending
        .into_iter()
        .filter(|(a, k)| !(a == "OfdSeesNoDocuments" && outages.contains(k.as_str())))
        .collect();
    assert_eq!(
        got_pending, pending,
        "pending alerts differ from the ground truth"
    );

    // Each firing alert reached the webhook in Alertmanager's payload.
    let until = Instant::now() + Duration::from_secs(30);
    let notified = loop {
        let mut notified = BTreeSet::new();
        for (path, body) in hook.seen.lock().unwrap().iter() {
            assert_eq!(path, "/hook");
            for a in body["alerts"].as_array().unwrap() {
                notified.insert((
                    a["labels"]["alertname"].as_str().unwrap().to_owned(),
                    a["labels"]["kkt"].as_str().unwrap().to_owned(),
                ));
                assert_eq!(a["status"], "firing");
                assert!(!a["annotations"]["summary"].as_str().unwrap().is_empty());
            }
        }
        if notified == firing || Instant::now() > until {
            break notified;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(notified, firing);

    // The fleet API agrees, and the documents come from the stored driver log.
    let fleet = server.get_json("/api/v1/kkt/fleet", TOKEN);
    let data = &fleet["data"];
    assert_eq!(data["summary"]["total"], 10, "{data}");
    assert_eq!(
        data["summary"]["blocked"], 2,
        "31-day backlog and 24.5 h shift: {}",
        data["summary"]
    );
    let blocked = registers_by(&truth, "KktOfdBlocked");
    let one = server.get_json(&format!("/api/v1/kkt/registers/{blocked}"), TOKEN);
    assert_eq!(one["data"]["status"], "blocked");
    assert!(
        one["data"]["ofd_queue"]["days_until_block"]
            .as_f64()
            .unwrap()
            == 0.0
    );
    let healthy = "0004000005000000";
    let docs = server.get_json(
        &format!("/api/v1/kkt/registers/{healthy}/documents?limit=5"),
        TOKEN,
    );
    let list = docs["data"]["documents"].as_array().unwrap();
    let kinds: BTreeSet<&str> = list.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    // Twelve hours always include some of the 14 business hours (08:00–22:00 Moscow
    // time) in which shifts are open and receipts made.
    let status = server.get_json(&format!("/api/v1/kkt/registers/{healthy}"), TOKEN);
    assert!(
        status["data"]["documents_total"].as_f64().unwrap() > 0.0,
        "{status}"
    );
    assert_eq!(list.len(), 5, "{docs}");
    assert!(
        kinds
            .iter()
            .all(|k| ["receipt", "open_shift", "close_shift"].contains(k)),
        "{kinds:?}"
    );
    assert!(
        list.iter().all(|d| d["fd_number"].as_u64().is_some()),
        "{docs}"
    );
    // The OFD's view: polled, with the contract that ends in 10 days.
    assert_eq!(data["ofd"][0]["up"], true, "{}", data["ofd"]);
    let expiring = registers_by(&truth, "OfdContractExpiring");
    let one = server.get_json(&format!("/api/v1/kkt/registers/{expiring}"), TOKEN);
    assert_eq!(one["data"]["ofd_views"][0]["provider"], "ofdru", "{one}");
    let missing = server.get_text("/api/v1/kkt/registers/nope", TOKEN);
    assert!(missing.contains("no register"), "{missing}");

    // The metrics under KKT.md's names and seed 000's.
    let q = server.get_json(
        "/api/v1/query?query=count(kkt_up%7Bsource%3D%22driver%22%7D%20%3D%3D%201)",
        TOKEN,
    );
    assert_eq!(q["data"]["result"][0]["value"][1], "10", "{q}");
    let q = server.get_json("/api/v1/query?query=count(kkt_status)", TOKEN);
    assert_eq!(q["data"]["result"][0]["value"][1], "10", "{q}");
    let q = server.get_json("/api/v1/query?query=kkt_ofd_days_until_block", TOKEN);
    // The autonomous register has no backlog series.
    assert_eq!(q["data"]["result"].as_array().unwrap().len(), 9, "{q}");
}

/// A child process killed when the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The register the truth names for `alert`.
fn registers_by(truth: &BTreeSet<(String, String)>, alert: &str) -> String {
    truth
        .iter()
        .find(|(a, _)| a == alert)
        .map(|(_, k)| k.clone())
        .unwrap_or_else(|| panic!("{alert} not in {truth:?}"))
}

/// After a kill -9 the fleet comes back from the stored driver log (`kkt.restore`), before
/// any register reports again: the forgotten shift of 24.5 hours is known at once. With
/// `restore: 0s` the same restart starts with no registers.
#[test]
fn a_restart_rebuilds_the_fleet_from_the_stored_driver_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kkt.log");
    let end = dozor_model::time::rfc3339_ns(dozor_model::time::now_ms() * 1_000_000);
    let truth = simulate(
        &[
            "--registers",
            "3",
            "--seed",
            "9",
            "--history",
            "2h",
            "--end",
            &end,
            "--fault",
            "1=forgotten_shift:24.5",
        ],
        &log,
    );
    let forgotten = truth
        .iter()
        .find(|(a, _)| a.starts_with("KktShift"))
        .map(|(_, k)| k.clone())
        .unwrap_or_else(|| panic!("no forgotten shift in {truth:?}"));
    let config = |logs: &str, restore: &str| {
        write(
            dir.path(),
            "dozor.yml",
            &format!(
                "kkt:\n  enabled: true\n  interval: 1s\n  logs: [{logs}]\n  restore: {restore}\n"
            ),
        );
    };
    let start = || {
        Server::start_with(
            &dir.path().join("data"),
            &[("DOZOR_ADMIN_TOKEN", TOKEN)],
            &["--config", dir.path().join("dozor.yml").to_str().unwrap()],
        )
    };
    // The shift's age as the fleet tells it, if it knows the register.
    let shift_hours = |server: &Server| -> Option<f64> {
        let one = server.get_json(&format!("/api/v1/kkt/registers/{forgotten}"), TOKEN);
        Some(one["data"]["shift"]["open_duration_seconds"].as_f64()? / 3600.0)
    };
    config(&log.display().to_string(), "26h");
    let server = start();
    let hours = common::wait_for("the tailed fleet", Duration::from_secs(30), || {
        shift_hours(&server)
    });
    assert!((24.4..25.0).contains(&hours), "{hours} h");
    let kill = |server: Server| {
        server.signal("KILL");
        assert!(!server.wait(Duration::from_secs(10)).success());
    };
    let registers = |server: &Server| {
        server.get_json("/api/v1/kkt/fleet", TOKEN)["data"]["summary"]["total"].clone()
    };
    kill(server);

    // No driver log any more: only the stored lines can tell.
    config("", "26h");
    let server = start();
    assert_eq!(registers(&server), 3, "restored before serving");
    let hours = shift_hours(&server).expect("the forgotten shift is known");
    assert!((24.4..25.0).contains(&hours), "{hours} h");
    kill(server);

    config("", "0s");
    let server = start();
    assert_eq!(registers(&server), 0, "nothing restored");
}

/// Runs `dozor sim kkt` with `args`, writing the driver log to `log`; its ground truth:
/// the alerts the shipped rules must raise, with their registers.
fn simulate(args: &[&str], log: &Path) -> BTreeSet<(String, String)> {
    let out = dozor()
        .args(["sim", "kkt"])
        .args(args)
        .args(["--truth", "-o"])
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, k)| (a.to_owned(), k.to_owned()))
        .collect()
}
