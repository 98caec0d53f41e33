//! Where each assigned partition starts, decided from facts alone: one pure
//! function, [`decide`], and the refusals it can give.
//!
//! The facts of a partition: this database's stored next offset, the
//! group's committed offset and which database committed it (named in the
//! offset's metadata, [`commit_metadata`]), the broker's log start and high
//! watermark. The rule: a start position is taken only when it provably
//! skips nothing, or when every skipped range is one the operator allowed
//! and is recorded in the database (`offset_gaps`) before the partition
//! starts. Anything else is refused with an error naming the partition, the
//! range, the likely cause and the flag that accepts it.
//!
//! | this database | the group's offset | start | recorded |
//! |---|---|---|---|
//! | none | none | log start (0 unless retention deleted the beginning) | `retention-before-first-read` when the log starts past 0 |
//! | d | none, or ≤ d | d | |
//! | none or d | g > d, committed by this database | refused: the database went back in time (restored backup, old copy); `--restored-backup` re-reads d..g into it | |
//! | none or d | g > d, committed by another database or by nobody we know | refused for a single instance (wrong `--db`, or a new one); with `--scale-out` or `--instance-id` (one of several instances) g | `hand-over` d..g, with the other database's id |
//! | d or g past the high watermark | | refused: the topic was deleted and recreated, or the broker lost data; `--accept-new-topic` | |
//! | start below the log start | | refused: events deleted unread; `--accept-data-loss` | `log-start-moved` |
//!
//! A partition this database has never stored counts as stored up to 0:
//! the store accepts a new partition's first batch only at offset 0
//! (`store::offsets`), so whatever start this picks, the database can
//! always prove what it holds.

use store::{GapReason, TopicIdentity};

/// The metadata this project writes with every offset it commits to Kafka:
/// the id of the database that stored everything below the offset.
pub fn commit_metadata(database_id: &str) -> String {
    format!("banking-pipeline db={database_id}")
}

/// Which database committed a group offset, read from its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    /// This database (the same id: this file, or a copy of it).
    This,
    /// Another database of the group, by its id.
    Other(String),
    /// Not named: committed by a tool, or by a version before ids.
    Unknown,
}

impl Writer {
    /// Reads the metadata of a group offset (see [`commit_metadata`]).
    pub fn from_metadata(metadata: &str, this_database: &str) -> Writer {
        match metadata
            .split_whitespace()
            .find_map(|w| w.strip_prefix("db="))
        {
            Some(id) if id == this_database => Writer::This,
            Some(id) if !id.is_empty() => Writer::Other(id.to_string()),
            _ => Writer::Unknown,
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            Writer::Other(id) => Some(id),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Writer::This => "this database".into(),
            Writer::Other(id) => format!("database {id}"),
            Writer::Unknown => "a client that did not name its database".into(),
        }
    }
}

/// The group's committed offset of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The next offset to read, as the group knows it.
    pub offset: i64,
    /// Who committed it.
    pub writer: Writer,
}

/// What is known of one partition when it is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The partition.
    pub partition: i32,
    /// This database's stored next offset (`None`: never stored here).
    pub database: Option<i64>,
    /// The group's committed offset (`None`: the group never committed
    /// one).
    pub group: Option<GroupOffset>,
    /// The broker's first offset.
    pub log_start: i64,
    /// The broker's end (the next offset it will write).
    pub high_watermark: i64,
}

/// What the operator allowed, on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowed {
    /// `--scale-out` (or `--instance-id`): one of several instances of the
    /// group, each with its own database: the group's progress made by
    /// another database is a hand-over.
    pub instance: bool,
    /// `--restored-backup`: this database is older than the offsets it
    /// committed itself; read the missing range again.
    pub restored_backup: bool,
    /// `--accept-data-loss`: events deleted by the broker before they were
    /// read are recorded as lost and skipped.
    pub data_loss: bool,
}

/// A range to record in `offset_gaps` before the partition starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// First offset skipped.
    pub from: i64,
    /// First offset after the gap.
    pub to: i64,
    /// Why.
    pub reason: GapReason,
    /// For a hand-over: the database that stored the range, when known.
    pub source_database: Option<String>,
}

