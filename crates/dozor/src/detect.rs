//! `dozor detect`: the detection library over public benchmarks' files, writing what their
//! scorers in `../shared/datasets/` read. `loghub`: each `<Name>_2k.log` under a directory
//! (Loghub-2k's layout, `<Name>/<Name>_2k.log`) mined with one configuration, one
//! `line_no,cluster_id` row per line in `OUT/<Name>.csv`, and the clusters' templates in
//! `OUT/<Name>.templates.tsv` (`cluster_id`, lines, template). `nab`: each
//! `<category>/<file>.csv` of the Numenta Anomaly Benchmark scored sample by sample by the
//! shape-novelty detector (causal, one configuration; its learning period is NAB's
//! probation, 15 % of the file and at most 750 samples), `OUT/<category>/<file>.csv` with
//! `anomaly_score` in [0, 1].

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use dozor_detect::logtemplate::{Config, TemplateMiner};
use dozor_detect::novelty::{Config as NoveltyConfig, ShapeNovelty};

/// What mining one file found.
#[derive(Debug)]
pub struct Mined {
    /// The data set's name (the file's, without `_2k.log`).
    pub name: String,
    /// Lines read.
    pub lines: usize,
    /// Clusters found.
    pub clusters: usize,
}

/// The files ending in `.ext` directly in `dir` or one directory down, sorted.
fn files_under(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for e in entries {
        let path = e?.path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path)? {
                let p = inner?.path();
                if p.extension().is_some_and(|x| x == ext) {
                    files.push(p);
                }
            }
        } else if path.extension().is_some_and(|x| x == ext) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no *.{ext} file in {} or its subdirectories", dir.display());
    }
    Ok(files)
}

/// Mines every log file under `data`, writing `out/<Name>.csv`.
pub fn loghub(data: &Path, out: &Path) -> anyhow::Result<Vec<Mined>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut found = Vec::new();
    for file in files_under(data, "log")? {
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut miner = TemplateMiner::new(Config::default());
        let shapes: Vec<_> = text.lines().map(|l| miner.push(l)).collect();
        let clusters = miner.clusters();
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = stem.strip_suffix("_2k").unwrap_or(&stem).to_owned();
        let mut csv = String::from("line_no,cluster_id\n");
        for (i, s) in shapes.iter().enumerate() {
            let c = clusters
                .cluster_of(*s)
                .context("a line's shape has no cluster")?;
            csv.push_str(&format!("{},c{c}\n", i + 1));
        }
        let target = out.join(format!("{name}.csv"));
        std::fs::write(&target, csv)
            .with_context(|| format!("cannot write {}", target.display()))?;
        let mut list = String::new();
        for (i, (template, lines)) in clusters.templates().iter().enumerate() {
            list.push_str(&format!("c{i}\t{lines}\t{template}\n"));
        }
        let target = out.join(format!("{name}.templates.tsv"));
        std::fs::write(&target, list)
            .with_context(|| format!("cannot write {}", target.display()))?;
        found.push(Mined {
            name,
            lines: shapes.len(),
            clusters: clusters.templates().len(),
        });
    }
    Ok(found)
}

/// NAB's probation period for a file of `rows` rows: 15 %, and at most 750 (its
/// `util.getProbationPeriod`); the detector learns over it and the scorer ignores it.
fn nab_probation(rows: usize) -> usize {
    if rows < 5000 { rows * 15 / 100 } else { 750 }
}

/// What scoring one series found.
#[derive(Debug)]
pub struct Scored {
    /// `<category>/<file>`.
    pub name: String,
    /// Rows scored.
    pub rows: usize,
}

/// Scores every `<category>/<file>.csv` (`timestamp,value`) under `data` — NAB's layout —
/// writing `out/<category>/<file>.csv` (`timestamp,value,anomaly_score,label`, the label
/// left 0 for the scorer to fill in), one configuration for every series. A file directly
/// under `data` takes that directory's name as its category.
pub fn nab(data: &Path, out: &Path) -> anyhow::Result<Vec<Scored>> {
    let files = files_under(data, "csv")?;
    let mut done = Vec::new();
    for file in files {
        let category = file
            .parent()
            .and_then(Path::file_name)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file
            .file_name()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut values = Vec::new();
        for (n, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let (time, value) = line
                .split_once(',')
                .with_context(|| format!("{}:{}: not `timestamp,value`", file.display(), n + 1))?;
            let x: f64 = value.trim().parse().with_context(|| {
                format!(
                    "{}:{}: value {value:?} is not a number",
                    file.display(),
                    n + 1
                )
            })?;
            values.push((time, value.trim(), x));
        }
        let rows = values.len();
        let mut detector = ShapeNovelty::new(NoveltyConfig {
            learn: nab_probation(rows),
            ..NoveltyConfig::default()
        });
        let mut csv = String::from("timestamp,value,anomaly_score,label\n");
        for (time, value, x) in values {
            let score = detector.update(x);
            csv.push_str(&format!("{time},{value},{score:.6},0\n"));
        }
        let dir = out.join(&category);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join(&stem), csv)
            .with_context(|| format!("cannot write {}/{stem}", dir.display()))?;
        done.push(Scored {
            name: format!("{category}/{stem}"),
            rows,
        });
    }
    Ok(done)
}
