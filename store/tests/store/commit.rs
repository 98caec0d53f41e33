//! Committing batches: counts, checksum, offsets, duplicates, dead letters.

use std::collections::HashMap;

use proto::{EventType, IdChecksum, Status};
use store::{Batch, DeadLetterRow, SCHEMA_VERSION, Store, StoreOptions};

use crate::common::{
    TOPIC, count, deposit, event, offsets, open_temp, push, starts_at, tally, temp_store,
};

/// Asserts that a dead letter's error mentions `what`.
#[track_caller]
fn says(dead: &DeadLetterRow, what: &str) {
    assert!(dead.error.contains(what), "{}", dead.error);
}

#[test]
fn batch_across_partitions_is_stored_exactly_and_survives_reopen() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    assert!(store.stored_offsets(TOPIC).unwrap().is_empty());

    let n = 3_000u64;
    let mut batch = Batch::with_capacity(TOPIC, n as usize);
    let mut expected_offsets: HashMap<i32, i64> = HashMap::new();
    let mut offsets = [100i64, 0, 7_000, 42];
    for (p, &o) in offsets.iter().enumerate() {
        starts_at(&mut store, p as i32, o);
    }
    assert_eq!(store.summary().unwrap().offset_gaps, 3);
    let mut sum = 0i128;
    for id in 1..=n {
        let partition = (id % 4) as i32;
        let offset = offsets[partition as usize];
        offsets[partition as usize] += 1;
        expected_offsets.insert(partition, offset + 1);
        let amount = 1 + (id as i64 * 7919) % 100_000;
        sum += i128::from(amount);
        let ty = EventType::try_from(1 + (id % 6) as i32).unwrap();
        push(
            &mut batch,
            partition,
            offset,
            event(id, ty, 1 + id % 50, amount, Status::Completed),
        );
    }
    assert_eq!(batch.len(), n as usize);
    assert_eq!(
        batch.next_offsets().collect::<HashMap<_, _>>(),
        expected_offsets
    );

    let outcome = store.commit(&batch).unwrap();
    assert_eq!(outcome.events_stored, n as usize);
    assert_eq!(outcome.dead_letters, 0);
    assert_eq!(outcome.duplicates, 0);

    let summary = store.summary().unwrap();
    assert_eq!(summary.events, n);
    assert_eq!(summary.distinct_event_ids, n);
    assert_eq!(summary.amount_minor_sum, sum);
    assert_eq!(summary.id_checksum, (1..=n).collect::<IdChecksum>());
    assert_eq!(summary.dead_letters, 0);
    assert_eq!(summary.schema_version, SCHEMA_VERSION);
    assert_eq!(store.stored_offsets(TOPIC).unwrap(), expected_offsets);
    assert!(store.stored_offsets("other.topic").unwrap().is_empty());
    let balances = store.balances().unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary().unwrap(), summary);
    assert_eq!(store.stored_offsets(TOPIC).unwrap(), expected_offsets);
    assert_eq!(store.balances().unwrap(), balances);
}

#[test]
fn events_are_stored_column_by_column() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    starts_at(&mut store, 3, 77);
    let mut batch = Batch::new(TOPIC);
    let transfer = event(9, EventType::Transfer, 10, 2_500, Status::Pending);
    let payload = prost::Message::encode_to_vec(&transfer);
    push(&mut batch, 3, 77, transfer.clone());
    push(
        &mut batch,
        3,
        78,
        event(10, EventType::Fee, 10, 30, Status::Declined),
    );
    let outcome = store.commit(&batch).unwrap();

    let rows = store.latest_events(10, 10).unwrap();
    assert_eq!(rows.len(), 2);
    let fee = &rows[0];
    assert_eq!((fee.event_id, fee.event_type.as_str()), (10, "FEE"));
    assert_eq!(fee.status, "DECLINED");
    assert_eq!(fee.counterparty_account_id, None);
    let t = &rows[1];
    assert_eq!(t.event_id, 9);
    assert_eq!(t.event_type, "TRANSFER");
    assert_eq!(t.account_id, 10);
    assert_eq!(t.amount_minor, 2_500);
    assert_eq!(t.currency, "EUR");
    assert_eq!(t.channel, "ONLINE");
    assert_eq!(t.status, "PENDING");
    assert_eq!(t.country, "DE");
    assert_eq!(t.transaction_ref, transfer.transaction_ref);
    assert_eq!(t.counterparty_account_id, Some(11));
    assert_eq!(t.created_at_us, transfer.created_at_us);
    assert!(t.committed_at_us > 0 && t.committed_at_us <= outcome.committed_at_us);
    assert_eq!((t.kafka_partition, t.kafka_offset), (3, 77));
    // By default the raw bytes are not kept: every field has its column.
    assert_eq!(t.payload, None);

    // With keep_event_payloads they are, byte for byte.
    let (_dir2, path2) = temp_store();
    let opts = StoreOptions {
        keep_event_payloads: true,
        ..StoreOptions::default()
    };
    let mut keeping = Store::open_with(&path2, &opts).unwrap();
    starts_at(&mut keeping, 3, 77);
    keeping.commit(&batch).unwrap();
    let rows = keeping.latest_events(10, 10).unwrap();
    assert_eq!(rows[1].payload.as_deref(), Some(&payload[..]));
    assert!(rows[0].payload.is_some());
}

