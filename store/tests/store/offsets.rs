//! Offsets checked inside the transaction: a message this database already
//! holds is a redelivery (skipped and counted, never a dead letter), a jump
//! past the stored offset fails the batch, and a skipped range is only
//! accepted through a recorded gap.

use rusqlite::Connection;
use store::{Batch, GapReason, SCHEMA_VERSION, Store, StoreError, TopicIdentity};

use crate::common::{TOPIC, count, deposit, offsets, open_temp, push, temp_store};

/// Events `ids` on `partition` at offsets `first..`.
fn batch_of(partition: i32, first: i64, ids: std::ops::Range<u64>) -> Batch {
    let mut batch = Batch::new(TOPIC);
    for (i, id) in ids.enumerate() {
        push(
            &mut batch,
            partition,
            first + i as i64,
            deposit(id, 1 + id % 7, 100),
        );
    }
    batch
}

#[test]
fn a_stretch_read_twice_is_skipped_and_counted_not_dead_lettered() {
    let (_dir, mut store) = open_temp();
    let mut first = batch_of(0, 0, 1..101);
    first.push_dead_letter(0, 100, None, Some(vec![1, 2, 3]), "junk".into());
    store.commit(&first).unwrap();
    let before = store.summary().unwrap();
    let balances = store.balances().unwrap();

    // Kafka delivers offsets 50..=100 again, then the new 101..=120.
    let mut again = batch_of(0, 50, 51..101);
    again.push_dead_letter(0, 100, None, Some(vec![1, 2, 3]), "junk".into());
    let fresh = batch_of(0, 101, 101..121);
    for e in fresh.events() {
        again.push_event(e.partition, e.offset, e.event.clone(), e.payload.clone());
    }
    let outcome = store.commit(&again).unwrap();
    assert_eq!(outcome.redelivered, 51, "50 events and 1 dead letter");
    assert_eq!(outcome.events_stored, 20);
    assert_eq!(outcome.dead_letters, 0);
    assert_eq!(outcome.duplicates, 0);
    let after = store.summary().unwrap();
    assert_eq!(after.events, before.events + 20);
    assert_eq!(after.dead_letters, 1, "the dead letter is stored once");
    assert_eq!(offsets(&store, TOPIC), [(0, 121)]);
    assert_ne!(store.balances().unwrap(), balances);

    // A batch made only of redeliveries changes nothing.
    let outcome = store.commit(&batch_of(0, 0, 1..121)).unwrap();
    assert_eq!((outcome.redelivered, outcome.events_stored), (120, 0));
    assert_eq!(store.summary().unwrap().events, 120);
}

#[test]
fn a_message_delivered_twice_within_one_batch_is_stored_once() {
    let (_dir, mut store) = open_temp();
    let mut batch = batch_of(3, 0, 1..11);
    let again = batch_of(3, 5, 6..11);
    for e in again.events() {
        batch.push_event(e.partition, e.offset, e.event.clone(), e.payload.clone());
    }
    let outcome = store.commit(&batch).unwrap();
    assert_eq!((outcome.events_stored, outcome.redelivered), (10, 5));
    assert_eq!(outcome.dead_letters, 0);
    assert_eq!(count(&store, "events"), 10);
}

