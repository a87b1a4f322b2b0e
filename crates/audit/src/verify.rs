//! [`verify`]: walk the chain and its checkpoints and report the first problem.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Serialize;

use crate::checkpoint::load_public_key;
use crate::record::GENESIS;
use crate::{AuditError, Checkpoint, Record, files};

/// What kind of damage was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A line is not a record.
    Unparsable,
    /// A record's content does not match its hash: it was edited.
    Edited,
    /// A sequence number is missing: records were deleted.
    Missing,
    /// A sequence number comes out of order: records were moved.
    Reordered,
    /// A record does not point at the hash of the one before it.
    BrokenLink,
    /// A checkpoint's signature is invalid, or it names a hash the chain does not have
    /// (the chain was rewritten with recomputed hashes).
    CheckpointMismatch,
    /// A checkpoint covers more records than the chain holds: its tail was deleted.
    Truncated,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line in `chain.jsonl` (or `checkpoints.jsonl` for checkpoint problems).
    pub line: u64,
    /// The sequence number expected there.
    pub seq: u64,
    /// What is wrong.
    pub kind: ProblemKind,
    /// A sentence for people.
    pub message: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Sequence number of the last record read (records read, when nothing was pruned).
    pub records: u64,
    /// Sequence number of the first record present: 1, or one past the signed checkpoint
    /// that retention pruned the chain behind.
    pub first: u64,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints: u64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// Verifies the chain under `data_dir/audit/`: every record's hash, sequence and link, then
/// every checkpoint's signature against the public key and against the chain.
pub fn verify(data_dir: &Path) -> Result<Report, AuditError> {
    let dir = files::audit_dir(data_dir);
    let chain_path = dir.join(files::CHAIN);
    let mut report = Report {
        records: 0,
        first: 1,
        checkpoints: 0,
        problem: None,
    };
    let mut hashes: HashMap<u64, String> = HashMap::new();
    let mut prev_hash = GENESIS.to_owned();
    let mut started = false;
    let file = File::open(&chain_path).map_err(AuditError::io("open", &chain_path))?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(AuditError::io("read", &chain_path))?;
        let line_no = i as u64 + 1;
        let expected = report.records + 1;
        let problem = |kind, message: String| Problem {
            line: line_no,
            seq: expected,
            kind,
            message,
        };
        let record: Record = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                report.problem = Some(problem(
                    ProblemKind::Unparsable,
                    format!("not a record: {e}"),
                ));
                return Ok(report);
            }
        };
        if !started {
            started = true;
            if record.seq > 1 && record.hash == record.compute_hash() {
                // Pruned by retention: the record before the first must be a signed
                // checkpoint's, and the first must link to it.
                match anchor(&dir, record.seq - 1)? {
                    Some(cp) if cp.hash == record.prev => {
                        report.first = record.seq;
                        report.records = record.seq - 1;
                        prev_hash = cp.hash;
                    }
                    _ => {
                        report.problem = Some(problem(
                            ProblemKind::Missing,
                            format!(
                                "records 1 to {} are missing and no signed checkpoint anchors \
                                 record {}: records were deleted",
                                record.seq - 1,
                                record.seq
                            ),
                        ));
                        return Ok(report);
                    }
                }
            }
        }
        let expected = report.records + 1;
        let problem = |kind, message: String| Problem {
            line: line_no,
            seq: expected,
            kind,
            message,
        };
        let found = if record.hash != record.compute_hash() {
            Some((
                ProblemKind::Edited,
                format!(
                    "record {} does not match its hash: it was edited",
                    record.seq
                ),
            ))
        } else if record.seq > expected {
            Some((
                ProblemKind::Missing,
                format!(
                    "record {expected} is missing (found {} next): records were deleted",
                    record.seq
                ),
            ))
        } else if record.seq < expected {
            Some((
                ProblemKind::Reordered,
                format!(
                    "record {} comes after record {}: records were reordered",
                    record.seq,
                    expected - 1
                ),
            ))
        } else if record.prev != prev_hash {
            Some((
                ProblemKind::BrokenLink,
                format!(
                    "record {} does not link to record {}",
                    record.seq,
                    expected - 1
                ),
            ))
        } else {
            None
        };
        if let Some((kind, message)) = found {
            report.problem = Some(problem(kind, message));
            return Ok(report);
        }
        report.records = record.seq;
        hashes.insert(record.seq, record.hash.clone());
        prev_hash = record.hash;
    }
    check_checkpoints(&dir, &hashes, &mut report)?;
    Ok(report)
}

/// The checkpoint at `seq`, if one is there and signed by the chain's key.
fn anchor(dir: &Path, seq: u64) -> Result<Option<Checkpoint>, AuditError> {
    let path = dir.join(files::CHECKPOINTS);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io("open", &path)(e)),
    };
    let key = load_public_key(dir)?;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(AuditError::io("read", &path))?;
        if let Ok(cp) = serde_json::from_str::<Checkpoint>(&line)
            && cp.seq == seq
        {
            return Ok(cp.is_signed_by(&key).then_some(cp));
        }
    }
    Ok(None)
}

fn check_checkpoints(
    dir: &Path,
    hashes: &HashMap<u64, String>,
    report: &mut Report,
) -> Result<(), AuditError> {
    let path = dir.join(files::CHECKPOINTS);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AuditError::io("open", &path)(e)),
    };
    let key = load_public_key(dir)?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(AuditError::io("read", &path))?;
        let line_no = i as u64 + 1;
        let bad = |kind, seq, message: String| Problem {
            line: line_no,
            seq,
            kind,
            message,
        };
        let Ok(cp) = serde_json::from_str::<Checkpoint>(&line) else {
            report.problem = Some(bad(ProblemKind::Unparsable, 0, "not a checkpoint".into()));
            return Ok(());
        };
        // Checkpoints of pruned records (a prune interrupted between its two renames)
        // cannot be checked against the chain; the anchor itself still is.
        if cp.seq + 1 < report.first {
            continue;
        }
        // The anchor of a pruned chain: its hash was checked against the first record.
        let anchor = report.first > 1 && cp.seq + 1 == report.first;
        let problem = if !cp.is_signed_by(&key) {
            Some(bad(
                ProblemKind::CheckpointMismatch,
                cp.seq,
                format!("checkpoint at record {} has a bad signature", cp.seq),
            ))
        } else if anchor {
            None
        } else {
            match hashes.get(&cp.seq) {
                None => Some(bad(
                    ProblemKind::Truncated,
                    cp.seq,
                    format!(
                        "checkpoint covers record {} but the chain ends at {}: records were deleted",
                        cp.seq, report.records
                    ),
                )),
                Some(h) if *h != cp.hash => Some(bad(
                    ProblemKind::CheckpointMismatch,
                    cp.seq,
                    format!(
                        "record {} differs from the signed checkpoint: the chain was rewritten",
                        cp.seq
                    ),
                )),
                Some(_) => None,
            }
        };
        if problem.is_some() {
            report.problem = problem;
            return Ok(());
        }
        report.checkpoints += 1;
    }
    Ok(())
}
