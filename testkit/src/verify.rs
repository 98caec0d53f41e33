//! What "correct" means, once for every test and scenario: the databases
//! of a group hold every produced event once, with the balances and totals
//! of [`Expected`] (computed from the generator with this module's own
//! balance rule, not the store's), every bad message in `dead_letters` and
//! nothing else there, and offsets that cover exactly the rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use producer::Generator;
use proto::{BankingEvent, EventType, IdChecksum, Status, decode_event};
use rusqlite::{Connection, OpenFlags};
use store::{GapReason, Store};

mod totals;
pub use totals::{Check, check_producer, totals, verdict};

/// What the databases must hold after storing a set of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub ids: HashSet<u64>,
    pub amount_minor_sum: i128,
    pub id_checksum: IdChecksum,
    /// (account, currency) -> (balance in minor units, number of changes).
    pub balances: BTreeMap<(u64, String), (i64, u64)>,
    pub events: Vec<BankingEvent>,
}

impl Expected {
    /// One producer run: `count` events of `seed`, ids from 1.
    pub fn of(seed: u64, accounts: u64, count: u64) -> Expected {
        Expected::of_runs(seed, accounts, &[(1, count)])
    }

    /// Several producer runs of `seed`, each `(first id, count)`.
    pub fn of_runs(seed: u64, accounts: u64, runs: &[(u64, u64)]) -> Expected {
        let mut events = Vec::new();
        for &(first_id, count) in runs {
            let mut g = Generator::new(seed, accounts, first_id).expect("valid generator");
            events.extend((0..count).map(|_| g.next_event(0)));
        }
        Expected::from_events(events)
    }

    /// The README's balance rule, written out again on purpose: the store's
    /// code is not checked against itself.
    pub fn from_events(events: Vec<BankingEvent>) -> Expected {
        let mut balances: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
        let mut apply = |account: u64, currency: &str, delta: i64| {
            let slot = balances.entry((account, currency.to_owned())).or_default();
            slot.0 += delta;
            slot.1 += 1;
        };
        for e in &events {
            if e.status != Status::Completed as i32 {
                continue;
            }
            let a = e.amount_minor;
            match EventType::try_from(e.event_type).expect("generated type") {
                EventType::Deposit => apply(e.account_id, &e.currency, a),
                EventType::Transfer => {
                    apply(e.account_id, &e.currency, -a);
                    apply(e.counterparty_account_id, &e.currency, a);
                }
                EventType::Transaction
                | EventType::Withdrawal
                | EventType::Payment
                | EventType::Fee => apply(e.account_id, &e.currency, -a),
                EventType::Unspecified => unreachable!("the generator never makes one"),
            }
        }
        Expected {
            ids: events.iter().map(|e| e.event_id).collect(),
            amount_minor_sum: events.iter().map(|e| i128::from(e.amount_minor)).sum(),
            id_checksum: events.iter().map(|e| e.event_id).collect(),
            balances,
            events,
        }
    }
}

/// What databases hold compared with what they should (chaos/README.md
/// explains each figure; `offsets_inconsistent` counts partitions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub events: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub topic_duplicates: u64,
    pub unexpected_dead_letters: u64,
    pub unexpected: u64,
    pub wrong_balances: u64,
    pub dead_letters: u64,
    pub missing_dead_letters: u64,
    pub totals_match: bool,
    pub offsets_inconsistent: u64,
}

impl Figures {
    /// Nothing lost, duplicated, invented or wrong; offsets match the rows.
    pub fn exact(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.topic_duplicates == 0
            && self.unexpected_dead_letters == 0
            && self.unexpected == 0
            && self.wrong_balances == 0
            && self.missing_dead_letters == 0
            && self.offsets_inconsistent == 0
            && self.totals_match
    }

