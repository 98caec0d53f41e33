//! The decoder and the balance rule, fuzzed with `proptest` (stable Rust:
//! no cargo-fuzz). Three properties:
//!
//! 1. any bytes: `Decoded::from_message` never panics; an `Event` is valid
//!    and carries the exact bytes it came from; a dead letter keeps the
//!    message's partition, offset, key and bytes, with the decoder's reason;
//! 2. events near and far from valid, encoded, decoded, batched and
//!    committed: each valid event (first of its id) becomes one row equal
//!    to it, every other message one dead letter, and the stored offset
//!    covers them all;
//! 3. the balance rule, from outside the store (its public API only):
//!    valid events over a few accounts and currencies, with repeated ids
//!    and redelivered batches, give exactly the balances of a model written
//!    here from docs/store.md.
//!
//! By default each property runs a few dozen cases (quick). `PROPTEST_CASES`
//! sets the cases per round; `FUZZ_SECS` repeats rounds with fresh seeds
//! until that many seconds have passed and prints the executions
//! (`scripts/fuzz.sh`). A failure is shrunk and its seed saved next to this
//! file (`fuzz.proptest-regressions`), replayed first by every later run;
//! what it found becomes a named test below.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use consumer_core::Decoded;
use consumer_core::store::{Batch, Store};
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseError, TestCaseResult, TestRunner,
};
use prost::Message as _;
use proto::{BankingEvent, Channel, EventType, Status};
use rdkafka::Timestamp;
use rdkafka::message::OwnedMessage;

const TOPIC: &str = "fuzz.events";
const FIRST_ACCOUNT: u64 = 10_000_001;

// --- the runner ---------------------------------------------------------------

/// Runs `test` over `strategy`: one round of `default_cases` cases (or
/// `PROPTEST_CASES`), or rounds with fresh seeds until `FUZZ_SECS` have
/// passed. Prints the executions and the time.
fn fuzz<S>(name: &str, default_cases: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: Debug,
{
    let budget = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.source_file = Some(file!());
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    let started = Instant::now();
    let mut executions = 0u64;
    loop {
        let mut runner = TestRunner::new(config.clone());
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        executions += u64::from(config.cases);
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {name}: {executions} executions in {secs:.1} s ({:.0}/s)",
        executions as f64 / secs.max(1e-9)
    );
}

// --- strategies -----------------------------------------------------------------

/// A valid event over `accounts` accounts from 10000001 and the given
/// currencies, with an id in `ids`.
fn valid_event(
    ids: std::ops::RangeInclusive<u64>,
    accounts: u64,
    currencies: &'static [&'static str],
) -> impl Strategy<Value = BankingEvent> {
    let last = FIRST_ACCOUNT + accounts - 1;
    (
        ids,
        1..=6i32,
        FIRST_ACCOUNT..=last,
        prop_oneof![1..=1_000i64, 1..=proto::MAX_AMOUNT_MINOR],
        prop::sample::select(currencies),
        1..=5i32,
        1..=3i32,
        "[A-Z]{2}",
        "[ -~]{1,64}",
        FIRST_ACCOUNT..=last,
        946_684_800_000_001..4_102_444_800_000_000i64,
    )
        .prop_map(
            move |(id, t, account, amount, cur, ch, st, country, reference, other, at)| {
                let transfer = t == EventType::Transfer as i32;
                BankingEvent {
                    event_id: id,
                    event_type: t,
                    account_id: account,
                    amount_minor: amount,
                    currency: cur.to_string(),
                    channel: ch,
                    status: st,
                    country,
                    transaction_ref: reference,
                    counterparty_account_id: match (transfer, other == account) {
                        (false, _) => 0,
                        (true, false) => other,
                        // Never the account itself.
                        (true, true) if account == last => FIRST_ACCOUNT,
                        (true, true) => account + 1,
                    },
                    created_at_us: at,
                }
            },
        )
}

