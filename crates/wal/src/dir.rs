//! Durable directories: what both stores do to publish an immutable block or part.
//!
//! [`write_atomically`] writes files into `<dir>.tmp`, syncs each file and the directory,
//! renames it to `<dir>` and syncs the parent, so `<dir>` either does not exist or is
//! complete; a crash leaves at most a `.tmp` directory for the store to remove at open.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{WalError, sync_dir};

/// The suffix of a directory still being written.
pub const TMP_SUFFIX: &str = ".tmp";
/// The suffix of a directory being deleted (renamed first, so a crash never leaves a
/// half-deleted directory that looks whole).
pub const DELETE_SUFFIX: &str = ".deleted";

/// `dir` with [`TMP_SUFFIX`] appended.
pub fn tmp_path(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Writes `files` (name, bytes; in this order, so the last can be the one whose presence
/// means "complete") as the directory `dir`, durably and all or nothing.
pub fn write_atomically(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), WalError> {
    let tmp = tmp_path(dir);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(WalError::io("create", &tmp))?;
    for (name, bytes) in files {
        let path = tmp.join(name);
        let mut f = File::create(&path).map_err(WalError::io("create", &path))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(WalError::io("write", &path))?;
    }
    sync_dir(&tmp)?;
    fs::rename(&tmp, dir).map_err(WalError::io("rename", &tmp))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// The subdirectories of `root` with their names (names that are not UTF-8 are skipped).
pub fn subdirs(root: &Path) -> Result<Vec<(String, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).map_err(WalError::io("list", root))? {
        let entry = entry.map_err(WalError::io("list", root))?;
        if let (Some(name), true) = (entry.file_name().to_str(), entry.path().is_dir()) {
            out.push((name.to_owned(), entry.path()));
        }
    }
    Ok(out)
}

/// The complete subdirectories of `root`, with their names: those a crash left half
/// written ([`TMP_SUFFIX`]) or half deleted ([`DELETE_SUFFIX`]) are removed first.
pub fn complete_subdirs(root: &Path) -> Result<Vec<(String, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for (name, path) in subdirs(root)? {
        if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETE_SUFFIX) {
            fs::remove_dir_all(&path).map_err(WalError::io("remove", &path))?;
        } else {
            out.push((name, path));
        }
    }
    Ok(out)
}

/// Deletes `dir`: renamed to `….deleted` first, then removed, so a crash in between leaves
/// a name [`complete_subdirs`] removes, never a half-deleted directory that looks whole.
pub fn remove(dir: &Path) -> Result<(), WalError> {
    let mut gone = dir.as_os_str().to_owned();
    gone.push(DELETE_SUFFIX);
    let gone = PathBuf::from(gone);
    fs::rename(dir, &gone).map_err(WalError::io("rename", dir))?;
    fs::remove_dir_all(&gone).map_err(WalError::io("remove", &gone))
}

/// Bytes of every file below `path` (0 for what cannot be read).
pub fn size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_appear_whole_and_replace_a_stale_tmp() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("b1");
        fs::create_dir_all(tmp_path(&dir)).unwrap();
        fs::write(tmp_path(&dir).join("junk"), b"x").unwrap();
        write_atomically(&dir, &[("data", b"abc"), ("meta.json", b"{}")]).unwrap();
        assert!(!tmp_path(&dir).exists());
        assert_eq!(fs::read(dir.join("data")).unwrap(), b"abc");
        assert!(!dir.join("junk").exists());
        assert_eq!(size(root.path()), 5);
        assert!(
            write_atomically(&dir, &[("data", b"again")]).is_err(),
            "never over a complete one"
        );
    }
}