    /// `lost 0 duplicated 0 wrong_balances 0` (and the rarer ones when not 0).
    pub fn brief(&self) -> String {
        let mut s = format!(
            "lost {} duplicated {} wrong_balances {}",
            self.lost, self.duplicated, self.wrong_balances
        );
        let rare = [
            ("unexpected_rows", self.unexpected),
            ("topic_duplicates", self.topic_duplicates),
            ("unexpected_dead_letters", self.unexpected_dead_letters),
            ("missing_dead_letters", self.missing_dead_letters),
            ("offsets_inconsistent_partitions", self.offsets_inconsistent),
        ];
        for (name, n) in rare {
            if n > 0 {
                s.push_str(&format!(" {name} {n}"));
            }
        }
        if !self.totals_match {
            s.push_str(" totals_mismatch");
        }
        s
    }
}

/// [`verify_all`] of one database.
pub fn verify(db: &Path, expected: &Expected, bad_sent: u64) -> Result<Figures> {
    verify_all(&[db], expected, bad_sent)
}

/// Compares the databases of one group with `expected`; `bad_sent` bad
/// messages were sent besides, each of which must be a dead letter.
pub fn verify_all(dbs: &[&Path], expected: &Expected, bad_sent: u64) -> Result<Figures> {
    let mut rows: Vec<(u64, i32, i64)> = Vec::new();
    let mut dead = Vec::new();
    let mut amount_minor_sum = 0i128;
    let mut balances: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
    let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    // Partition -> the offset of every message stored from it.
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for db in dbs {
        let store = Store::open(db).with_context(|| format!("open {}", db.display()))?;
        amount_minor_sum += store.summary()?.amount_minor_sum;
        for b in store.balances()? {
            let slot = balances.entry((b.account_id, b.currency)).or_default();
            slot.0 += b.balance_minor;
            slot.1 += b.event_count;
        }
        dead.extend(store.dead_letters()?);
        rows.extend(stored_rows(db)?);
        for (p, next) in stored_offsets(db)? {
            let slot = next_offsets.entry(p).or_insert(next);
            *slot = (*slot).max(next);
        }
        // Deleted by the broker before any read, accepted: covered.
        for g in store.offset_gaps()? {
            if g.reason == GapReason::LogStartMoved.as_str() {
                let range = g.from_offset..g.to_offset;
                offsets.entry(g.partition).or_default().extend(range);
            }
        }
    }
    let stored: HashMap<u64, (i32, i64)> = rows.iter().map(|&(id, p, o)| (id, (p, o))).collect();
    let lost = expected.ids.iter().filter(|id| !stored.contains_key(id));
    let unexpected = stored.keys().filter(|id| !expected.ids.contains(id));
    let (lost, unexpected) = (lost.count() as u64, unexpected.count() as u64);
    let same_id_rows = rows.len() as u64 - stored.len() as u64;
    let (mut redelivered, mut copies) = (0u64, 0u64);
    for d in &dead {
        let Some(event) = d.payload.as_deref().and_then(|p| decode_event(p).ok()) else {
            continue;
        };
        match stored.get(&event.event_id) {
            Some(&at) if at == (d.partition, d.offset) => redelivered += 1,
            Some(_) => copies += 1,
            None => {}
        }
    }
    let dead_letters = dead.len() as u64;
    let unexplained = dead_letters.saturating_sub(bad_sent);
    let topic_duplicates = unexplained.min(copies);
    let unexpected_dead_letters = unexplained
        .saturating_sub(topic_duplicates)
        .saturating_sub(redelivered);

    // Missing, extra or different.
    let keys: HashSet<_> = expected.balances.keys().chain(balances.keys()).collect();
    let differ = |k: &&(u64, String)| expected.balances.get(*k) != balances.get(*k);
    let wrong = keys.into_iter().filter(differ).count() as u64;

    // Every message of a partition, event or dead letter, once.
    let messages = rows.iter().map(|&(_, p, o)| (p, o));
    for (p, o) in messages.chain(dead.iter().map(|d| (d.partition, d.offset))) {
        offsets.entry(p).or_default().push(o);
    }
    let partitions: HashSet<_> = offsets.keys().chain(next_offsets.keys()).collect();
    let inconsistent = |p: &&i32| {
        let mut seen = offsets.get(*p).cloned().unwrap_or_default();
        seen.sort_unstable();
        seen != (0..next_offsets.get(*p).copied().unwrap_or(0)).collect::<Vec<_>>()
    };
    let offsets_inconsistent = partitions.into_iter().filter(inconsistent).count() as u64;

    let id_checksum: IdChecksum = rows.iter().map(|&(id, _, _)| id).collect();
    Ok(Figures {
        events: rows.len() as u64,
        lost,
        duplicated: same_id_rows + redelivered,
        topic_duplicates,
        unexpected_dead_letters,
        unexpected,
        wrong_balances: wrong,
        dead_letters,
        missing_dead_letters: bad_sent.saturating_sub(dead_letters),
        totals_match: amount_minor_sum == expected.amount_minor_sum
            && id_checksum == expected.id_checksum,
        offsets_inconsistent,
    })
}

