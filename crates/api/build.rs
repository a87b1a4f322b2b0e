//! Builds the web UI (`ui/`) with npm and Vite into `$OUT_DIR/ui`, which `src/ui.rs` embeds.
//!
//! Runs only when something under `ui/` that affects the bundle changed. `DOZOR_SKIP_UI=1`
//! skips npm and embeds a page saying the UI was not built (for builds without Node.js).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let ui = manifest.join("../../ui");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ui");
    println!("cargo::rerun-if-env-changed=DOZOR_SKIP_UI");
    for input in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
        "public",
    ] {
        println!("cargo::rerun-if-changed={}", ui.join(input).display());
    }
    if let Err(e) = std::fs::create_dir_all(&out) {
        fail(&format!("cannot create {}: {e}", out.display()));
    }
    if std::env::var("DOZOR_SKIP_UI").is_ok_and(|v| v == "1") {
        let page = "<!doctype html><title>Dozor</title><p>This Dozor was built with DOZOR_SKIP_UI=1: \
                    the web UI is not included. The API is at /api/v1/.</p>";
        if let Err(e) = std::fs::write(out.join("index.html"), page) {
            fail(&format!("cannot write placeholder UI: {e}"));
        }
        return;
    }
    if Command::new("npm").arg("--version").output().is_err() {
        fail(
            "npm was not found. Install Node.js 20+ with npm (Debian: apt-get install nodejs npm), or build without the UI: DOZOR_SKIP_UI=1 cargo build",
        );
    }
    let stamp = ui.join("node_modules/.package-lock.json");
    if !is_newer(&stamp, &ui.join("package-lock.json")) {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&ui),
            "npm ci",
        );
    }
    run(
        Command::new("npm")
            .args(["run", "build", "--", "--outDir"])
            .arg(&out)
            .arg("--emptyOutDir")
            .current_dir(&ui),
        "npm run build",
    );
}

/// Whether `a` exists and is at least as new as `b`.
fn is_newer(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(a), Some(b)) if a >= b)
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "{what} failed ({s}) in ui/; run it there to see why, or set DOZOR_SKIP_UI=1"
        )),
        Err(e) => fail(&format!("cannot run {what}: {e}")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: building the Dozor UI: {message}");
    std::process::exit(1);
}