/// A valid event with one field, sometimes two, replaced by anything: the
/// decoder's rules one at a time, at and around their edges.
fn mutated_event() -> impl Strategy<Value = BankingEvent> {
    let field = || {
        prop_oneof![
            any::<u64>().prop_map(|v| Mutation::Id(v % 4)),
            prop_oneof![-2..10i32, any::<i32>()].prop_map(Mutation::Type),
            prop_oneof![
                Just(0u64),
                Just(proto::MAX_ACCOUNT_ID),
                Just(proto::MAX_ACCOUNT_ID + 1),
                any::<u64>()
            ]
            .prop_map(Mutation::Account),
            prop_oneof![
                Just(0i64),
                Just(-1),
                Just(proto::MAX_AMOUNT_MINOR),
                Just(proto::MAX_AMOUNT_MINOR + 1),
                Just(i64::MIN),
                any::<i64>()
            ]
            .prop_map(Mutation::Amount),
            prop_oneof!["[A-Z]{3}", "[a-zA-Z0-9]{0,5}", ".{0,4}"].prop_map(Mutation::Currency),
            prop_oneof![-1..8i32, any::<i32>()].prop_map(Mutation::Channel),
            prop_oneof![-1..6i32, any::<i32>()].prop_map(Mutation::Status),
            prop_oneof!["[A-Z]{2}", ".{0,3}"].prop_map(Mutation::Country),
            prop_oneof![Just(String::new()), ".{60,70}", "\\PC{0,8}"].prop_map(Mutation::Reference),
            prop_oneof![Just(0u64), FIRST_ACCOUNT..FIRST_ACCOUNT + 3, any::<u64>()]
                .prop_map(Mutation::Counterparty),
            prop_oneof![
                Just(0i64),
                Just(946_684_800_000_000),
                Just(4_102_444_800_000_000),
                any::<i64>()
            ]
            .prop_map(Mutation::CreatedAt),
        ]
    };
    (
        valid_event(1..=1_000_000, 3, &["EUR", "GBP"]),
        prop::collection::vec(field(), 1..=2),
    )
        .prop_map(|(mut e, mutations)| {
            for m in mutations {
                m.apply(&mut e);
            }
            e
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Id(u64),
    Type(i32),
    Account(u64),
    Amount(i64),
    Currency(String),
    Channel(i32),
    Status(i32),
    Country(String),
    Reference(String),
    Counterparty(u64),
    CreatedAt(i64),
}

impl Mutation {
    fn apply(self, e: &mut BankingEvent) {
        match self {
            Mutation::Id(v) => e.event_id = v,
            Mutation::Type(v) => e.event_type = v,
            Mutation::Account(v) => e.account_id = v,
            Mutation::Amount(v) => e.amount_minor = v,
            Mutation::Currency(v) => e.currency = v,
            Mutation::Channel(v) => e.channel = v,
            Mutation::Status(v) => e.status = v,
            Mutation::Country(v) => e.country = v,
            Mutation::Reference(v) => e.transaction_ref = v,
            Mutation::Counterparty(v) => e.counterparty_account_id = v,
            Mutation::CreatedAt(v) => e.created_at_us = v,
        }
    }
}

/// A message's value: a valid event, a mutated one, an event's encoding
/// with bytes flipped or cut, or anything at all; or no value.
fn payload() -> impl Strategy<Value = Option<Vec<u8>>> {
    let encoded = prop_oneof![
        2 => valid_event(1..=1_000_000, 3, &["EUR", "GBP", "USD"]),
        3 => mutated_event(),
    ]
    .prop_map(|e| e.encode_to_vec());
    prop_oneof![
        4 => encoded.clone().prop_map(Some),
        2 => (encoded, any::<prop::sample::Index>(), any::<u8>(), any::<bool>()).prop_map(
            |(mut bytes, at, byte, cut)| {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    if cut {
                        bytes.truncate(i);
                    } else {
                        bytes[i] ^= byte | 1;
                    }
                }
                Some(bytes)
            }
        ),
        2 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Some),
        1 => Just(None),
    ]
}