#[test]
fn a_jump_past_the_stored_offset_fails_the_batch_and_stores_nothing() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    store.commit(&batch_of(1, 0, 1..11)).unwrap();
    let before = store.summary().unwrap();

    // Offsets 10..15 never arrived.
    let mut batch = batch_of(2, 0, 100..105); // another partition, fine
    for e in batch_of(1, 15, 11..21).events() {
        batch.push_event(e.partition, e.offset, e.event.clone(), e.payload.clone());
    }
    let err = store.commit(&batch).unwrap_err();
    match &err {
        StoreError::OffsetGap {
            partition,
            expected,
            found,
            ..
        } => assert_eq!((*partition, *expected, *found), (1, 10, 15)),
        other => panic!("expected OffsetGap, got {other:?}"),
    }
    assert!(err.is_fatal());
    let message = err.to_string();
    assert!(message.contains("5 offset(s)"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(store.summary().unwrap(), before, "nothing of the batch");
    assert_eq!(offsets(&store, TOPIC), [(1, 10)]);

    // A gap inside a batch is caught too.
    let mut batch = batch_of(1, 10, 11..13);
    for e in batch_of(1, 13, 13..15).events() {
        batch.push_event(e.partition, e.offset, e.event.clone(), e.payload.clone());
    }
    assert!(matches!(
        store.commit(&batch),
        Err(StoreError::OffsetGap {
            expected: 12,
            found: 13,
            ..
        })
    ));
}

#[test]
fn a_recorded_gap_moves_the_stored_offset_and_the_batch_continues_there() {
    let (_dir, mut store) = open_temp();
    store.commit(&batch_of(0, 0, 1..11)).unwrap();
    assert!(
        store
            .record_gap(TOPIC, 0, 10, 500, GapReason::HandOver)
            .unwrap()
    );
    // Already covered: nothing recorded.
    assert!(
        !store
            .record_gap(TOPIC, 0, 10, 400, GapReason::HandOver)
            .unwrap()
    );
    assert_eq!(offsets(&store, TOPIC), [(0, 500)]);
    let outcome = store.commit(&batch_of(0, 500, 11..21)).unwrap();
    assert_eq!(outcome.events_stored, 10);
    let gaps = store.offset_gaps().unwrap();
    assert_eq!(gaps.len(), 1);
    let g = &gaps[0];
    assert_eq!(
        (
            g.topic.as_str(),
            g.partition,
            g.from_offset,
            g.to_offset,
            g.reason.as_str()
        ),
        (TOPIC, 0, 10, 500, "hand-over")
    );
    assert!(g.recorded_at_us > 0);
    assert_eq!(store.summary().unwrap().offset_gaps, 1);

    // A partition never stored here: the gap starts where asked.
    store
        .record_gap(TOPIC, 4, 0, 77, GapReason::LogStartMoved)
        .unwrap();
    assert_eq!(store.offset_gaps().unwrap()[1].reason, "log-start-moved");
    assert_eq!(store.stored_offsets(TOPIC).unwrap()[&4], 77);
}

/// The tables of a version 1 store, as it wrote them.
const V1_TABLES: &str = r#"
            CREATE TABLE events (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL UNIQUE,
                event_type TEXT NOT NULL, account_id INTEGER NOT NULL,
                amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, channel TEXT NOT NULL,
                status TEXT NOT NULL, country TEXT NOT NULL, transaction_ref TEXT NOT NULL,
                counterparty_account_id INTEGER, created_at_us INTEGER NOT NULL,
                committed_at_us INTEGER NOT NULL, kafka_partition INTEGER NOT NULL,
                kafka_offset INTEGER NOT NULL, payload BLOB NOT NULL) STRICT;
            CREATE TABLE account_balances (account_id INTEGER NOT NULL, currency TEXT NOT NULL,
                balance_minor INTEGER NOT NULL, event_count INTEGER NOT NULL,
                PRIMARY KEY (account_id, currency)) STRICT, WITHOUT ROWID;
            CREATE TABLE offsets (topic TEXT NOT NULL, "partition" INTEGER NOT NULL,
                next_offset INTEGER NOT NULL, PRIMARY KEY (topic, "partition"))
                STRICT, WITHOUT ROWID;
            CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, topic TEXT NOT NULL,
                "partition" INTEGER NOT NULL, "offset" INTEGER NOT NULL, key BLOB, payload BLOB,
                error TEXT NOT NULL, recorded_at_us INTEGER NOT NULL) STRICT;
"#;

#[test]
fn a_version_1_database_is_upgraded_and_its_doubled_dead_letters_kept_once() {
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            r#"{V1_TABLES}
            INSERT INTO dead_letters (topic, "partition", "offset", error, recorded_at_us)
                VALUES ('banking.events', 0, 7, 'junk', 1), ('banking.events', 0, 7, 'junk', 2),
                       ('banking.events', 1, 7, 'junk', 3);
            INSERT INTO offsets VALUES ('banking.events', 0, 8), ('banking.events', 1, 8);
            PRAGMA user_version = 1;
            "#
        ))
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let s = store.summary().unwrap();
    assert_eq!(s.schema_version, SCHEMA_VERSION);
    assert_eq!(s.dead_letters, 2, "the doubled one is kept once");
    assert_eq!(s.offset_gaps, 0);
    let kept: Vec<i64> = store
        .dead_letters()
        .unwrap()
        .iter()
        .map(|d| d.recorded_at_us)
        .collect();
    assert_eq!(kept, [1, 3], "the first copy stays");
    // And it works as a version 2 store.
    store.commit(&batch_of(0, 8, 1..4)).unwrap();
    assert_eq!(store.summary().unwrap().events, 3);
}

