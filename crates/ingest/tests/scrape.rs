//! The scrape engine against real HTTP targets: a local axum server whose exposition changes,
//! and Debian's `prometheus-node-exporter`.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozor_ingest::Batch;
use dozor_ingest::scrape::{self, Appender, Job, ScrapeConfig};
use dozor_model::TenantId;
use dozor_model::labels::is_stale_nan;
use tokio::sync::watch;

mod common;

#[derive(Default)]
struct Recorder(Mutex<Vec<(TenantId, Batch)>>);

impl Appender for Recorder {
    fn append(&self, tenant: &TenantId, batch: Batch) -> Result<(), String> {
        self.0.lock().unwrap().push((tenant.clone(), batch));
        Ok(())
    }
}

impl Recorder {
    /// Values recorded for series whose text form contains `needle`, in order.
    fn values(&self, needle: &str) -> Vec<f64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| {
                b.iter()
                    .filter(|(l, _)| l.to_string().contains(needle))
                    .flat_map(|(_, s)| s.iter().map(|x| x.v))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn series_with(&self, needle: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| {
                b.iter()
                    .map(|(l, _)| l.to_string())
                    .filter(|s| s.contains(needle))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Serves `body` (shared, changeable) at /metrics; status 500 when it is empty.
async fn target(body: Arc<Mutex<String>>) -> String {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = Arc::clone(&body);
            async move {
                let text = body.lock().unwrap().clone();
                if text.is_empty() {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new())
                } else {
                    (axum::http::StatusCode::OK, text)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn job(yaml: &str) -> Job {
    Job::new(serde_saphyr::from_str::<ScrapeConfig>(yaml).unwrap()).unwrap()
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn scrapes_label_relabel_and_mark_stale() {
    let body = Arc::new(Mutex::new(
        "a_total{job=\"inner\"} 1\nb_gauge 2\ngo_goroutines 9\n".to_owned(),
    ));
    let addr = target(Arc::clone(&body)).await;
    let j = job(&format!(
        "job_name: app\nscrape_interval: 200ms\nscrape_timeout: 150ms\ntenant: shop\n\
         static_configs: [{{targets: ['{addr}'], labels: {{env: test}}}}]\n\
         metric_relabel_configs: [{{source_labels: [__name__], regex: 'go_.*', action: drop}}]\n"
    ));
    let rec = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let run = tokio::spawn(scrape::run(vec![j], rec.clone(), stop_rx));

    wait_until("a first scrape", || !rec.values("up{").is_empty()).await;
    assert_eq!(rec.values("up{")[0], 1.0);
    let a = rec.series_with("a_total");
    assert_eq!(
        a,
        [format!(
            "a_total{{env=\"test\", exported_job=\"inner\", instance=\"{addr}\", job=\"app\"}}"
        )]
    );
    assert!(
        rec.series_with("go_goroutines").is_empty(),
        "dropped by metric_relabel_configs"
    );
    assert!(
        rec.0
            .lock()
            .unwrap()
            .iter()
            .all(|(t, _)| t.as_str() == "shop")
    );

    // b_gauge disappears: it gets a staleness marker on the next scrape.
    *body.lock().unwrap() = "a_total{job=\"inner\"} 2\n".to_owned();
    wait_until("b_gauge to go stale", || {
        rec.values("b_gauge").iter().any(|v| is_stale_nan(*v))
    })
    .await;

    // The target fails: up=0 and its series go stale.
    *body.lock().unwrap() = String::new();
    wait_until("up to drop to 0", || rec.values("up{").contains(&0.0)).await;
    wait_until("a_total to go stale", || {
        rec.values("a_total").iter().any(|v| is_stale_nan(*v))
    })
    .await;

    let _ = stop_tx.send(true);
    run.await.unwrap();
    assert!(
        is_stale_nan(*rec.values("up{").last().unwrap()),
        "a retired target's up is marked stale"
    );
}

#[tokio::test]
async fn file_sd_targets_come_and_go() {
    let addr = target(Arc::new(Mutex::new("m 1\n".to_owned()))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(
        &file,
        format!(r#"[{{"targets":["{addr}"],"labels":{{"team":"pos"}}}}]"#),
    )
    .unwrap();
    let j = job(&format!(
        "job_name: sd\nscrape_interval: 200ms\nscrape_timeout: 100ms\n\
         file_sd_configs: [{{files: ['{}'], refresh_interval: 200ms}}]\n",
        file.display()
    ));
    let rec = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let run = tokio::spawn(scrape::run(vec![j], rec.clone(), stop_rx));
    wait_until("the file_sd target to be scraped", || {
        rec.series_with("team=\"pos\"")
            .iter()
            .any(|s| s.starts_with("m{"))
    })
    .await;
    std::fs::write(&file, "[]").unwrap();
    wait_until("the removed target's series to go stale", || {
        rec.values("m{").iter().any(|v| is_stale_nan(*v))
    })
    .await;
    let _ = stop_tx.send(true);
    run.await.unwrap();
}

#[test]
fn file_sd_globs_match_file_names_and_tag_targets_with_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, addr: &str| {
        std::fs::write(
            dir.path().join(name),
            format!(r#"[{{"targets":["{addr}"]}}]"#),
        )
        .unwrap();
    };
    write("pos-a.json", "10.0.0.1:9100");
    write("pos-b.json", "10.0.0.2:9100");
    write("other.json", "10.0.0.3:9100");
    std::fs::write(
        dir.path().join("pos-c.yml"),
        "- targets: ['10.0.0.4:9100']\n",
    )
    .unwrap();
    let j = job(&format!(
        "job_name: sd\nfile_sd_configs: [{{files: ['{}/pos-*.json', '{}/*.yml']}}]\n\
         relabel_configs:\n- source_labels: [__meta_filepath]\n  regex: '.*/(.*)'\n  target_label: file\n",
        dir.path().display(),
        dir.path().display()
    ));
    let found: Vec<(String, String)> = j
        .targets()
        .iter()
        .map(|t| {
            (
                t.labels.get("instance").unwrap().to_owned(),
                t.labels.get("file").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("10.0.0.1:9100".to_owned(), "pos-a.json".to_owned()),
            ("10.0.0.2:9100".to_owned(), "pos-b.json".to_owned()),
            ("10.0.0.4:9100".to_owned(), "pos-c.yml".to_owned()),
        ]
    );
    assert!(
        j.targets()
            .iter()
            .all(|t| t.labels.get("__meta_filepath").is_none()),
        "meta labels are dropped after relabeling"
    );
    let bad = Job::new(
        serde_saphyr::from_str::<ScrapeConfig>(
            "job_name: x\nfile_sd_configs: [{files: ['/a/*/t.json']}]\n",
        )
        .unwrap(),
    )
    .unwrap_err();
    assert!(bad.contains("file_sd_configs[0].files"), "{bad}");
}

#[test]
fn bad_jobs_are_refused_with_the_field() {
    let bad =
        |yaml: &str| Job::new(serde_saphyr::from_str::<ScrapeConfig>(yaml).unwrap()).unwrap_err();
    assert!(bad("job_name: x\nscheme: ftp\n").contains("scheme"));
    assert!(
        bad("job_name: x\nscheme: https\ntls_config: {ca_file: /nonexistent/ca.pem}\n")
            .contains("tls_config")
    );
    assert!(
        bad("job_name: x\nscrape_interval: 5s\nscrape_timeout: 10s\n").contains("scrape_timeout")
    );
    assert!(bad("job_name: x\nrelabel_configs: [{action: keep}]\n").contains("relabel_configs"));
}

/// An `https` job against a TLS target with a self-signed certificate: trusted through
/// `tls_config.ca_file` or `insecure_skip_verify` it scrapes; with the system's roots the
/// handshake fails and `up` is 0.
#[tokio::test]
async fn scrapes_https_targets_verified_by_tls_config() {
    let cert = common::test_cert();
    let addr = common::tls_server(&cert, "tls_metric{side=\"server\"} 7\n").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.pem).unwrap();
    let https_job = |name: &str, tls: &str| {
        job(&format!(
            "job_name: {name}\nscheme: https\nscrape_interval: 200ms\nscrape_timeout: 150ms\n\
             tls_config: {tls}\nstatic_configs: [{{targets: ['{addr}']}}]\n"
        ))
    };
    let jobs = vec![
        https_job("trusted", &format!("{{ca_file: '{}'}}", ca.display())),
        https_job("skip", "{insecure_skip_verify: true}"),
        https_job("system", "{}"),
    ];
    let rec = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let run = tokio::spawn(scrape::run(jobs, rec.clone(), stop_rx));
    wait_until("a scrape of every job", || {
        ["trusted", "skip", "system"]
            .iter()
            .all(|j| !rec.values(&format!("job=\"{j}\"}}")).is_empty())
    })
    .await;
    let _ = stop_tx.send(true);
    run.await.unwrap();
    let up = |j: &str| rec.values(&format!("up{{instance=\"{addr}\", job=\"{j}\"}}"));
    assert!(up("trusted").contains(&1.0), "{:?}", up("trusted"));
    assert!(up("skip").contains(&1.0));
    // Stopping marks every series stale; before that, the system job only ever failed.
    let system: Vec<f64> = up("system")
        .into_iter()
        .filter(|v| !is_stale_nan(*v))
        .collect();
    assert!(
        !system.is_empty() && system.iter().all(|v| *v == 0.0),
        "{system:?}"
    );
    assert_eq!(
        rec.series_with("tls_metric"),
        [
            format!("tls_metric{{instance=\"{addr}\", job=\"skip\", side=\"server\"}}"),
            format!("tls_metric{{instance=\"{addr}\", job=\"trusted\", side=\"server\"}}"),
        ]
    );
}

/// Scrapes Debian's node exporter, started on a free loopback port with a few collectors.
#[tokio::test]
async fn scrapes_a_real_node_exporter() {
    let bin = "/usr/bin/prometheus-node-exporter";
    if !std::path::Path::new(bin).exists() {
        panic!("{bin} is missing: ./scripts/test installs prometheus-node-exporter");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args([
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.disable-defaults",
            "--collector.loadavg",
            "--collector.meminfo",
            "--collector.cpu",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child);
    let j = job(&format!(
        "job_name: node\nscrape_interval: 300ms\nscrape_timeout: 250ms\nstatic_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    ));
    let rec = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let run = tokio::spawn(scrape::run(vec![j], rec.clone(), stop_rx));
    wait_until("node_load1 from node_exporter", || {
        !rec.values("node_load1{").is_empty()
    })
    .await;
    assert!(
        rec.values("node_memory_MemTotal_bytes")
            .iter()
            .any(|v| *v > 1e6)
    );
    assert!(
        !rec.series_with("node_cpu_seconds_total{cpu=\"0\"")
            .is_empty()
    );
    assert!(rec.values("up{").contains(&1.0));
    let _ = stop_tx.send(true);
    run.await.unwrap();
}

/// Kills the child process when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
