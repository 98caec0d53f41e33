//! `--ready-file`: a file the consumer writes on purpose once it is ready
//! to consume, so that a program starting it (the benchmark) need not read
//! its logs.
//!
//! Ready means: the group has assigned this member at least one partition,
//! and each assigned partition has been positioned at its start offset
//! (from the database, the group, or `auto.offset.reset`; see
//! [`crate::context`]). The file is written once, at the first such
//! assignment, atomically (a temporary file, then a rename), and holds
//! JSON: `{"topic": ..., "partitions": [...], "pid": ...}`. A member that
//! is assigned nothing (more members than partitions) never writes it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{error, info};

/// The `--ready-file` of a run.
#[derive(Debug)]
pub struct ReadyFile {
    path: PathBuf,
    topic: String,
    written: AtomicBool,
}

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ready {
    /// The topic consumed.
    pub topic: String,
    /// The partitions of the first assignment.
    pub partitions: Vec<i32>,
    /// The consumer's process id.
    pub pid: u32,
}

impl Ready {
    /// The ready file at `path`, once it exists and holds a whole record.
    pub fn read(path: &Path) -> Option<Ready> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl ReadyFile {
    /// Removes a file left at `path` by an earlier run (a waiter must not
    /// mistake it for this run's) and checks that the directory is
    /// writable, before any work starts.
    pub fn prepare(path: &Path, topic: &str) -> std::io::Result<ReadyFile> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        common::stats::check_writable(path)?;
        Ok(ReadyFile {
            path: path.to_path_buf(),
            topic: topic.to_string(),
            written: AtomicBool::new(false),
        })
    }

    /// Called after every assignment change with the partitions now
    /// assigned; writes the file at the first non-empty one.
    pub fn assigned(&self, partitions: &BTreeSet<i32>) {
        if partitions.is_empty() || self.written.swap(true, Ordering::AcqRel) {
            return;
        }
        let ready = Ready {
            topic: self.topic.clone(),
            partitions: partitions.iter().copied().collect(),
            pid: std::process::id(),
        };
        match common::stats::write_json(&self.path, &ready) {
            Ok(()) => info!("ready: wrote {}", self.path.display()),
            Err(e) => error!("cannot write the ready file {}: {e}", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_at_the_first_non_empty_assignment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ready");
        std::fs::write(&path, "stale").unwrap();
        let ready = ReadyFile::prepare(&path, "t").unwrap();
        assert!(!path.exists(), "a stale file is removed at start");
        ready.assigned(&BTreeSet::new());
        assert!(!path.exists(), "an empty assignment is not ready");
        ready.assigned(&BTreeSet::from([2, 0]));
        let read = |p: &Path| Ready::read(p).unwrap();
        assert_eq!(read(&path).partitions, vec![0, 2]);
        assert_eq!(read(&path).pid, std::process::id());
        ready.assigned(&BTreeSet::from([1]));
        assert_eq!(read(&path).partitions, vec![0, 2], "written once");
        assert!(ReadyFile::prepare(&dir.path().join("no/such/dir/r"), "t").is_err());
    }
}