/// A version 2 file (enum names as text, every payload stored) is upgraded
/// in place to version 3: the same events, the names read back the same,
/// the payloads kept, balances and offsets untouched, duplicates still
/// caught, and it goes on taking batches.
#[test]
fn a_version_2_database_is_upgraded_with_every_event_kept() {
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            r#"{V1_TABLES}
            CREATE UNIQUE INDEX dead_letters_by_offset ON dead_letters (topic, "partition", "offset");
            CREATE TABLE offset_gaps (id INTEGER PRIMARY KEY, topic TEXT NOT NULL,
                "partition" INTEGER NOT NULL, from_offset INTEGER NOT NULL,
                to_offset INTEGER NOT NULL, reason TEXT NOT NULL,
                recorded_at_us INTEGER NOT NULL, CHECK (to_offset > from_offset)) STRICT;
            INSERT INTO events VALUES
                (1, 501, 'TRANSFER', 10, 2500, 'EUR', 'ONLINE', 'PENDING', 'DE', 'REF-1', 11,
                 1704067200000001, 1704067200000009, 0, 0, x'0a0b'),
                (2, 502, 'FEE', 10, 30, 'EUR', 'API', 'DECLINED', 'DE', 'REF-2', NULL,
                 1704067200000002, 1704067200000009, 0, 1, x'0c'),
                (3, 503, 'DEPOSIT', 10, 700, 'EUR', 'BRANCH', 'COMPLETED', 'DE', 'REF-3', NULL,
                 1704067200000003, 1704067200000009, 0, 2, x'0d');
            INSERT INTO account_balances VALUES (10, 'EUR', 700, 1);
            INSERT INTO offsets VALUES ('banking.events', 0, 3);
            CREATE INDEX events_by_account ON events (account_id, created_at_us);
            PRAGMA user_version = 2;
            "#
        ))
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let s = store.summary().unwrap();
    assert_eq!(s.schema_version, SCHEMA_VERSION);
    assert_eq!((s.events, s.distinct_event_ids), (3, 3));
    assert_eq!(s.amount_minor_sum, 2500 + 30 + 700);
    let rows = store.latest_events(10, 10).unwrap();
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.event_id,
                r.event_type.as_str(),
                r.channel.as_str(),
                r.status.as_str(),
                r.payload.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (503, "DEPOSIT", "BRANCH", "COMPLETED", Some(vec![0x0d])),
            (502, "FEE", "API", "DECLINED", Some(vec![0x0c])),
            (501, "TRANSFER", "ONLINE", "PENDING", Some(vec![0x0a, 0x0b])),
        ]
    );
    assert_eq!(rows[2].counterparty_account_id, Some(11));
    assert_eq!(store.balances().unwrap()[0].balance_minor, 700);
    assert_eq!(store.stored_offsets(TOPIC).unwrap()[&0], 3);
    // The readable view names the numbers the same way.
    let named: String = store
        .connection_for_tests()
        .query_row(
            "SELECT event_type || '/' || channel || '/' || status FROM events_named \
             WHERE event_id = 501",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(named, "TRANSFER/ONLINE/PENDING");
    // Still unique on event_id, and it goes on from offset 3.
    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 0, 3, deposit(503, 10, 1));
    push(&mut batch, 0, 4, deposit(504, 10, 1));
    let outcome = store.commit(&batch).unwrap();
    assert_eq!((outcome.events_stored, outcome.duplicates), (1, 1));
    assert_eq!(store.summary().unwrap().events, 4);
    assert_eq!(store.balances().unwrap()[0].balance_minor, 701);
    // The query index, dropped with the old table, comes back on demand.
    store.ensure_query_index().unwrap();
}