/// Why a start position was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// This database's stored offset.
    Database,
    /// The group's offset, after a hand-over.
    Group,
    /// The start of the broker's log (a first read, or accepted loss).
    LogStart,
}

impl StartFrom {
    /// For the log line of an assignment.
    pub fn as_str(self) -> &'static str {
        match self {
            StartFrom::Database => "db",
            StartFrom::Group => "group",
            StartFrom::LogStart => "log start",
        }
    }
}

/// Where a partition starts, and what to record first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The offset to read next.
    pub offset: i64,
    /// Why that one.
    pub from: StartFrom,
    /// Ranges to record before reading, in order.
    pub gaps: Vec<Gap>,
}

/// A start position that cannot be proven to lose nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A database with nothing of the partition, and a group that has read
    /// it, on an instance that did not say it is one of several.
    #[error(
        "partition {partition} of {topic}: the group has read offsets 0..{group} ({group} \
         event(s), committed by {}), but this database holds nothing of the partition. As the \
         only consumer of the group it would skip them all, so it stops. Likely cause: a \
         mistyped or new --db. If the events are in another file, start with that --db; to \
         build a new database from the start of the log, use a new --group; to run this as one \
         of several instances of the group, each with its own database (the range is recorded \
         as a hand-over), pass --scale-out (or --instance-id ID, which implies it)",
        writer.describe()
    )]
    NewDatabase {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The group's offset.
        group: i64,
        /// Who committed it.
        writer: Writer,
    },

    /// The group is ahead of this database, by another database's commits,
    /// on an instance that did not say it is one of several.
    #[error(
        "partition {partition} of {topic}: the group's offset {group} is ahead of this \
         database's {database}, committed by {}: offsets {database}..{group} ({} event(s)) were \
         stored elsewhere or skipped, not here. As the only consumer of the group it would skip \
         them, so it stops. If this is one of several instances of the group, each with its own \
         database, pass --scale-out or --instance-id ID (the range is recorded as a hand-over); \
         to read everything into this database, use a new --group",
        writer.describe(),
        group - database
    )]
    BehindGroup {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// This database's offset.
        database: i64,
        /// The group's offset.
        group: i64,
        /// Who committed it.
        writer: Writer,
    },

    /// This database committed more to the group than it now holds.
    #[error(
        "partition {partition} of {topic}: this database committed offset {group} to the group \
         but now holds only up to {database}: offsets {database}..{group} ({} event(s)) are \
         missing from it. It went back in time: restored from a backup, or an older copy of the \
         file. Pass --restored-backup to read that range again from Kafka into this database \
         (nothing is stored twice in it); stop any other copy of this database first",
        group - database
    )]
    WentBack {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// This database's offset.
        database: i64,
        /// The group's offset, committed by this database.
        group: i64,
    },

    /// A stored position past the partition's end.
    #[error(
        "partition {partition} of {topic}: {whose} offset {position} is past the partition's \
         end ({high_watermark}): the topic was deleted and created again (or the broker lost \
         acknowledged events), so new events would be taken for ones already read. To store the \
         new topic's events into this database from its start (the old offsets are kept in \
         topic_resets), pass --accept-new-topic; or start a new --db with a new --group"
    )]
    PastTheEnd {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// "this database's" or "the group's".
        whose: &'static str,
        /// The position.
        position: i64,
        /// The partition's end.
        high_watermark: i64,
    },

    /// The broker deleted events before they were read.
    #[error(
        "partition {partition} of {topic}: the broker's log now starts at offset {log_start}, \
         but reading would resume at {position}: {} event(s) were deleted before they were read \
         (retention, DeleteRecords). Nothing past the gap was stored. Restart with \
         --accept-data-loss to record the gap (offset_gaps, log-start-moved) and go on",
        log_start - position
    )]
    DeletedUnread {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Where reading would resume.
        position: i64,
        /// The partition's first offset on the broker.
        log_start: i64,
    },

    /// The topic under this name is not the one this database read.
    #[error(
        "topic {topic} is not the topic this database read: {detail}. It was deleted and \
         created again, so its offsets start over and new events would be taken for ones \
         already read. To store the new topic's events into this database from its start (the \
         old offsets are kept in topic_resets), pass --accept-new-topic; or start a new --db \
         with a new --group"
    )]
    TopicRecreated {
        /// The topic.
        topic: String,
        /// What differs.
        detail: String,
    },
}

