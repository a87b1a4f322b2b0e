//! Log shippers' Elasticsearch API: the official Python client (PyPI `elasticsearch` 8.x,
//! installed by `scripts/setup-deps` into `target/pyenv`) talks to a real `dozor serve`
//! through the base URL `/insert/elasticsearch`: its product check passes, `helpers.bulk`
//! lands the good documents with PII masked, and the malformed one fails alone.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use std::process::Command;

use common::{Server, block_on};

fn python() -> std::path::PathBuf {
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python");
    let python = std::env::var_os("DOZOR_TEST_PYTHON").map_or(venv, Into::into);
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/setup-deps (it installs the Elasticsearch client)",
        python.display()
    );
    python
}

#[test]
fn the_official_python_client_bulk_loads_through_insert_elasticsearch() {
    let dir = tempfile::tempdir().unwrap();
    let token = "dzr_es-client-test-token-0123456";
    let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/es_bulk.py");
    let out = Command::new(python())
        .arg(script)
        .arg(server.url("/insert/elasticsearch"))
        .arg(token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["version"], "8.11.0");
    assert_eq!(report["ok"], 50, "{report}");
    assert_eq!(
        report["errors"],
        serde_json::json!(["document_parsing_exception"])
    );

    let records = server.search_logs(
        token,
        &[
            ("query", "{index=\"shop-logs\"}"),
            ("start", "2026-12-01T00:00:00Z"),
            ("end", "2026-12-02T00:00:00Z"),
            ("limit", "1000"),
        ],
    );

    assert_eq!(records.len(), 50);
    assert!(
        records
            .iter()
            .all(|r| r["message"].as_str().unwrap().ends_with("paid by [EMAIL]"))
    );
    assert_eq!(
        records[0]["stream"],
        serde_json::json!({"index": "shop-logs", "level": "info", "service": "shop"})
    );
    // Without credentials the shippers' API is closed like every other.
    let anonymous = block_on(async {
        reqwest::Client::new()
            .get(server.url("/insert/elasticsearch/"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(anonymous, reqwest::StatusCode::UNAUTHORIZED);
}