/// The fast path writes many rows per statement; a duplicate anywhere in
/// such a chunk (against an earlier batch, or within the same chunk) must
/// still become exactly one dead letter, and every other event of the
/// chunk a row, with exact balances.
#[test]
fn duplicates_inside_a_multi_row_chunk_are_caught_one_by_one() {
    let (_dir, mut store) = open_temp();
    let n = store::ROWS_PER_INSERT as u64;
    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 0, 0, deposit(10, 5, 7));
    store.commit(&batch).unwrap();

    // Three chunks and a remainder; ids 1..=3n+5 plus two duplicates: id 10
    // (stored by the first batch) in the first chunk, and id 2n+3 twice in
    // the third.
    batch.clear();
    let mut offset = 1;
    let mut expected_sum = 7i64;
    let mut ids: Vec<u64> = (1..=3 * n + 5).filter(|&i| i != 10).collect();
    ids.insert(5, 10);
    ids.insert((2 * n + 10) as usize, 2 * n + 3);
    for &id in &ids {
        push(&mut batch, 0, offset, deposit(id, 5, 1));
        offset += 1;
    }
    let stored_ids = ids.len() as u64 - 2;
    expected_sum += stored_ids as i64;
    let outcome = store.commit(&batch).unwrap();
    assert_eq!(
        (
            outcome.events_stored as u64,
            outcome.duplicates,
            outcome.dead_letters
        ),
        (stored_ids, 2, 2)
    );
    let s = store.summary().unwrap();
    assert_eq!(
        (s.events, s.distinct_event_ids),
        (stored_ids + 1, stored_ids + 1)
    );
    assert_eq!(s.amount_minor_sum, i128::from(expected_sum));
    assert_eq!(store.balances().unwrap()[0].balance_minor, expected_sum);
    assert_eq!(store.balances().unwrap()[0].event_count, stored_ids + 1);
    let dead = store.dead_letters().unwrap();
    says(&dead[0], "duplicate event_id 10");
    says(&dead[1], &format!("duplicate event_id {}", 2 * n + 3));
    assert_eq!(store.stored_offsets(TOPIC).unwrap()[&0], offset);
}

#[test]
fn duplicates_within_and_across_batches_become_dead_letters() {
    let (_dir, mut store) = open_temp();

    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 0, 0, deposit(1, 5, 1_000));
    push(&mut batch, 0, 1, deposit(2, 5, 20));
    push(&mut batch, 1, 0, deposit(1, 6, 999_999)); // same id, other account
    let first = store.commit(&batch).unwrap();
    assert_eq!(
        (first.events_stored, first.duplicates, first.dead_letters),
        (2, 1, 1)
    );

    batch.clear();
    assert!(batch.is_empty());
    assert_eq!(batch.topic(), TOPIC);
    push(&mut batch, 0, 2, deposit(2, 5, 20)); // id stored by the first batch
    push(&mut batch, 1, 1, deposit(3, 6, 5));
    let second = store.commit(&batch).unwrap();
    assert_eq!(
        (second.events_stored, second.duplicates, second.dead_letters),
        (1, 1, 1)
    );

    let balances = store.balances().unwrap();
    let as_tuples: Vec<_> = balances
        .iter()
        .map(|b| {
            (
                b.account_id,
                b.currency.as_str(),
                b.balance_minor,
                b.event_count,
            )
        })
        .collect();
    assert_eq!(as_tuples, [(5, "EUR", 1_020, 2), (6, "EUR", 5, 1)]);

    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!((dead[0].partition, dead[0].offset), (1, 0));
    says(&dead[0], "duplicate event_id 1");
    says(&dead[0], "partition 0 offset 0");
    assert_eq!(
        dead[0].payload.as_deref(),
        Some(&prost::Message::encode_to_vec(&deposit(1, 6, 999_999))[..])
    );
    says(&dead[1], "duplicate event_id 2");
    assert_eq!((dead[1].partition, dead[1].offset), (0, 2));

    // The duplicates' offsets advanced like any other message's.
    assert_eq!(offsets(&store, TOPIC), [(0, 3), (1, 2)]);
    let summary = store.summary().unwrap();
    assert_eq!((summary.events, summary.dead_letters), (3, 2));
    assert_eq!(summary.amount_minor_sum, 1_000 + 20 + 5);
}

