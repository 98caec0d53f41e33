//! `--exit-when-idle`: has the group read the whole topic to its end, with
//! nothing new for a while?
//!
//! librdkafka reports the end of a partition (`enable.partition.eof`) once
//! each time the consumer reaches it. The detector keeps the set of
//! partitions at their end: a message from a partition takes it out, an
//! end-of-partition event puts it back. This member is drained once an
//! assignment is known, every assigned partition is at its end, and
//! neither a message nor an assignment change happened for the idle
//! period. Before the first assignment (and during a rebalance) it is never
//! drained: the group join alone takes seconds.
//!
//! Drained is not yet idle: the partitions held elsewhere in the group must
//! be drained too (their committed offsets at their ends; see
//! [`undrained_elsewhere`]). Each drained member first commits its own
//! stored offsets to Kafka ([`publish_stored_offsets`]), so that the
//! others see them. A member killed without leaving holds its
//! partitions until its session times out; a restarted member that left
//! on its own share alone would leave those events unread.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tracing::{debug, info, warn};

use crate::assignment::AssignmentWatch;
use crate::context::ExactlyOnceContext;
use crate::group::{Undrained, publish_stored_offsets, undrained_elsewhere};

/// How often the rest of the group is asked about once this member is
/// drained.
const GROUP_CHECK_EVERY: Duration = Duration::from_secs(1);

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
    group_checked: Option<Instant>,
    group_check_every: Duration,
    waiting_for: Vec<i32>,
    publish_warned: bool,
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
            group_checked: None,
            group_check_every: GROUP_CHECK_EVERY,
            waiting_for: Vec::new(),
            publish_warned: false,
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

    /// Whether the run should end now: this member is drained and so is
    /// the rest of the group (asked through `consumer` at most once a
    /// second). Call it a few times a second.
    pub fn is_idle<C: Consumer<ExactlyOnceContext>>(
        &mut self,
        watch: &AssignmentWatch,
        consumer: &C,
    ) -> bool {
        let mut warned = self.publish_warned;
        let idle = self.is_idle_with(watch, |mine| {
            // Best effort: a group whose commits are refused must still be
            // able to end a run whose member holds every partition.
            if let Err(e) = publish_stored_offsets(consumer, mine) {
                if !std::mem::replace(&mut warned, true) {
                    warn!(
                        "could not commit the stored offsets to Kafka before leaving ({e}); \
                         other members of the group may wait for them"
                    );
                }
            }
            undrained_elsewhere(consumer, mine).map_err(|e| e.to_string())
        });
        self.publish_warned = warned;
        idle
    }

    /// [`is_idle`](Self::is_idle) with the question to the group as a
    /// function (tests).
    fn is_idle_with(
        &mut self,
        watch: &AssignmentWatch,
        elsewhere: impl FnOnce(&BTreeSet<i32>) -> Result<Vec<Undrained>, String>,
    ) -> bool {
        let Some(after) = self.after else {
            return false;
        };
        self.sync(watch);
        if self.messages != self.messages_seen {
            self.messages_seen = self.messages;
            self.last_activity = Instant::now();
        }
        let Some(mine) = &self.assigned else {
            return false;
        };
        let drained =
            mine.iter().all(|p| self.at_end.contains(p)) && self.last_activity.elapsed() >= after;
        if !drained
            || self
                .group_checked
                .is_some_and(|t| t.elapsed() < self.group_check_every)
        {
            return false;
        }
        self.group_checked = Some(Instant::now());
        match elsewhere(mine) {
            Ok(undrained) if undrained.is_empty() => true,
            Ok(undrained) => {
                let partitions: Vec<i32> = undrained.iter().map(|u| u.partition).collect();
                if partitions != self.waiting_for {
                    info!(
                        "own partitions drained; waiting for partitions held elsewhere in the \
                         group (a member killed without leaving holds them until its session \
                         times out): {}",
                        undrained
                            .iter()
                            .map(|u| match u.committed {
                                Some(c) => format!("{}@{c}/{}", u.partition, u.end),
                                None => format!("{}@-/{}", u.partition, u.end),
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    self.waiting_for = partitions;
                }
                false
            }
            Err(e) => {
                debug!("could not ask the group whether it is drained ({e}); asking again");
                false
            }
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

    /// The rest of the group: nothing undrained.
    fn none(_: &BTreeSet<i32>) -> Result<Vec<Undrained>, String> {
        Ok(Vec::new())
    }

    #[test]
    fn idle_only_when_every_assigned_partition_is_drained() {
        let short = Duration::from_millis(1);
        let mut d = IdleDetector::new(Some(short));
        let w = watch_with(None);
        assert!(!d.is_idle_with(&w, none), "never idle before an assignment");
        w.set_for_tests(Some([0, 1].into_iter().collect()));
        d.on_partition_eof(0, &w);
        std::thread::sleep(short * 2);
        assert!(!d.is_idle_with(&w, none), "partition 1 not drained");
        d.on_partition_eof(1, &w);
        d.on_message(1);
        assert!(!d.is_idle_with(&w, none), "a message just arrived from 1");
        d.on_partition_eof(1, &w);
        std::thread::sleep(short * 2);
        assert!(d.is_idle_with(&w, none));
        assert!(
            !IdleDetector::new(None).is_idle_with(&w, none),
            "no --exit-when-idle"
        );
    }

    #[test]
    fn an_empty_assignment_is_idle_after_the_period() {
        let mut d = IdleDetector::new(Some(Duration::from_millis(1)));
        let w = watch_with(Some(&[]));
        std::thread::sleep(Duration::from_millis(3));
        assert!(
            !d.is_idle_with(&w, none),
            "the assignment change resets the clock"
        );
        std::thread::sleep(Duration::from_millis(3));
        assert!(d.is_idle_with(&w, none));
    }

    #[test]
    fn not_idle_while_partitions_held_elsewhere_are_undrained() {
        let mut d = IdleDetector::new(Some(Duration::from_millis(1)));
        d.group_check_every = Duration::ZERO;
        let w = watch_with(Some(&[0]));
        d.on_partition_eof(0, &w);
        std::thread::sleep(Duration::from_millis(3));
        let held = |mine: &BTreeSet<i32>| {
            assert_eq!(
                mine,
                &BTreeSet::from([0]),
                "asks about the others, given its own"
            );
            Ok(vec![Undrained {
                partition: 1,
                committed: Some(10),
                end: 20,
            }])
        };
        assert!(
            !d.is_idle_with(&w, held),
            "partition 1 is held by a member that has not read it"
        );
        assert!(
            !d.is_idle_with(&w, |_| Err("broker down".to_string())),
            "an unanswered question is not an answer"
        );
        assert!(d.is_idle_with(&w, none), "the group has read everything");
    }

    #[test]
    fn the_group_is_asked_at_most_once_a_period() {
        let mut d = IdleDetector::new(Some(Duration::from_millis(1)));
        let w = watch_with(Some(&[0]));
        d.on_partition_eof(0, &w);
        std::thread::sleep(Duration::from_millis(3));
        let mut asked = 0;
        let mut busy = |_: &BTreeSet<i32>| {
            asked += 1;
            Ok(vec![Undrained {
                partition: 1,
                committed: None,
                end: 5,
            }])
        };
        assert!(!d.is_idle_with(&w, &mut busy));
        assert!(!d.is_idle_with(&w, &mut busy));
        assert_eq!(asked, 1);
    }
}
