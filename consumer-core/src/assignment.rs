//! The partitions currently assigned, as the consuming loop sees them.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::ready::ReadyFile;

/// The partitions currently assigned, as the consuming loop sees them: a
/// generation number that changes with every assignment change, so the
/// loop can notice cheaply.
#[derive(Debug, Default)]
pub struct AssignmentWatch {
    generation: AtomicU64,
    partitions: Mutex<Option<BTreeSet<i32>>>,
    ready: OnceLock<ReadyFile>,
    offset_gaps: AtomicU64,
}

impl AssignmentWatch {
    fn lock(&self) -> MutexGuard<'_, Option<BTreeSet<i32>>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bumped at every assignment change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Offset gaps recorded on assignment so far (hand-overs, accepted
    /// losses).
    pub fn offset_gaps(&self) -> u64 {
        self.offset_gaps.load(Ordering::Relaxed)
    }

    /// One more offset gap recorded.
    pub(crate) fn gap_recorded(&self) {
        self.offset_gaps.fetch_add(1, Ordering::Relaxed);
    }

    /// The assigned partitions; `None` before the first assignment and
    /// while a rebalance is in progress.
    pub fn partitions(&self) -> Option<BTreeSet<i32>> {
        self.lock().clone()
    }

    /// `--ready-file`: written at the first non-empty assignment. Set once,
    /// before the consumer subscribes.
    pub fn set_ready_file(&self, ready: ReadyFile) {
        if self.ready.set(ready).is_err() {
            panic!("the ready file is set once");
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Option<BTreeSet<i32>>)) {
        let mut p = self.lock();
        f(&mut p);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let (Some(ready), Some(assigned)) = (self.ready.get(), p.as_ref()) {
            ready.assigned(assigned);
        }
    }

    #[cfg(test)]
    pub(crate) fn set_for_tests(&self, partitions: Option<BTreeSet<i32>>) {
        self.update(|a| *a = partitions);
    }
}