/// Where the partition of `facts` starts, or why it must not. See the
/// module documentation for the table of cases.
pub fn decide(topic: &str, facts: &Facts, allowed: Allowed) -> Result<Start, Refusal> {
    let p = facts.partition;
    let end = facts.high_watermark;
    let past_end = |whose, position| Refusal::PastTheEnd {
        topic: topic.to_string(),
        partition: p,
        whose,
        position,
        high_watermark: end,
    };
    let position = facts.database.unwrap_or(0);
    if position > end {
        return Err(past_end("this database's", position));
    }
    let mut gaps = Vec::new();
    let (mut start, mut from) = (position, StartFrom::Database);
    match &facts.group {
        Some(g) if g.offset > end => return Err(past_end("the group's", g.offset)),
        Some(g) if g.offset > position => match &g.writer {
            Writer::This if allowed.restored_backup => {}
            Writer::This => {
                return Err(Refusal::WentBack {
                    topic: topic.to_string(),
                    partition: p,
                    database: position,
                    group: g.offset,
                });
            }
            writer if allowed.instance => {
                gaps.push(Gap {
                    from: position,
                    to: g.offset,
                    reason: GapReason::HandOver,
                    source_database: writer.id().map(str::to_string),
                });
                (start, from) = (g.offset, StartFrom::Group);
            }
            writer if facts.database.is_none() => {
                return Err(Refusal::NewDatabase {
                    topic: topic.to_string(),
                    partition: p,
                    group: g.offset,
                    writer: writer.clone(),
                });
            }
            writer => {
                return Err(Refusal::BehindGroup {
                    topic: topic.to_string(),
                    partition: p,
                    database: position,
                    group: g.offset,
                    writer: writer.clone(),
                });
            }
        },
        _ => {}
    }
    if facts.log_start > start {
        let first_read = facts.database.is_none() && facts.group.is_none();
        let reason = if first_read {
            GapReason::RetentionBeforeFirstRead
        } else if allowed.data_loss {
            GapReason::LogStartMoved
        } else {
            return Err(Refusal::DeletedUnread {
                topic: topic.to_string(),
                partition: p,
                position: start,
                log_start: facts.log_start,
            });
        };
        gaps.push(Gap {
            from: start,
            to: facts.log_start,
            reason,
            source_database: None,
        });
        (start, from) = (facts.log_start, StartFrom::LogStart);
    }
    Ok(Start {
        offset: start,
        from,
        gaps,
    })
}

