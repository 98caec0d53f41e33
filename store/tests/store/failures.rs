//! A full database and a lock held by someone else.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use store::{Batch, Store, StoreError, StoreOptions};

use crate::common::{TOPIC, count, deposit, offsets, push, temp_store};

#[test]
fn a_full_database_rolls_back_rows_and_offsets_with_a_fatal_clear_error() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 0, 0, deposit(1, 1, 100));
    store.commit(&batch).unwrap();
    let before = store.summary().unwrap();
    let balances = store.balances().unwrap();

    store.forbid_growth_for_tests();

    batch.clear();
    // Partition 0 continues at 1 (offset 0 is stored), partition 1 starts.
    let mut next = [1i64, 0];
    for id in 2..2_000 {
        let p = (id % 2) as usize;
        push(&mut batch, p as i32, next[p], deposit(id, 1 + id % 40, 10));
        next[p] += 1;
    }
    batch.push_dead_letter(1, next[1], None, Some(vec![0; 100]), "junk".into());
    let err = store.commit(&batch).unwrap_err();
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert!(err.is_fatal());
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("is full"), "{message}");
    assert_eq!(err.path(), path);

    assert_eq!(store.summary().unwrap(), before);
    assert_eq!(store.balances().unwrap(), balances);
    assert_eq!(count(&store, "dead_letters"), 0);
    assert_eq!(offsets(&store, TOPIC), [(0, 1)]);

    // Once there is room again, the very same batch goes through whole.
    store
        .connection_for_tests()
        .query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))
        .unwrap();
    let outcome = store.commit(&batch).unwrap();
    assert_eq!((outcome.events_stored, outcome.dead_letters), (1_998, 1));
    assert_eq!(store.summary().unwrap().events, 1_999);
    assert_eq!(offsets(&store, TOPIC), [(0, 1_000), (1, 1_000)]);
}

#[test]
fn commit_waits_for_another_writer_and_loses_nothing() {
    let (_dir, path) = temp_store();
    let opts = StoreOptions {
        busy_log_every: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let mut store = Store::open_with(&path, &opts).unwrap();

    let (locked_tx, locked_rx) = mpsc::channel();
    let other_path = path.clone();
    let holder = thread::spawn(move || {
        let conn = Connection::open(&other_path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.execute(
            "INSERT INTO offsets (topic, \"partition\", next_offset) VALUES ('other', 0, 1)",
            [],
        )
        .unwrap();
        locked_tx.send(()).unwrap();
        thread::sleep(Duration::from_secs(2));
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();

    let mut batch = Batch::new(TOPIC);
    for id in 1..=500 {
        push(&mut batch, 0, id as i64 - 1, deposit(id, 1 + id % 7, 3));
    }
    let started = Instant::now();
    let outcome = store.commit(&batch).unwrap();
    let waited = started.elapsed();
    holder.join().unwrap();

    assert!(
        waited >= Duration::from_millis(1_500),
        "did not wait: {waited:?}"
    );
    assert_eq!(outcome.events_stored, 500);
    assert_eq!(store.summary().unwrap().events, 500);
    assert_eq!(offsets(&store, TOPIC), [(0, 500)]);
    // The other writer's work is there too.
    assert_eq!(offsets(&store, "other"), [(0, 1)]);
}
