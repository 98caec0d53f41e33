//! Checkpoints on the store's own thread: the WAL starts over instead of
//! growing, nothing is lost, and a reader holding an old snapshot stops
//! neither the writer nor the checkpoints for good.

use std::path::Path;

use rusqlite::Connection;
use store::{Batch, Store, StoreOptions};

use crate::common::{TOPIC, count, deposit, push, temp_store};

/// Bytes of dead letters per batch: with the events, ~4 MiB a commit, so
/// that a few dozen commits write several times the 64 MiB at which the
/// WAL starts over.
const BYTES_PER_BATCH: usize = 4 << 20;
const DEAD_LETTERS_PER_BATCH: usize = 64;

/// Commits `batches` batches of 100 deposits and 64 big dead letters each,
/// continuing at event id `first_id` and offset `first_offset`.
fn write(store: &mut Store, batches: usize, first_id: u64, first_offset: i64) -> (u64, i64) {
    let (mut id, mut offset) = (first_id, first_offset);
    for _ in 0..batches {
        let mut batch = Batch::new(TOPIC);
        for _ in 0..100 {
            push(&mut batch, 0, offset, deposit(id, 1 + id % 50, 100));
            id += 1;
            offset += 1;
        }
        for _ in 0..DEAD_LETTERS_PER_BATCH {
            // Incompressible-ish and distinct, so that no page is shared.
            let bytes: Vec<u8> = (0..BYTES_PER_BATCH / DEAD_LETTERS_PER_BATCH)
                .map(|i| (i as u64 * 31 + offset as u64) as u8)
                .collect();
            batch.push_dead_letter(0, offset, None, Some(bytes), "test: big".into());
            offset += 1;
        }
        let outcome = store.commit(&batch).unwrap();
        assert_eq!(outcome.events_stored, 100);
    }
    (id, offset)
}

fn wal_bytes(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

#[test]
fn the_wal_starts_over_instead_of_growing() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    // ~240 MiB committed: four times the size at which the WAL starts over.
    let mut largest = 0;
    let (mut id, mut offset) = (1, 0);
    for _ in 0..60 {
        (id, offset) = write(&mut store, 1, id, offset);
        largest = largest.max(wal_bytes(&path));
    }
    assert!(
        largest < 120 << 20,
        "the WAL grew to {largest} bytes for ~240 MiB committed: it never started over"
    );
    assert_eq!(count(&store, "events"), 6_000);
    assert_eq!(count(&store, "dead_letters"), 60 * 64);
    drop(store);

    // Closed cleanly: everything is in the database file, and it opens
    // again with every row.
    assert_eq!(
        wal_bytes(&path),
        0,
        "the last connection to close removes the WAL"
    );
    let store = Store::open(&path).unwrap();
    assert_eq!(count(&store, "events"), 6_000);
    assert_eq!(store.stored_offsets(TOPIC).unwrap()[&0], offset);
}

#[test]
fn a_reader_holding_an_old_snapshot_neither_blocks_nor_loses_commits() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    let (id, offset) = write(&mut store, 2, 1, 0);

    // A reader in the middle of a long query: its snapshot pins the WAL.
    let reader = Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 200);

    // Past the 256 MiB at which the writer waits for the checkpoint thread
    // and checkpoints itself: neither can copy past the reader's snapshot,
    // and neither may wait for the reader.
    let (id, offset) = write(&mut store, 70, id, offset);
    assert!(wal_bytes(&path) > 256 << 20, "the reader pinned the WAL");
    let still: i64 = reader
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(still, 200, "the reader's snapshot is unchanged");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);

    // Once the reader is gone the WAL is copied and starts over: of the
    // ~240 MiB written next, at most the first commit extends it (it was
    // written before the copy), the rest reuses it.
    let before = wal_bytes(&path);
    write(&mut store, 60, id, offset);
    let after = wal_bytes(&path);
    assert!(
        after <= before + 2 * BYTES_PER_BATCH as u64,
        "the WAL went on growing after the reader left: {before} -> {after} bytes"
    );
    assert_eq!(count(&store, "events"), 13_200);
}

#[test]
fn inline_checkpoints_are_still_there_when_asked_for() {
    let (_dir, path) = temp_store();
    let opts = StoreOptions {
        background_checkpoints: false,
        ..StoreOptions::default()
    };
    let mut store = Store::open_with(&path, &opts).unwrap();
    let mut largest = 0;
    let (mut id, mut offset) = (1, 0);
    for _ in 0..40 {
        (id, offset) = write(&mut store, 1, id, offset);
        largest = largest.max(wal_bytes(&path));
    }
    assert!(largest < 120 << 20, "the WAL grew to {largest} bytes");
    assert_eq!(count(&store, "events"), 4_000);
}
