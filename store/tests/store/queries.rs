//! Reads for people and tools: one account's balances and latest events.

use proto::{EventType, Status};
use store::{Batch, Store};

use crate::common::{TOPIC, event, open_temp, push};

fn plan(store: &Store) -> String {
    let conn = store.connection_for_tests();
    let mut stmt = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT * FROM events WHERE account_id = 1 \
             ORDER BY created_at_us DESC, event_id DESC LIMIT 3",
        )
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
}

#[test]
fn latest_events_and_account_balances_with_and_without_the_index() {
    let (_dir, mut store) = open_temp();
    let mut batch = Batch::new(TOPIC);
    // Account 1: events whose creation times are not in id order, plus two
    // events created at the same instant (the id breaks the tie).
    let mut e = |id: u64, account: u64, ty: EventType, created: i64| {
        let mut ev = event(id, ty, account, 100 * id as i64, Status::Completed);
        ev.created_at_us = crate::common::T0 + created;
        push(&mut batch, 0, id as i64 - 1, ev);
    };
    e(1, 1, EventType::Deposit, 50);
    e(2, 2, EventType::Deposit, 60);
    e(3, 1, EventType::Fee, 10);
    e(4, 1, EventType::Transfer, 70); // to account 2
    e(5, 1, EventType::Withdrawal, 70);
    e(6, 2, EventType::Payment, 80);
    store.commit(&batch).unwrap();

    let check = |store: &Store| {
        let ids = |account, limit| -> Vec<u64> {
            let rows = store.latest_events(account, limit).unwrap();
            rows.iter().map(|r| r.event_id).collect()
        };
        assert_eq!(ids(1, 3), [5, 4, 1]);
        assert_eq!(ids(1, 100), [5, 4, 1, 3]);
        assert!(ids(1, 0).is_empty());
        assert!(ids(99, 5).is_empty());
        assert_eq!(ids(2, 10), [6, 2]); // the transfer belongs to account 1's rows

        let b1 = store.account_balances(1).unwrap();
        assert_eq!(b1.len(), 1);
        assert_eq!(
            (b1[0].balance_minor, b1[0].event_count),
            (100 - 300 - 400 - 500, 4)
        );
        let b2 = store.account_balances(2).unwrap();
        assert_eq!(
            (b2[0].balance_minor, b2[0].event_count),
            (200 + 400 - 600, 3)
        );
    };

    assert!(!plan(&store).contains("events_by_account"));
    check(&store);
    let pragma = |store: &Store, name: &str| -> i64 {
        store
            .connection_for_tests()
            .pragma_query_value(None, name, |r| r.get(0))
            .unwrap()
    };
    let writer_settings = (pragma(&store, "cache_size"), pragma(&store, "temp_store"));
    store.ensure_query_index().unwrap();
    store.ensure_query_index().unwrap(); // idempotent
    // The build's own cache and temp_store settings do not outlive it.
    assert_eq!(
        (pragma(&store, "cache_size"), pragma(&store, "temp_store")),
        writer_settings
    );
    assert_eq!(writer_settings.1, 2, "the writer keeps temp_store MEMORY");
    assert!(
        plan(&store).contains("events_by_account"),
        "{}",
        plan(&store)
    );
    check(&store);

    // Later commits keep the index up to date.
    batch.clear();
    let mut late = event(7, EventType::Deposit, 1, 1, Status::Pending);
    late.created_at_us = crate::common::T0 + 1_000;
    push(&mut batch, 0, 6, late);
    store.commit(&batch).unwrap();
    assert_eq!(store.latest_events(1, 1).unwrap()[0].event_id, 7);
    assert_eq!(store.account_balances(1).unwrap()[0].event_count, 4);
}
