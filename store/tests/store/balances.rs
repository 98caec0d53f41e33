//! Balances against a computation written here from the balance rule, not
//! from `BankingEvent::balance_changes`.

use std::collections::BTreeMap;

use proto::{BankingEvent, Channel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store::{Balance, Batch, StoreError};

use crate::common::{T0, TOPIC, deposit, open_temp, push};

fn random_event(rng: &mut StdRng, id: u64) -> BankingEvent {
    let event_type = rng.random_range(1..=6); // every type
    let status = rng.random_range(1..=3); // COMPLETED, PENDING, DECLINED
    let account = rng.random_range(1..=12u64);
    let counterparty = if event_type == 4 {
        let mut c = rng.random_range(1..=12u64);
        while c == account {
            c = rng.random_range(1..=12u64);
        }
        c
    } else {
        0
    };
    let e = BankingEvent {
        event_id: id,
        event_type,
        account_id: account,
        amount_minor: rng.random_range(1..=1_000_000),
        currency: ["EUR", "USD", "JPY"][rng.random_range(0..3)].into(),
        channel: rng.random_range(1..=5),
        status,
        country: "FR".into(),
        transaction_ref: format!("R{id}"),
        counterparty_account_id: counterparty,
        created_at_us: T0 + rng.random_range(0..1_000_000_000),
    };
    proto::validate(&e).unwrap();
    assert!(Channel::try_from(e.channel).is_ok());
    e
}

/// The rule as the README states it, written out independently.
fn expected(events: &[BankingEvent]) -> Vec<Balance> {
    let mut map: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
    let mut apply = |account: u64, currency: &str, delta: i64| {
        let slot = map.entry((account, currency.to_string())).or_default();
        slot.0 += delta;
        slot.1 += 1;
    };
    for e in events {
        if e.status != 1 {
            continue; // only COMPLETED moves money
        }
        match e.event_type {
            2 => apply(e.account_id, &e.currency, e.amount_minor), // deposit
            4 => {
                apply(e.account_id, &e.currency, -e.amount_minor);
                apply(e.counterparty_account_id, &e.currency, e.amount_minor);
            }
            1 | 3 | 5 | 6 => apply(e.account_id, &e.currency, -e.amount_minor),
            other => panic!("unexpected type {other}"),
        }
    }
    map.into_iter()
        .map(
            |((account_id, currency), (balance_minor, event_count))| Balance {
                account_id,
                currency,
                balance_minor,
                event_count,
            },
        )
        .collect()
}

#[test]
fn balances_match_an_independent_computation() {
    let (_dir, mut store) = open_temp();
    let mut rng = StdRng::seed_from_u64(7);
    let events: Vec<BankingEvent> = (1..=600).map(|id| random_event(&mut rng, id)).collect();
    // Several batches of uneven size, so balances accumulate across commits.
    let mut batch = Batch::new(TOPIC);
    let mut next = [0i64; 3];
    for chunk in events.chunks(137) {
        for (j, e) in chunk.iter().enumerate() {
            let p = j % 3;
            push(&mut batch, p as i32, next[p], e.clone());
            next[p] += 1;
        }
        store.commit(&batch).unwrap();
        batch.clear();
    }
    let want = expected(&events);
    assert!(want.iter().any(|b| b.balance_minor > 0) && want.iter().any(|b| b.balance_minor < 0));
    assert_eq!(store.balances().unwrap(), want);
    for account in 1..=12 {
        let of_account: Vec<Balance> = want
            .iter()
            .filter(|b| b.account_id == account)
            .cloned()
            .collect();
        assert_eq!(store.account_balances(account).unwrap(), of_account);
    }
    assert!(store.account_balances(13).unwrap().is_empty());
}

#[test]
fn a_balance_that_would_overflow_fails_the_batch() {
    let (_dir, mut store) = open_temp();
    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 0, 0, deposit(1, 3, 10));
    store.commit(&batch).unwrap();
    // Bring the balance to the edge by hand: no realistic load gets there.
    store
        .connection_for_tests()
        .execute(
            "UPDATE account_balances SET balance_minor = ?1",
            [i64::MAX - 5],
        )
        .unwrap();

    batch.clear();
    push(&mut batch, 0, 1, deposit(2, 3, 10));
    let err = store.commit(&batch).unwrap_err();
    assert!(err.is_fatal());
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err:?}");
    assert!(err.to_string().contains("balance_minor"), "{err}");
    // Nothing of the batch: no event, the old balance, the old offset.
    assert_eq!(store.summary().unwrap().events, 1);
    assert_eq!(store.balances().unwrap()[0].balance_minor, i64::MAX - 5);
    assert_eq!(store.stored_offsets(TOPIC).unwrap()[&0], 1);
}
