//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the directory's
//! files at compile time and cannot tell cargo about them on stable Rust (sqlx's advice).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
