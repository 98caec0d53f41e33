//! Checking a consumer's database against the events that were produced,
//! with totals computed independently of the store's code
//! ([`banking_testkit::Expected`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use banking_proto::decode_event;
use banking_store::Store;
use banking_testkit::Expected;

/// What a database holds compared with what it should.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Rows in `events`.
    pub events: u64,
    /// Produced events that are not in `events`.
    pub lost: u64,
    /// Events the consumer stored or read more than once: rows sharing an
    /// id, plus dead letters holding an event read again from the very
    /// partition and offset it was stored from (a redelivery the stored
    /// offsets should have prevented; the store refuses the copy as a
    /// duplicate id).
    pub duplicated: u64,
    /// Copies of stored events that were in the topic twice, at another
    /// offset (written twice upstream: producer retries the broker did not
    /// deduplicate), beyond the duplicates sent on purpose. Refused by the
    /// store as duplicate ids, so the database stays exact; reported, not
    /// a failure of the consumer.
    pub topic_duplicates: u64,
    /// Dead letters that are neither bad messages sent on purpose nor
    /// duplicates.
    pub unexpected_dead_letters: u64,
    /// Rows whose id was never produced as a good event (a bad message
    /// taken for a good one).
    pub unexpected: u64,
    /// Balances (account, currency) whose amount or event count differ from
    /// the independently computed ones, or that are missing or extra.
    pub wrong_balances: u64,
    /// Rows in `dead_letters`.
    pub dead_letters: u64,
    /// Bad messages that are not in `dead_letters`.
    pub missing_dead_letters: u64,
    /// The amount sum and id checksum match the expected ones.
    pub totals_match: bool,
}

impl Figures {
    /// Nothing lost, duplicated, invented or wrong.
    pub fn exact(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.unexpected_dead_letters == 0
            && self.unexpected == 0
            && self.wrong_balances == 0
            && self.missing_dead_letters == 0
            && self.totals_match
    }

    /// `lost 0 duplicated 0 wrong_balances 0` (and the rarer ones when not 0).
    pub fn brief(&self) -> String {
        let mut s = format!(
            "lost {} duplicated {} wrong_balances {}",
            self.lost, self.duplicated, self.wrong_balances
        );
        if self.unexpected > 0 {
            s.push_str(&format!(" unexpected_rows {}", self.unexpected));
        }
        if self.topic_duplicates > 0 {
            s.push_str(&format!(
                " topic_duplicates {} (refused by the store)",
                self.topic_duplicates
            ));
        }
        if self.unexpected_dead_letters > 0 {
            s.push_str(&format!(
                " unexpected_dead_letters {}",
                self.unexpected_dead_letters
            ));
        }
        if self.missing_dead_letters > 0 {
            s.push_str(&format!(
                " missing_dead_letters {}",
                self.missing_dead_letters
            ));
        }
        if !self.totals_match {
            s.push_str(" totals_mismatch");
        }
        s
    }
}

/// Compares `db` with `expected`; `bad_sent` bad messages were sent besides
/// the good events, each of which must be a dead letter.
pub fn verify(db: &Path, expected: &Expected, bad_sent: u64) -> Result<Figures> {
    let store = Store::open(db).with_context(|| format!("open {}", db.display()))?;
    let summary = store.summary()?;
    let rows = stored_rows(db)?;
    let stored: HashMap<u64, (i32, i64)> = rows.iter().map(|&(id, p, o)| (id, (p, o))).collect();
    let lost = expected
        .ids
        .iter()
        .filter(|id| !stored.contains_key(id))
        .count() as u64;
    let unexpected = stored
        .keys()
        .filter(|id| !expected.ids.contains(id))
        .count() as u64;
    let same_id_rows = rows.len() as u64 - stored.len() as u64;
    let dead = summary.dead_letters;
    let (mut redelivered, mut copies) = (0u64, 0u64);
    for d in store.dead_letters()? {
        let Some(event) = d.payload.as_deref().and_then(|p| decode_event(p).ok()) else {
            continue;
        };
        match stored.get(&event.event_id) {
            Some(&at) if at == (d.partition, d.offset) => redelivered += 1,
            Some(_) => copies += 1,
            None => {}
        }
    }
    let unexplained = dead.saturating_sub(bad_sent);
    let topic_duplicates = unexplained.min(copies);
    let unexpected_dead_letters = unexplained
        .saturating_sub(topic_duplicates)
        .saturating_sub(redelivered);
    let missing_dead_letters = bad_sent.saturating_sub(dead);

    let mut balances: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
    for b in store.balances()? {
        balances.insert((b.account_id, b.currency), (b.balance_minor, b.event_count));
    }
    let mut wrong = 0u64;
    for (k, v) in &expected.balances {
        if balances.get(k) != Some(v) {
            wrong += 1;
        }
    }
    wrong += balances
        .keys()
        .filter(|k| !expected.balances.contains_key(*k))
        .count() as u64;

    Ok(Figures {
        events: summary.events,
        lost,
        duplicated: same_id_rows + redelivered,
        topic_duplicates,
        unexpected_dead_letters,
        unexpected,
        wrong_balances: wrong,
        dead_letters: dead,
        missing_dead_letters,
        totals_match: summary.amount_minor_sum == expected.amount_minor_sum
            && summary.id_checksum == expected.id_checksum,
    })
}

/// (event id, partition, offset) of every stored event.
fn stored_rows(db: &Path) -> Result<Vec<(u64, i32, i64)>> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let mut stmt = conn.prepare("SELECT event_id, kafka_partition, kafka_offset FROM events")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i32>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Messages (events and dead letters) whose offsets the database has
/// committed: the sum of the stored next offsets. Cheap enough to poll; 0
/// while the file or the table does not exist.
pub fn committed_messages(db: &Path) -> u64 {
    if !db.exists() {
        return 0;
    }
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return 0;
    };
    let _ = conn.busy_timeout(Duration::from_secs(2));
    conn.query_row(
        "SELECT coalesce(sum(next_offset), 0) FROM offsets",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .unwrap_or(0)
}