/// Checks the topic found on the broker against the identity this
/// database recorded. `Ok(true)`: record `current` (first read, partitions
/// added, or an ID learned); `Ok(false)`: nothing changed.
pub fn check_topic(
    topic: &str,
    stored: Option<&TopicIdentity>,
    current: &TopicIdentity,
) -> Result<bool, Refusal> {
    let Some(stored) = stored else {
        return Ok(true);
    };
    let recreated = |detail: String| Refusal::TopicRecreated {
        topic: topic.to_string(),
        detail,
    };
    if let (Some(old), Some(new)) = (&stored.topic_id, &current.topic_id) {
        if old != new {
            return Err(recreated(format!(
                "its topic ID is {new}, and this database read the topic with ID {old}"
            )));
        }
    }
    if current.partitions < stored.partitions {
        // Kafka can add partitions to a topic, never remove them.
        return Err(recreated(format!(
            "it has {} partition(s), and this database read {} of it",
            current.partitions, stored.partitions
        )));
    }
    Ok(current.partitions != stored.partitions
        || (stored.topic_id.is_none() && current.topic_id.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "aaaa";

    fn group(offset: i64, writer: Writer) -> Option<GroupOffset> {
        Some(GroupOffset { offset, writer })
    }

    fn facts(database: Option<i64>, group: Option<GroupOffset>, log_start: i64) -> Facts {
        Facts {
            partition: 3,
            database,
            group,
            log_start,
            high_watermark: 1_000,
        }
    }

    fn gap(from: i64, to: i64, reason: GapReason, source: Option<&str>) -> Gap {
        Gap {
            from,
            to,
            reason,
            source_database: source.map(str::to_string),
        }
    }

    fn ok(offset: i64, from: StartFrom, gaps: Vec<Gap>) -> Result<Start, Refusal> {
        Ok(Start { offset, from, gaps })
    }

    fn other() -> Writer {
        Writer::Other("bbbb".into())
    }

    const NONE: Allowed = Allowed {
        instance: false,
        restored_backup: false,
        data_loss: false,
    };
    const INSTANCE: Allowed = Allowed {
        instance: true,
        ..NONE
    };
    const RESTORED: Allowed = Allowed {
        restored_backup: true,
        ..NONE
    };
    const LOSS: Allowed = Allowed {
        data_loss: true,
        ..NONE
    };

    /// Every case of the module's table, with and without the flag that
    /// changes it.
    #[test]
    fn every_start_case() {
        use GapReason::*;
        let refused = |f: &Facts, a| decide("t", f, a).unwrap_err();
        let cases: Vec<(&str, Facts, Allowed, Result<Start, Refusal>)> = vec![
            (
                "first read",
                facts(None, None, 0),
                NONE,
                ok(0, StartFrom::Database, vec![]),
            ),
            (
                "first read, retention deleted the beginning",
                facts(None, None, 40),
                NONE,
                ok(
                    40,
                    StartFrom::LogStart,
                    vec![gap(0, 40, RetentionBeforeFirstRead, None)],
                ),
            ),
            (
                "resume from the database",
                facts(Some(500), None, 0),
                NONE,
                ok(500, StartFrom::Database, vec![]),
            ),
            (
                "group behind the database (its commit was late)",
                facts(Some(500), group(450, Writer::This), 0),
                NONE,
                ok(500, StartFrom::Database, vec![]),
            ),
            (
                "group equal",
                facts(Some(500), group(500, other()), 0),
                NONE,
                ok(500, StartFrom::Database, vec![]),
            ),
            (
                "restored backup, re-read allowed",
                facts(Some(100), group(500, Writer::This), 0),
                RESTORED,
                ok(100, StartFrom::Database, vec![]),
            ),
            (
                "hand-over to an instance with a database",
                facts(Some(100), group(500, other()), 0),
                INSTANCE,
                ok(
                    500,
                    StartFrom::Group,
                    vec![gap(100, 500, HandOver, Some("bbbb"))],
                ),
            ),
            (
                "hand-over to a new instance",
                facts(None, group(500, Writer::Unknown), 0),
                INSTANCE,
                ok(500, StartFrom::Group, vec![gap(0, 500, HandOver, None)]),
            ),
            (
                "database ahead of a log start that moved",
                facts(Some(500), None, 300),
                NONE,
                ok(500, StartFrom::Database, vec![]),
            ),
            (
                "deleted unread, loss accepted",
                facts(Some(100), None, 300),
                LOSS,
                ok(
                    300,
                    StartFrom::LogStart,
                    vec![gap(100, 300, LogStartMoved, None)],
                ),
            ),
            (
                "hand-over, then deleted unread, loss accepted",
                facts(None, group(200, other()), 300),
                Allowed {
                    data_loss: true,
                    ..INSTANCE
                },
                ok(
                    300,
                    StartFrom::LogStart,
                    vec![
                        gap(0, 200, HandOver, Some("bbbb")),
                        gap(200, 300, LogStartMoved, None),
                    ],
                ),
            ),
        ];
        for (name, f, allowed, want) in cases {
            assert_eq!(decide("t", &f, allowed), want, "{name}");
        }

        // The refusals, each with the flag that would accept it absent.
        assert!(matches!(
            refused(&facts(Some(100), group(500, Writer::This), 0), INSTANCE),
            Refusal::WentBack {
                database: 100,
                group: 500,
                ..
            }
        ));
        assert!(matches!(
            refused(&facts(None, group(500, Writer::This), 0), NONE),
            Refusal::WentBack {
                database: 0,
                group: 500,
                ..
            }
        ));
        assert!(matches!(
            refused(&facts(None, group(500, other()), 0), RESTORED),
            Refusal::NewDatabase { group: 500, .. }
        ));
        assert!(matches!(
            refused(&facts(None, group(500, Writer::Unknown), 0), NONE),
            Refusal::NewDatabase { .. }
        ));
        assert!(matches!(
            refused(&facts(Some(100), group(500, other()), 0), RESTORED),
            Refusal::BehindGroup {
                database: 100,
                group: 500,
                ..
            }
        ));
        assert!(matches!(
            refused(&facts(Some(100), None, 300), INSTANCE),
            Refusal::DeletedUnread {
                position: 100,
                log_start: 300,
                ..
            }
        ));
        assert!(matches!(
            refused(&facts(None, group(200, other()), 300), INSTANCE),
            Refusal::DeletedUnread { position: 200, .. }
        ));
        let all = Allowed {
            instance: true,
            restored_backup: true,
            data_loss: true,
        };
        assert!(matches!(
            refused(&facts(Some(1_001), None, 0), all),
            Refusal::PastTheEnd {
                position: 1_001,
                whose: "this database's",
                ..
            }
        ));
        assert!(matches!(
            refused(&facts(Some(10), group(5_000, other()), 0), all),
            Refusal::PastTheEnd {
                position: 5_000,
                whose: "the group's",
                ..
            }
        ));
    }

    #[test]
    fn refusals_name_the_range_the_cause_and_the_flag() {
        let text = |f: Facts, a| decide("banking.events", &f, a).unwrap_err().to_string();
        let t = text(facts(None, group(900, other()), 0), NONE);
        for want in [
            "partition 3",
            "0..900",
            "900 event(s)",
            "database bbbb",
            "--db",
            "--group",
            "--scale-out",
        ] {
            assert!(t.contains(want), "{want} in {t}");
        }
        let t = text(facts(Some(100), group(600, Writer::This), 0), NONE);
        for want in ["100..600", "500 event(s)", "backup", "--restored-backup"] {
            assert!(t.contains(want), "{want} in {t}");
        }
        let t = text(facts(Some(5_000), None, 0), NONE);
        for want in ["5000", "(1000)", "created again", "--accept-new-topic"] {
            assert!(t.contains(want), "{want} in {t}");
        }
        let t = text(facts(Some(10), None, 30), NONE);
        for want in ["20 event(s)", "--accept-data-loss"] {
            assert!(t.contains(want), "{want} in {t}");
        }
    }

    #[test]
    fn a_recreated_topic_is_told_from_the_old_one() {
        let id = |topic_id: Option<&str>, partitions| TopicIdentity {
            topic_id: topic_id.map(str::to_string),
            partitions,
        };
        let a6 = id(Some("A"), 6);
        assert_eq!(check_topic("t", None, &a6), Ok(true));
        assert_eq!(check_topic("t", Some(&a6), &a6), Ok(false));
        assert_eq!(check_topic("t", Some(&a6), &id(Some("A"), 8)), Ok(true));
        assert_eq!(check_topic("t", Some(&id(None, 6)), &a6), Ok(true));
        assert_eq!(check_topic("t", Some(&a6), &id(None, 6)), Ok(false));
        let e = check_topic("t", Some(&a6), &id(Some("B"), 6)).unwrap_err();
        assert!(e.to_string().contains("topic ID is B"), "{e}");
        assert!(e.to_string().contains("--accept-new-topic"), "{e}");
        assert!(matches!(
            check_topic("t", Some(&id(None, 6)), &id(None, 3)),
            Err(Refusal::TopicRecreated { .. })
        ));
    }

    #[test]
    fn metadata_names_the_database() {
        let m = commit_metadata(ME);
        assert_eq!(Writer::from_metadata(&m, ME), Writer::This);
        assert_eq!(
            Writer::from_metadata(&m, "cccc"),
            Writer::Other(ME.to_string())
        );
        assert_eq!(Writer::from_metadata("", ME), Writer::Unknown);
        assert_eq!(Writer::from_metadata("db=", ME), Writer::Unknown);
    }
}
