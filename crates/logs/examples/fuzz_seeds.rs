//! Writes seed inputs for the `log_store` fuzz corpus (a block, a part index, a WAL batch)
//! into `fuzz/corpus/log_store/`. Run by hand when a format changes:
//! `cargo run -p dozor-logs --example fuzz_seeds -- fuzz/corpus`.

use std::path::PathBuf;

use dozor_model::{Labels, LogRecord};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds CORPUS_DIR")?,
    );
    let dir = root.join("log_store");
    std::fs::create_dir_all(&dir)?;
    let stream = Labels::from_pairs([("service", "shop"), ("level", "error")])?;
    let mut records: Vec<LogRecord> = (0..20)
        .map(|i| {
            LogRecord::new(
                1_796_083_200_000_000_000 + i,
                stream.clone(),
                format!("payment {i} failed"),
            )
        })
        .collect();
    records[3].fields = vec![
        ("amount".into(), "10500".into()),
        ("user".into(), "u1".into()),
    ];
    let mut buf = Vec::new();
    dozor_logs::record::encode(&records, &mut buf);
    std::fs::write(dir.join("record"), &buf)?;
    let rows: Vec<dozor_logs::block::Row> = records
        .iter()
        .map(|r| dozor_logs::block::Row {
            time_ns: r.time_ns,
            message: r.message.clone(),
            fields: r.fields.clone(),
        })
        .collect();
    buf.clear();
    dozor_logs::block::encode(&rows, &mut buf)?;
    std::fs::write(dir.join("block"), &buf)?;
    let tmp = std::env::temp_dir().join(format!("dozor-log-seed-{}", std::process::id()));
    dozor_logs::part::write(&tmp, &records, 0)?;
    std::fs::write(dir.join("index"), std::fs::read(tmp.join("index"))?)?;
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}