#[test]
fn a_new_partition_starts_at_offset_zero_unless_a_gap_says_why() {
    let (_dir, mut store) = open_temp();
    // What `auto.offset.reset=latest` would hand the store: no record of
    // offsets 0..40, so the batch is refused and nothing is written.
    let err = store.commit(&batch_of(1, 40, 1..4)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OffsetGap {
                partition: 1,
                expected: 0,
                found: 40,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(count(&store, "events"), 0);
    store
        .record_gap(TOPIC, 1, 0, 40, GapReason::RetentionBeforeFirstRead)
        .unwrap();
    assert_eq!(
        store.commit(&batch_of(1, 40, 1..4)).unwrap().events_stored,
        3
    );
}

#[test]
fn a_batch_of_redeliveries_reports_the_stored_offset() {
    let (_dir, mut store) = open_temp();
    store.commit(&batch_of(0, 0, 1..101)).unwrap();
    let again = store.commit(&batch_of(0, 10, 11..21)).unwrap();
    assert_eq!(again.redelivered, 10);
    assert_eq!(again.next_offsets, vec![(0, 100)], "never the batch's 20");
}

#[test]
fn the_database_id_is_kept_and_copies_share_it() {
    let (dir, path) = temp_store();
    let id = Store::open(&path).unwrap().database_id().to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(Store::open(&path).unwrap().database_id(), id);
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    assert_eq!(Store::open(&copy).unwrap().database_id(), id);
    let (_other_dir, other) = temp_store();
    assert_ne!(Store::open(&other).unwrap().database_id(), id);
}

#[test]
fn a_hand_over_names_the_database_it_came_from() {
    let (_dir, mut store) = open_temp();
    assert!(
        store
            .record_gap_from(TOPIC, 2, 0, 30, GapReason::HandOver, Some("feed"))
            .unwrap()
    );
    let gaps = store.offset_gaps().unwrap();
    assert_eq!(gaps[0].source_database.as_deref(), Some("feed"));
}

#[test]
fn a_reset_topic_forgets_its_offsets_and_keeps_them_aside() {
    let (_dir, mut store) = open_temp();
    let old = TopicIdentity {
        topic_id: Some("A".into()),
        partitions: 3,
    };
    assert_eq!(store.topic_identity(TOPIC).unwrap(), None);
    store.record_topic_identity(TOPIC, &old).unwrap();
    assert_eq!(store.topic_identity(TOPIC).unwrap(), Some(old));
    store.commit(&batch_of(0, 0, 1..11)).unwrap();
    store
        .record_gap(TOPIC, 1, 0, 5, GapReason::HandOver)
        .unwrap();
    let new = TopicIdentity {
        topic_id: Some("B".into()),
        partitions: 3,
    };
    let before = store.reset_topic(TOPIC, &new).unwrap();
    assert_eq!(
        before.into_iter().collect::<Vec<_>>(),
        vec![(0, 10), (1, 5)]
    );
    assert!(store.stored_offsets(TOPIC).unwrap().is_empty());
    assert!(store.offset_gaps().unwrap().is_empty());
    assert_eq!(store.topic_identity(TOPIC).unwrap(), Some(new));
    let resets = store.topic_resets().unwrap();
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].old_offsets, "0:10,1:5");
    assert_eq!(resets[0].old_topic_id.as_deref(), Some("A"));
    assert_eq!(resets[0].new_topic_id.as_deref(), Some("B"));
    // The events stay; the new topic starts at 0, and an event already
    // stored under its id is a duplicate, not a second deposit.
    let outcome = store.commit(&batch_of(0, 0, 10..12)).unwrap();
    assert_eq!((outcome.events_stored, outcome.duplicates), (1, 1));
    assert_eq!(count(&store, "events"), 11);
}

#[test]
fn a_version_3_database_is_upgraded_with_an_id_and_its_offsets() {
    let (_dir, path) = temp_store();
    {
        let mut store = Store::open(&path).unwrap();
        store.commit(&batch_of(0, 0, 1..6)).unwrap();
    }
    // Back to version 3's tables.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE store_identity; DROP TABLE topics; DROP TABLE topic_resets; \
         ALTER TABLE offset_gaps DROP COLUMN source_database; PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary().unwrap().schema_version, SCHEMA_VERSION);
    assert_eq!(store.summary().unwrap().events, 5);
    assert_eq!(offsets(&store, TOPIC), [(0, 5)]);
    assert_eq!(store.database_id().len(), 32);
}