/// Every row `sql` selects from `db`, read-only (a consumer may be
/// writing), waiting up to `busy` seconds for a lock.
fn query<T>(
    db: &Path,
    busy: u64,
    sql: &str,
    row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(db, flags).with_context(|| format!("open {}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(busy))?;
    let rows = conn
        .prepare(sql)?
        .query_map([], row)?
        .collect::<rusqlite::Result<_>>();
    Ok(rows?)
}

/// (event id, partition, offset) of every stored event.
fn stored_rows(db: &Path) -> Result<Vec<(u64, i32, i64)>> {
    let sql = "SELECT event_id, kafka_partition, kafka_offset FROM events";
    query(db, 30, sql, |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
    })
}

/// The stored offsets of `db`, partition -> next offset (empty while there
/// is no database).
pub fn stored_offsets(db: &Path) -> Result<BTreeMap<i32, i64>> {
    if !db.exists() {
        return Ok(BTreeMap::new());
    }
    let sql = "SELECT \"partition\", next_offset FROM offsets";
    Ok(query(db, 30, sql, |r| Ok((r.get(0)?, r.get(1)?)))?
        .into_iter()
        .collect())
}

/// Messages (events and dead letters) committed: the sum of the stored
/// next offsets; 0 while there is no database.
pub fn committed_messages(db: &Path) -> u64 {
    count_now(db, "SELECT coalesce(sum(next_offset), 0) FROM offsets")
}

/// Rows in `events` right now (0 while there is no database).
pub fn row_count(db: &Path) -> u64 {
    count_now(db, "SELECT count(*) FROM events")
}

fn count_now(db: &Path, sql: &str) -> u64 {
    let rows = db
        .exists()
        .then(|| query(db, 5, sql, |r| r.get::<_, i64>(0)));
    rows.and_then(|r| r.ok()?.first().copied()).unwrap_or(0) as u64
}

pub fn stored_ids(db: &Path) -> Result<HashSet<u64>> {
    Ok(stored_rows(db)?.into_iter().map(|(id, _, _)| id).collect())
}

/// `(partition, created_at_us, committed_at_us)` of every stored event.
pub fn commit_timeline(db: &Path) -> Result<Vec<(i32, i64, i64)>> {
    let sql = "SELECT kafka_partition, created_at_us, committed_at_us FROM events";
    query(db, 30, sql, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
}

/// How long the flow stopped because of a fault at `at_us`: the longest
/// pause between two commits of a partition that ends after `at_us` and
/// starts before `at_us + window_us` (a partition whose leader died pauses,
/// the others may not). `None` when no commit follows `at_us`.
pub fn longest_pause_after(
    timeline: &[(i32, i64, i64)],
    at_us: i64,
    window_us: i64,
) -> Option<i64> {
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for &(p, _, committed) in timeline {
        per_partition.entry(p).or_default().push(committed);
    }
    let end = at_us + window_us;
    let pauses = per_partition.into_values().flat_map(|mut times| {
        times.sort_unstable();
        times.dedup();
        // A partition with no commit before the fault waits from it on.
        if times[0] > at_us && times[0] < end {
            times.insert(0, at_us);
        }
        let w = times.windows(2).filter(|w| w[1] > at_us && w[0] < end);
        w.map(|w| w[1] - w[0].max(at_us)).collect::<Vec<_>>()
    });
    pauses.max()
}

/// p50 and p99 of the latency (µs) of the events created between `from_us`
/// and `to_us`, and how many; `None` when there were none.
pub fn latency_between(
    timeline: &[(i32, i64, i64)],
    from_us: i64,
    to_us: i64,
) -> Option<(i64, i64, usize)> {
    let mut lat: Vec<i64> = timeline
        .iter()
        .filter(|&&(_, created, _)| created >= from_us && created < to_us)
        .map(|&(_, created, committed)| committed - created)
        .collect();
    if lat.is_empty() {
        return None;
    }
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
    Some((at(0.50), at(0.99), lat.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use store::Batch;

    const TOPIC: &str = "t";

    /// Event `i` of `expected` as a consumer would store it (the
    /// generator's events in `Expected` carry no timestamp).
    fn push(batch: &mut Batch, expected: &Expected, i: usize, partition: i32, offset: i64) {
        let mut e = expected.events[i].clone();
        e.created_at_us = 1_790_000_000_000_000;
        let bytes = e.encode_to_vec();
        batch.push_event(partition, offset, e, bytes);
    }

    /// A database holding `expected`'s events, round-robin over 3
    /// partitions from offset 0, as a consumer would have stored them.
    fn stored(dir: &Path, expected: &Expected) -> std::path::PathBuf {
        let db = dir.join("c.db");
        // Keeping the events' bytes: the tests copy them into dead letters,
        // as a consumer records a message read again.
        let keep = store::StoreOptions {
            keep_event_payloads: true,
            ..Default::default()
        };
        let mut store = Store::open_with(&db, &keep).unwrap();
        let mut batch = Batch::new(TOPIC);
        for i in 0..expected.events.len() {
            push(&mut batch, expected, i, (i % 3) as i32, (i / 3) as i64);
        }
        store.commit(&batch).unwrap();
        db
    }

    fn sql(db: &Path, statement: &str) {
        Connection::open(db)
            .unwrap()
            .execute(statement, [])
            .unwrap();
    }

    #[test]
    fn an_exact_database_passes_and_each_fault_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Expected::of(7, 50, 999);
        let db = stored(dir.path(), &expected);
        let f = verify(&db, &expected, 0).unwrap();
        assert!(f.exact() && f.events == 999, "{f:?}");

        // One event deleted: lost, totals off, and a gap in its
        // partition's offsets.
        sql(&db, "DELETE FROM events WHERE event_id = 777");
        let f = verify(&db, &expected, 0).unwrap();
        assert_eq!((f.lost, f.offsets_inconsistent), (1, 1), "{f:?}");
        assert!(!f.totals_match && !f.exact(), "{f:?}");
        // A balance one minor unit off.
        sql(
            &db,
            "UPDATE account_balances SET balance_minor = balance_minor + 1 \
             WHERE account_id = (SELECT min(account_id) FROM account_balances)",
        );
        assert_eq!(verify(&db, &expected, 0).unwrap().wrong_balances, 1);
    }

    #[test]
    fn redeliveries_are_duplicates_and_upstream_copies_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Expected::of(7, 50, 300);
        let db = stored(dir.path(), &expected);
        // A stored event read again from its own partition and offset (a
        // redelivery: the store refuses it as a duplicate id).
        sql(
            &db,
            "INSERT INTO dead_letters (topic, \"partition\", \"offset\", key, payload, error, recorded_at_us) \
             SELECT 't', kafka_partition, kafka_offset, NULL, payload, 'dup', 0 \
             FROM events WHERE event_id = 78",
        );
        let f = verify(&db, &expected, 0).unwrap();
        assert_eq!((f.duplicated, f.topic_duplicates), (1, 0), "{f:?}");
        assert_eq!(f.offsets_inconsistent, 1, "an offset stored twice");
        // The same event at another offset: written twice upstream.
        sql(
            &db,
            "UPDATE dead_letters SET \"offset\" = 100 WHERE error = 'dup'",
        );
        sql(
            &db,
            "UPDATE offsets SET next_offset = 101 WHERE \"partition\" = \
             (SELECT \"partition\" FROM dead_letters WHERE error = 'dup')",
        );
        let f = verify(&db, &expected, 0).unwrap();
        assert_eq!((f.duplicated, f.topic_duplicates), (0, 1), "{f:?}");
        assert!(!f.exact());
        // Sent on purpose (one bad message): exact.
        let f = verify(&db, &expected, 1).unwrap();
        assert!(f.exact(), "{f:?}");
    }

    #[test]
    fn two_databases_of_one_group_are_checked_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let expected = Expected::of(7, 50, 300);
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        // Partition 0 read by a up to offset 40, then by b; the others by a.
        let (mut sa, mut sb) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
        let (mut ba, mut bb) = (Batch::new(TOPIC), Batch::new(TOPIC));
        for i in 0..expected.events.len() {
            let (p, o) = ((i % 3) as i32, (i / 3) as i64);
            let batch = if p == 0 && o >= 40 { &mut bb } else { &mut ba };
            push(batch, &expected, i, p, o);
        }
        sa.commit(&ba).unwrap();
        // b takes partition 0 over at 40: a hand-over from a, recorded as
        // the store requires before a partition's first batch past 0.
        let from_a = sa.database_id().to_string();
        sb.record_gap_from(TOPIC, 0, 0, 40, GapReason::HandOver, Some(&from_a))
            .unwrap();
        sb.commit(&bb).unwrap();
        let f = verify_all(&[&a, &b], &expected, 0).unwrap();
        assert!(f.exact() && f.events == 300, "{f:?}");
        // One of b's events in a as well: duplicated. (a takes partition 0
        // back from the group's offset 50, recording the hand-over, then
        // stores offset 50, which b had stored: what a crash before b's
        // offsets reached Kafka leads to.)
        sa.record_gap(TOPIC, 0, 40, 50, GapReason::HandOver)
            .unwrap();
        let mut again = Batch::new(TOPIC);
        push(&mut again, &expected, 150, 0, 50);
        sa.commit(&again).unwrap();
        let f = verify_all(&[&a, &b], &expected, 0).unwrap();
        assert_eq!(f.duplicated, 1, "{f:?}");
        assert!(!f.exact());
    }

    #[test]
    fn the_pause_after_a_fault_is_the_longest_gap_of_any_partition() {
        // Partition 0 flows on; partition 1 stops at 100 and resumes at 900.
        let t = vec![
            (0, 0, 50),
            (0, 0, 150),
            (0, 0, 250),
            (1, 0, 90),
            (1, 0, 900),
            (1, 0, 950),
        ];
        assert_eq!(longest_pause_after(&t, 120, 1_000), Some(780));
        assert_eq!(longest_pause_after(&t, 2_000, 1_000), None, "nothing after");
        // A partition first seen after the fault waits from the fault on.
        let late = vec![(0, 0, 50), (2, 0, 700)];
        assert_eq!(longest_pause_after(&late, 100, 1_000), Some(600));
    }

    #[test]
    fn latency_percentiles_cover_only_the_window() {
        let mut t: Vec<(i32, i64, i64)> = (0..100).map(|i| (0, i, i + 10)).collect();
        t.push((0, 50, 5_050)); // one slow event inside the window
        t.push((0, 500, 99_999)); // outside
        let (p50, p99, n) = latency_between(&t, 0, 100).unwrap();
        assert_eq!(n, 101);
        assert_eq!(p50, 10);
        assert_eq!(p99, 10, "1 slow event of 101 is beyond the 99th percentile");
        assert_eq!(latency_between(&t, 1_000, 2_000), None);
    }
}
