//! Hand-built events and small helpers shared by the tests.

use std::path::PathBuf;

use prost::Message;
use proto::{BankingEvent, Channel, EventType, Status};
use store::{Batch, CommitOutcome, Store};

pub const TOPIC: &str = "banking.events";

/// 2024-01-01T00:00:00Z in µs: inside `validate`'s plausible range.
pub const T0: i64 = 1_704_067_200_000_000;

/// A valid event; transfers get a counterparty (account + 1).
pub fn event(id: u64, ty: EventType, account: u64, amount: i64, status: Status) -> BankingEvent {
    let counterparty = if ty == EventType::Transfer {
        if account == proto::MAX_ACCOUNT_ID {
            1
        } else {
            account + 1
        }
    } else {
        0
    };
    let e = BankingEvent {
        event_id: id,
        event_type: ty as i32,
        account_id: account,
        amount_minor: amount,
        currency: "EUR".into(),
        channel: Channel::Online as i32,
        status: status as i32,
        country: "DE".into(),
        transaction_ref: format!("REF-{id:010}"),
        counterparty_account_id: counterparty,
        created_at_us: T0 + id as i64,
    };
    proto::validate(&e).expect("test helper builds valid events");
    e
}

/// A completed deposit.
pub fn deposit(id: u64, account: u64, amount: i64) -> BankingEvent {
    event(id, EventType::Deposit, account, amount, Status::Completed)
}

/// Pushes `e` with its encoded bytes as payload.
pub fn push(batch: &mut Batch, partition: i32, offset: i64, e: BankingEvent) {
    let payload = e.encode_to_vec();
    batch.push_event(partition, offset, e, payload);
}

/// A fresh directory and a store path inside it (the file does not exist).
pub fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    (dir, path)
}

/// A new store in a fresh directory (kept while the `TempDir` lives).
pub fn open_temp() -> (tempfile::TempDir, Store) {
    let (dir, path) = temp_store();
    let store = Store::open(&path).unwrap();
    (dir, store)
}

/// The stored offsets of `topic`, by partition.
pub fn offsets(store: &Store, topic: &str) -> Vec<(i32, i64)> {
    let mut all: Vec<_> = store.stored_offsets(topic).unwrap().into_iter().collect();
    all.sort();
    all
}

/// Row counts straight from SQL, independent of the store's own queries.
pub fn count(store: &Store, table: &str) -> i64 {
    store
        .connection_for_tests()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Makes `partition` of [`TOPIC`] start at `offset` in `store`: a new
/// partition starts at 0, and any other first offset must be accounted for
/// (here, as a hand-over).
pub fn starts_at(store: &mut Store, partition: i32, offset: i64) {
    store
        .record_gap(TOPIC, partition, 0, offset, store::GapReason::HandOver)
        .unwrap();
}

/// Events stored, dead letters, duplicates: what a commit did.
pub fn tally(o: &CommitOutcome) -> (usize, usize, usize) {
    (o.events_stored, o.dead_letters, o.duplicates)
}
