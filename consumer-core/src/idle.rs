//! `--exit-when-idle`: has every assigned partition been read to its end,
//! with nothing new for a while?
//!
//! librdkafka reports the end of a partition (`enable.partition.eof`) once
//! each time the consumer reaches it. The detector keeps the set of
//! partitions at their end: a message from a partition takes it out, an
//! end-of-partition event puts it back. The run is idle once an assignment
//! is known, every assigned partition is at its end, and neither a message
//! nor an assignment change happened for the idle period. Before the first
//! assignment (and during a rebalance) it is never idle: the group join
//! alone takes seconds.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::context::AssignmentWatch;

/// See the module documentation.
#[derive(Debug)]
pub struct IdleDetector {
    after: Option<Duration>,
    generation: u64,
    assigned: Option<BTreeSet<i32>>,
    at_end: BTreeSet<i32>,
    messages: u64,
    messages_seen: u64,
    last_activity: Instant,
}

impl IdleDetector {
    /// A detector for `--exit-when-idle` (`None`: never idle).
    pub fn new(after: Option<Duration>) -> IdleDetector {
        IdleDetector {
            after,
            generation: u64::MAX,
            assigned: None,
            at_end: BTreeSet::new(),
            messages: 0,
            messages_seen: 0,
            last_activity: Instant::now(),
        }
    }

    /// A message from `partition` arrived. Cheap: called for every message.
    #[inline]
    pub fn on_message(&mut self, partition: i32) {
        self.messages += 1;
        if !self.at_end.is_empty() {
            self.at_end.remove(&partition);
        }
    }

    /// librdkafka reached the end of `partition`.
    pub fn on_partition_eof(&mut self, partition: i32, watch: &AssignmentWatch) {
        self.sync(watch);
        self.at_end.insert(partition);
    }

    fn sync(&mut self, watch: &AssignmentWatch) {
        let generation = watch.generation();
        if generation != self.generation {
            self.generation = generation;
            self.assigned = watch.partitions();
            // Partitions still assigned keep their state (librdkafka does not
            // report the end again for a partition it keeps fetching);
            // new ones will report theirs.
            match &self.assigned {
                Some(a) => self.at_end.retain(|p| a.contains(p)),
                None => self.at_end.clear(),
            }
            self.last_activity = Instant::now();
        }
    }

    /// Whether the run should end now. Call it a few times a second.
    pub fn is_idle(&mut self, watch: &AssignmentWatch) -> bool {
        let Some(after) = self.after else {
            return false;
        };
        self.sync(watch);
        if self.messages != self.messages_seen {
            self.messages_seen = self.messages;
            self.last_activity = Instant::now();
        }
        match &self.assigned {
            Some(assigned) => {
                assigned.iter().all(|p| self.at_end.contains(p))
                    && self.last_activity.elapsed() >= after
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch_with(partitions: Option<&[i32]>) -> AssignmentWatch {
        let w = AssignmentWatch::default();
        w.set_for_tests(partitions.map(|p| p.iter().copied().collect()));
        w
    }

    #[test]
    fn idle_only_when_every_assigned_partition_is_drained() {
        let short = Duration::from_millis(1);
        let mut d = IdleDetector::new(Some(short));
        let w = watch_with(None);
        assert!(!d.is_idle(&w), "never idle before an assignment");
        w.set_for_tests(Some([0, 1].into_iter().collect()));
        d.on_partition_eof(0, &w);
        std::thread::sleep(short * 2);
        assert!(!d.is_idle(&w), "partition 1 not drained");
        d.on_partition_eof(1, &w);
        d.on_message(1);
        assert!(!d.is_idle(&w), "a message just arrived from 1");
        d.on_partition_eof(1, &w);
        std::thread::sleep(short * 2);
        assert!(d.is_idle(&w));
        assert!(!IdleDetector::new(None).is_idle(&w), "no --exit-when-idle");
    }

    #[test]
    fn an_empty_assignment_is_idle_after_the_period() {
        let mut d = IdleDetector::new(Some(Duration::from_millis(1)));
        let w = watch_with(Some(&[]));
        std::thread::sleep(Duration::from_millis(3));
        assert!(!d.is_idle(&w), "the assignment change resets the clock");
        std::thread::sleep(Duration::from_millis(3));
        assert!(d.is_idle(&w));
    }
}