fn message(
    payload: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    partition: i32,
    offset: i64,
) -> OwnedMessage {
    OwnedMessage::new(
        payload,
        key,
        TOPIC.into(),
        Timestamp::NotAvailable,
        partition,
        offset,
        None,
    )
}

/// A scratch directory for a case's database: in memory (`/dev/shm`) where
/// there is one, as a case's few commits are mostly fsync otherwise.
fn scratch() -> Result<tempfile::TempDir, TestCaseError> {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.map_err(|e| TestCaseError::fail(e.to_string()))
}

// --- 1. decode ----------------------------------------------------------------------

fn check_decoded(
    payload: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    partition: i32,
    offset: i64,
) -> TestCaseResult {
    let decoded = Decoded::from_message(&message(payload.clone(), key.clone(), partition, offset));
    match decoded {
        Decoded::Event(e) => {
            prop_assert_eq!((e.partition, e.offset), (partition, offset));
            prop_assert_eq!(
                Some(&e.payload),
                payload.as_ref(),
                "the row keeps the exact bytes"
            );
            prop_assert!(proto::validate(&e.event).is_ok(), "stored events are valid");
            prop_assert_eq!(
                BankingEvent::decode(e.payload.as_slice()).ok(),
                Some(e.event)
            );
        }
        Decoded::DeadLetter(d) => {
            prop_assert_eq!((d.partition, d.offset), (partition, offset));
            prop_assert_eq!(d.key, key);
            prop_assert_eq!(&d.payload, &payload);
            prop_assert!(!d.error.is_empty());
            if let Some(bytes) = d.payload {
                let refused = proto::decode_event(&bytes);
                prop_assert!(refused.is_err(), "a dead letter the decoder accepts");
                prop_assert_eq!(refused.unwrap_err().to_string(), d.error);
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_decode_never_panics_and_sorts_every_message() {
    fuzz(
        "decode",
        256,
        (
            payload(),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
            any::<i32>(),
            any::<i64>(),
        ),
        |(payload, key, partition, offset)| check_decoded(payload, key, partition, offset),
    );
}

// --- 2. decode -> validate -> store rows ------------------------------------------

/// `EVENT_TYPE_DEPOSIT` -> `DEPOSIT`: the store's names, derived here from
/// the protobuf's own.
fn short_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_string()
}

fn check_rows(payloads: Vec<Option<Vec<u8>>>, partition: i32) -> TestCaseResult {
    let dir = scratch()?;
    // Keeping the events' bytes, so that they can be checked too.
    let keep = store::StoreOptions {
        keep_event_payloads: true,
        ..Default::default()
    };
    let mut store = Store::open_with(&dir.path().join("fuzz.db"), &keep).expect("open the store");
    let mut batch = Batch::new(TOPIC);
    let mut expected_rows: BTreeMap<u64, (BankingEvent, i64, Vec<u8>)> = BTreeMap::new();
    let mut expected_dead: Vec<(i64, Option<Vec<u8>>)> = Vec::new();
    for (offset, payload) in payloads.iter().enumerate() {
        let offset = offset as i64;
        let decoded = Decoded::from_message(&message(
            payload.clone(),
            Some(b"k".to_vec()),
            partition,
            offset,
        ));
        match &decoded {
            Decoded::Event(e) if !expected_rows.contains_key(&e.event.event_id) => {
                expected_rows.insert(
                    e.event.event_id,
                    (e.event.clone(), offset, e.payload.clone()),
                );
            }
            // A repeated id is refused by the store, as a dead letter.
            _ => expected_dead.push((offset, payload.clone())),
        }
        decoded.push_into(&mut batch);
    }
    let outcome = store
        .commit(&batch)
        .expect("a batch of any messages commits");
    prop_assert_eq!(outcome.events_stored, expected_rows.len());
    prop_assert_eq!(outcome.dead_letters, expected_dead.len());
    prop_assert_eq!(outcome.redelivered, 0);

    let stored = store.stored_offsets(TOPIC).expect("offsets");
    prop_assert_eq!(stored.get(&partition).copied(), Some(payloads.len() as i64));

    let mut rows = 0;
    let accounts: HashSet<u64> = expected_rows.values().map(|(e, ..)| e.account_id).collect();
    for account in accounts {
        for row in store.latest_events(account, usize::MAX).expect("rows") {
            rows += 1;
            let Some((e, offset, bytes)) = expected_rows.get(&row.event_id) else {
                return Err(TestCaseError::fail(format!("unexpected row {row:?}")));
            };
            let event_type = EventType::try_from(e.event_type).expect("valid");
            let channel = Channel::try_from(e.channel).expect("valid");
            let status = Status::try_from(e.status).expect("valid");
            prop_assert_eq!(
                row.event_type,
                short_name(event_type.as_str_name(), "EVENT_TYPE_")
            );
            prop_assert_eq!(row.channel, short_name(channel.as_str_name(), "CHANNEL_"));
            prop_assert_eq!(row.status, short_name(status.as_str_name(), "STATUS_"));
            prop_assert_eq!(row.account_id, e.account_id);
            prop_assert_eq!(row.amount_minor, e.amount_minor);
            prop_assert_eq!(&row.currency, &e.currency);
            prop_assert_eq!(&row.country, &e.country);
            prop_assert_eq!(&row.transaction_ref, &e.transaction_ref);
            prop_assert_eq!(
                row.counterparty_account_id,
                (e.counterparty_account_id != 0).then_some(e.counterparty_account_id)
            );
            prop_assert_eq!(row.created_at_us, e.created_at_us);
            prop_assert_eq!(
                (row.kafka_partition, row.kafka_offset),
                (partition, *offset)
            );
            prop_assert_eq!(row.payload.as_deref(), Some(bytes.as_slice()));
        }
    }
    prop_assert_eq!(rows, expected_rows.len());

    let dead = store.dead_letters().expect("dead letters");
    let mut got: Vec<(i64, Option<Vec<u8>>)> = dead
        .into_iter()
        .map(|d| {
            assert_eq!((d.topic.as_str(), d.partition), (TOPIC, partition));
            assert!(!d.error.is_empty());
            (d.offset, d.payload)
        })
        .collect();
    got.sort_by_key(|(o, _)| *o);
    prop_assert_eq!(got, expected_dead);
    Ok(())
}

#[test]
fn fuzz_decoded_messages_become_exactly_their_rows() {
    fuzz(
        "rows",
        32,
        (prop::collection::vec(payload(), 1..24), 0..8i32),
        |(payloads, partition)| check_rows(payloads, partition),
    );
}

// --- 3. the balance rule ---------------------------------------------------------

/// docs/store.md's rule, written independently of the store and of
/// `BankingEvent::balance_changes`: only COMPLETED events move money; a
/// deposit credits the account; a card transaction, withdrawal, payment or
/// fee debits it; a transfer debits the account and credits the
/// counterparty, in the event's currency. Returns (account, currency) ->
/// (balance, changes).
fn model_balances(events: &[BankingEvent]) -> BTreeMap<(u64, String), (i64, u64)> {
    let mut seen = HashSet::new();
    let mut balances: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
    let mut apply = |account: u64, currency: &str, delta: i64| {
        let slot = balances.entry((account, currency.to_string())).or_default();
        slot.0 += delta;
        slot.1 += 1;
    };
    for e in events {
        // A repeated id is a dead letter: it moves no money.
        if !seen.insert(e.event_id) || e.status != Status::Completed as i32 {
            continue;
        }
        let amount = e.amount_minor;
        match EventType::try_from(e.event_type).expect("valid events only") {
            EventType::Deposit => apply(e.account_id, &e.currency, amount),
            EventType::Transaction
            | EventType::Withdrawal
            | EventType::Payment
            | EventType::Fee => apply(e.account_id, &e.currency, -amount),
            EventType::Transfer => {
                apply(e.account_id, &e.currency, -amount);
                apply(e.counterparty_account_id, &e.currency, amount);
            }
            EventType::Unspecified => unreachable!("not valid"),
        }
    }
    balances
}

/// Commits `events` (offsets 0.. on partition 0) in batches cut at `cuts`,
/// each batch after the first also delivered again before the next one
/// when `redeliver` says so, and compares every balance with the model.
fn check_balances(
    events: Vec<BankingEvent>,
    cuts: Vec<prop::sample::Index>,
    redeliver: Vec<bool>,
) -> TestCaseResult {
    let dir = scratch()?;
    let mut store = Store::open(&dir.path().join("balances.db")).expect("open the store");
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(events.len() + 1)).collect();
    bounds.push(0);
    bounds.push(events.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut previous: Option<Batch> = None;
    for (n, w) in bounds.windows(2).enumerate() {
        let mut batch = Batch::new(TOPIC);
        for (i, e) in events.iter().enumerate().take(w[1]).skip(w[0]) {
            batch.push_event(0, i as i64, e.clone(), e.encode_to_vec());
        }
        store.commit(&batch).expect("valid events commit");
        if let Some(old) = &previous
            && redeliver.get(n).copied().unwrap_or(false)
        {
            let again = store.commit(old).expect("a redelivered batch commits");
            prop_assert_eq!(again.events_stored, 0);
            prop_assert_eq!(again.redelivered, old.len());
        }
        previous = Some(batch);
    }
    let got: BTreeMap<(u64, String), (i64, u64)> = store
        .balances()
        .expect("balances")
        .into_iter()
        .map(|b| ((b.account_id, b.currency), (b.balance_minor, b.event_count)))
        .collect();
    prop_assert_eq!(got, model_balances(&events));
    Ok(())
}

#[test]
fn fuzz_balances_follow_the_rule() {
    fuzz(
        "balances",
        48,
        (
            // Ids from a small range: repeats happen.
            prop::collection::vec(valid_event(1..=60, 4, &["EUR", "GBP"]), 1..40),
            prop::collection::vec(any::<prop::sample::Index>(), 0..4),
            prop::collection::vec(any::<bool>(), 0..5),
        ),
        |(events, cuts, redeliver)| check_balances(events, cuts, redeliver),
    );
}

/// The model itself, on a case worked by hand, so that a wrong model cannot
/// agree with a wrong store.
#[test]
fn the_balance_model_matches_a_worked_example() {
    let e = |id, t: EventType, account, amount, status: Status, other| BankingEvent {
        event_id: id,
        event_type: t as i32,
        account_id: account,
        amount_minor: amount,
        currency: "EUR".into(),
        status: status as i32,
        counterparty_account_id: other,
        ..Default::default()
    };
    let a = FIRST_ACCOUNT;
    let b = a + 1;
    let events = [
        e(1, EventType::Deposit, a, 1_000, Status::Completed, 0),
        e(2, EventType::Transfer, a, 300, Status::Completed, b),
        e(3, EventType::Fee, a, 5, Status::Completed, 0),
        e(4, EventType::Withdrawal, a, 100, Status::Pending, 0),
        e(5, EventType::Payment, b, 50, Status::Declined, 0),
        e(1, EventType::Deposit, a, 1_000, Status::Completed, 0),
    ];
    let got = model_balances(&events);
    assert_eq!(got[&(a, "EUR".to_string())], (695, 3));
    assert_eq!(got[&(b, "EUR".to_string())], (300, 1));
    assert_eq!(got.len(), 2);
}