#[test]
fn dead_letters_keep_partition_offset_key_payload_and_error() {
    let (_dir, mut store) = open_temp();
    starts_at(&mut store, 2, 40);
    starts_at(&mut store, 0, 9);
    let mut batch = Batch::new(TOPIC);
    batch.push_dead_letter(
        2,
        40,
        Some(b"acct-7".to_vec()),
        Some(vec![0xff, 0x00, 0x13]),
        "not a banking.v1.BankingEvent: bad wire type".into(),
    );
    batch.push_dead_letter(0, 9, None, None, "empty message".into());
    push(&mut batch, 2, 41, deposit(1, 7, 10));
    let outcome = store.commit(&batch).unwrap();
    assert_eq!(tally(&outcome), (1, 2, 0));

    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].topic, TOPIC);
    assert_eq!((dead[0].partition, dead[0].offset), (2, 40));
    assert_eq!(dead[0].key.as_deref(), Some(&b"acct-7"[..]));
    assert_eq!(dead[0].payload.as_deref(), Some(&[0xff, 0x00, 0x13][..]));
    assert_eq!(
        dead[0].error,
        "not a banking.v1.BankingEvent: bad wire type"
    );
    assert!(dead[0].recorded_at_us > crate::common::T0);
    assert_eq!(
        (
            dead[1].partition,
            dead[1].offset,
            dead[1].key.clone(),
            dead[1].payload.clone()
        ),
        (0, 9, None, None)
    );
    assert_eq!(dead[1].error, "empty message");
    assert_eq!(offsets(&store, TOPIC), [(0, 10), (2, 42)]);
}

#[test]
fn invalid_event_is_refused_by_the_store_itself() {
    let (_dir, mut store) = open_temp();
    let mut batch = Batch::new(TOPIC);
    let mut bad = deposit(1, 7, 10);
    bad.amount_minor = -10;
    batch.push_event(0, 0, bad, vec![1, 2, 3]);
    let mut huge_id = deposit(2, 7, 10);
    huge_id.event_id = u64::MAX;
    batch.push_event(0, 1, huge_id, vec![4]);
    push(&mut batch, 0, 2, deposit(3, 7, 10));
    let outcome = store.commit(&batch).unwrap();
    assert_eq!(tally(&outcome), (1, 2, 0));
    let dead = store.dead_letters().unwrap();
    says(&dead[0], "amount_minor -10");
    says(&dead[1], "event_id 18446744073709551615");
    assert_eq!(store.balances().unwrap()[0].balance_minor, 10);
    assert_eq!(offsets(&store, TOPIC), [(0, 3)]);
}

#[test]
fn offsets_never_move_backwards_and_topics_are_separate() {
    let (_dir, mut store) = open_temp();
    starts_at(&mut store, 0, 500);
    starts_at(&mut store, 1, 10);
    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 0, 500, deposit(1, 1, 1));
    store.commit(&batch).unwrap();
    batch.clear();
    // An older offset (a seek back by hand, say) must not rewind the store.
    push(&mut batch, 0, 10, deposit(2, 1, 1));
    push(&mut batch, 1, 10, deposit(3, 1, 1));
    store.commit(&batch).unwrap();
    assert_eq!(offsets(&store, TOPIC), [(0, 501), (1, 11)]);

    let mut other = Batch::new("audit");
    other.push_dead_letter(0, 0, None, None, "x".into());
    store.commit(&other).unwrap();
    assert_eq!(offsets(&store, "audit"), [(0, 1)]);
    assert_eq!(store.stored_offsets(TOPIC).unwrap().len(), 2);
}

#[test]
fn empty_batch_writes_nothing() {
    let (_dir, mut store) = open_temp();
    let outcome = store.commit(&Batch::new(TOPIC)).unwrap();
    assert_eq!((outcome.events_stored, outcome.dead_letters), (0, 0));
    assert_eq!(count(&store, "offsets"), 0);
}

