//! Writes seed inputs for the fuzz corpora whose formats are binary (WAL records, block
//! chunks and index, remote_write bodies, Loki pushes) into `fuzz/corpus/`. Run by hand when a format
//! changes: `cargo run -p dozor --example fuzz_seeds -- fuzz/corpus`.

use std::path::PathBuf;

use dozor_model::{Labels, Sample};
use dozor_tsdb::record::Record;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds CORPUS_DIR")?,
    );
    let labels = Labels::from_pairs([("__name__", "up"), ("job", "api")])?;
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        std::fs::create_dir_all(root.join(target))?;
        std::fs::write(root.join(target).join(name), bytes)
    };

    let mut buf = Vec::new();
    Record::Series(vec![(1, labels.clone())]).encode(&mut buf);
    write("wal_record", "series", &buf)?;
    buf.clear();
    Record::Samples(vec![
        (
            1,
            Sample {
                t: 1_700_000_000_000,
                v: 1.5,
            },
        ),
        (
            1,
            Sample {
                t: 1_700_000_015_000,
                v: f64::NAN,
            },
        ),
    ])
    .encode(&mut buf);
    write("wal_record", "samples", &buf)?;

    let chunks: [(&str, Vec<Sample>); 3] = [
        (
            "regular-constant",
            (0..100)
                .map(|i| Sample {
                    t: i * 15_000,
                    v: 1.0,
                })
                .collect(),
        ),
        (
            "irregular-pco",
            (0..100)
                .map(|i| Sample {
                    t: i * i * 7,
                    v: (i as f64).sqrt(),
                })
                .collect(),
        ),
        (
            "raw",
            vec![Sample { t: 1, v: 0.1 }, Sample { t: 3, v: 7.7 }],
        ),
    ];
    for (name, samples) in chunks {
        buf.clear();
        dozor_tsdb::chunk::encode(&samples, &mut buf)?;
        write("block_chunk", name, &buf)?;
    }
    let aggregates = dozor_tsdb::downsample::aggregate(
        &(0..40)
            .map(|i| Sample {
                t: i * 15_000,
                v: (i % 7) as f64,
            })
            .collect::<Vec<_>>(),
        300_000,
    );
    buf.clear();
    dozor_tsdb::chunk::encode_aggregates(&aggregates, &mut buf)?;
    write("block_chunk", "aggregate", &buf)?;
    let dir = std::env::temp_dir().join(format!("dozor-fuzz-seed-{}", std::process::id()));
    // Two series of one target: a shared, jittered time column (the `times` file).
    let jittered: Vec<Sample> = (0..20)
        .map(|i| Sample {
            t: 1_700_000_000_000 + i * 15_000 + i % 3,
            v: i as f64,
        })
        .collect();
    dozor_tsdb::block::write(
        &dir,
        vec![
            (labels.clone(), jittered.clone()),
            (labels.with("mode", "idle")?, jittered),
        ],
        0,
    )?;
    write("block_chunk", "index", &std::fs::read(dir.join("index"))?)?;
    write("block_chunk", "times", &std::fs::read(dir.join("times"))?)?;
    std::fs::remove_dir_all(&dir)?;

    let batch = vec![(
        labels,
        vec![
            Sample {
                t: 1_700_000_000_000,
                v: 1.0,
            },
            Sample {
                t: 1_700_000_015_000,
                v: 0.0,
            },
        ],
    )];
    let mut line = dozor_model::LogRecord::new(
        1_796_119_200_000_000_005,
        Labels::from_pairs([("job", "till"), ("shop", "42")])?,
        "receipt 17",
    );
    line.fields = vec![("trace_id".into(), "ab12".into())];
    write(
        "loki_push",
        "protobuf",
        &dozor_ingest::loki::encode_protobuf(&[line]),
    )?;
    let compressed = dozor_ingest::remote_write::encode(&batch);
    write("remote_write", "snappy", &compressed)?;
    write(
        "remote_write",
        "protobuf",
        &snap::raw::Decoder::new().decompress_vec(&compressed)?,
    )?;
    Ok(())
}