#[test]
fn batch_bookkeeping() {
    let mut batch = Batch::with_capacity(TOPIC, 8);
    assert!(batch.is_empty());
    push(&mut batch, 1, 5, deposit(1, 1, 1));
    push(&mut batch, 1, 3, deposit(2, 1, 1)); // out of order: max wins
    batch.push_dead_letter(0, 9, None, None, "x".into());
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.events().len(), 2);
    assert_eq!(batch.events()[1].event.event_id, 2);
    assert_eq!(batch.dead_letters().len(), 1);
    assert_eq!(batch.next_offsets().collect::<Vec<_>>(), [(0, 10), (1, 6)]);
    batch.clear();
    assert!(batch.is_empty());
    assert_eq!(batch.next_offsets().count(), 0);
    assert_eq!(batch.topic(), TOPIC);
}

#[test]
fn a_commit_survives_a_crash_before_checkpoint() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    let mut batch = Batch::new(TOPIC);
    for id in 1..=300 {
        push(&mut batch, 0, id as i64 - 1, deposit(id, 4, 2));
    }
    store.commit(&batch).unwrap();
    // No close, no checkpoint: the rows live only in the -wal file, as
    // after a crash right after COMMIT.
    std::mem::forget(store);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary().unwrap().events, 300);
    assert_eq!(store.balances().unwrap()[0].balance_minor, 600);
    assert_eq!(offsets(&store, TOPIC), [(0, 300)]);
}

/// A whole multi-row chunk of ids already stored (a producer that sent a
/// run of events twice): none goes in, each becomes one dead letter, and
/// the chunk after it, all new, is stored whole.
#[test]
fn a_chunk_of_nothing_but_duplicates_stores_nothing_of_it() {
    let (_dir, mut store) = open_temp();
    let n = store::ROWS_PER_INSERT as u64;
    let mut batch = Batch::new(TOPIC);
    for id in 1..=n {
        push(&mut batch, 0, id as i64 - 1, deposit(id, 5, 1));
    }
    store.commit(&batch).unwrap();

    batch.clear();
    for id in 1..=2 * n {
        push(&mut batch, 0, (n + id) as i64 - 1, deposit(id, 5, 1));
    }
    let outcome = store.commit(&batch).unwrap();
    assert_eq!(
        (outcome.events_stored as u64, outcome.duplicates as u64),
        (n, n)
    );
    let s = store.summary().unwrap();
    assert_eq!((s.events, s.distinct_event_ids), (2 * n, 2 * n));
    assert_eq!(store.balances().unwrap()[0].balance_minor, 2 * n as i64);
    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len() as u64, n);
    assert!(dead.iter().all(|d| d.error.contains("duplicate event_id")));
    assert_eq!(dead[0].offset, n as i64);
}

#[test]
fn a_batch_is_written_in_id_order_and_the_first_copy_of_an_id_wins() {
    let (_dir, mut store) = open_temp();
    // Two partitions' runs, as Kafka delivers them, ids interleaved
    // between the runs; id 7 comes twice, first at partition 1 offset 1
    // (amount 70), then at partition 0 offset 3 (amount 700).
    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 1, 0, deposit(2, 5, 20));
    push(&mut batch, 1, 1, deposit(7, 5, 70));
    push(&mut batch, 1, 2, deposit(9, 5, 90));
    push(&mut batch, 0, 0, deposit(1, 5, 10));
    push(&mut batch, 0, 1, deposit(4, 5, 40));
    push(&mut batch, 0, 2, deposit(8, 5, 80));
    push(&mut batch, 0, 3, deposit(7, 5, 700));
    let outcome = store.commit(&batch).unwrap();
    assert_eq!((outcome.events_stored, outcome.duplicates), (6, 1));

    let by_rowid: Vec<(u64, i64, i32, i64)> = store
        .connection_for_tests()
        .prepare(
            "SELECT event_id, amount_minor, kafka_partition, kafka_offset FROM events ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        by_rowid,
        vec![
            (1, 10, 0, 0),
            (2, 20, 1, 0),
            (4, 40, 0, 1),
            (7, 70, 1, 1),
            (8, 80, 0, 2),
            (9, 90, 1, 2)
        ]
    );
    let dead = store.dead_letters().unwrap();
    assert_eq!((dead.len(), dead[0].partition, dead[0].offset), (1, 0, 3));
    assert_eq!(store.balances().unwrap()[0].balance_minor, 310);
    assert_eq!(offsets(&store, TOPIC), [(0, 4), (1, 3)]);
}
