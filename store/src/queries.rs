//! Reading the store: totals for verification, balances, an account's
//! latest events, one event, the dead letters, and the query index.

use std::time::Instant;

use proto::{Channel, EventType, IdChecksum, Status};
use rusqlite::params;
use tracing::info;

use crate::{Balance, DeadLetterRow, EventRow, Store, StoreError, Summary, schema};

const SELECT_EVENT_COLUMNS: &str = "\
SELECT event_id, event_type, account_id, amount_minor, currency, channel, status, country, \
transaction_ref, counterparty_account_id, created_at_us, committed_at_us, kafka_partition, \
kafka_offset, payload FROM events";

impl Store {
    /// Totals over the whole database, read in one snapshot.
    ///
    /// Scans every event in table order, and counts distinct ids over the
    /// `event_id` index: seconds for ten million rows. Meant for verification after a run, not for a hot
    /// path.
    pub fn summary(&self) -> Result<Summary, StoreError> {
        self.read("summarise the store", |conn| {
            let tx = conn.unchecked_transaction()?;
            let mut events = 0u64;
            let mut sum = 0i128;
            let mut checksum = IdChecksum::default();
            {
                // Table order: no sort and no index lookups; neither the
                // sum nor the checksum depends on order.
                let mut stmt = tx.prepare_cached("SELECT event_id, amount_minor FROM events")?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let id: i64 = row.get(0)?;
                    let amount: i64 = row.get(1)?;
                    events += 1;
                    sum += i128::from(amount);
                    checksum.add(id as u64);
                }
            }
            let distinct: i64 =
                tx.query_row("SELECT count(DISTINCT event_id) FROM events", [], |r| {
                    r.get(0)
                })?;
            let distinct = distinct as u64;
            let dead_letters: i64 =
                tx.query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))?;
            let offset_gaps: i64 =
                tx.query_row("SELECT count(*) FROM offset_gaps", [], |r| r.get(0))?;
            let schema_version: i32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            tx.finish()?;
            Ok(Summary {
                events,
                distinct_event_ids: distinct,
                amount_minor_sum: sum,
                id_checksum: checksum,
                dead_letters: dead_letters as u64,
                offset_gaps: offset_gaps as u64,
                schema_version,
            })
        })
    }

    /// Every balance, ordered by account then currency (the table's own
    /// order, so no sort).
    pub fn balances(&self) -> Result<Vec<Balance>, StoreError> {
        self.read("read balances", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT account_id, currency, balance_minor, event_count FROM account_balances \
                 ORDER BY account_id, currency",
            )?;
            let rows = stmt.query_map([], balance_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The balances of one account, one per currency, ordered by currency.
    pub fn account_balances(&self, account_id: u64) -> Result<Vec<Balance>, StoreError> {
        let Ok(account) = i64::try_from(account_id) else {
            return Ok(Vec::new());
        };
        self.read("read an account's balances", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT account_id, currency, balance_minor, event_count FROM account_balances \
                 WHERE account_id = ?1 ORDER BY currency",
            )?;
            let rows = stmt.query_map([account], balance_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The `limit` newest events of an account (by creation time, then id),
    /// newest first.
    ///
    /// Without [`ensure_query_index`](Store::ensure_query_index) this scans
    /// the whole table; with it, it reads `limit` index entries.
    pub fn latest_events(
        &self,
        account_id: u64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let Ok(account) = i64::try_from(account_id) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("read an account's events", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SELECT_EVENT_COLUMNS} WHERE account_id = ?1 \
                 ORDER BY created_at_us DESC, event_id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![account, limit], event_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The stored event with id `event_id`, if any (the unique index on
    /// `event_id` finds it).
    pub fn event(&self, event_id: u64) -> Result<Option<EventRow>, StoreError> {
        let Ok(id) = i64::try_from(event_id) else {
            return Ok(None);
        };
        self.read("read an event", |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("{SELECT_EVENT_COLUMNS} WHERE event_id = ?1"))?;
            let mut rows = stmt.query_map([id], event_from_row)?;
            Ok(rows.next().transpose()?)
        })
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetterRow>, StoreError> {
        self.read("read dead letters", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT topic, \"partition\", \"offset\", key, payload, error, recorded_at_us \
                 FROM dead_letters ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DeadLetterRow {
                    topic: r.get(0)?,
                    partition: r.get(1)?,
                    offset: r.get(2)?,
                    key: r.get(3)?,
                    payload: r.get(4)?,
                    error: r.get(5)?,
                    recorded_at_us: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Builds the index that serves [`latest_events`](Store::latest_events)
    /// (`events_by_account ON events(account_id, created_at_us)`), if it is
    /// not there yet.
    ///
    /// It is not part of the schema on purpose: maintained row by row
    /// during a load it costs SQLite an order of magnitude in insert rate
    /// (docs/design.md: ~475k vs ~31k rows/s), while building it once
    /// afterwards takes seconds for ten million rows. Call it when the load
    /// is done; once it exists, later commits maintain it (and are slower).
    pub fn ensure_query_index(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        self.read("build the query index", |conn| {
            // SQLite sorts the keys in runs of about the page cache's size,
            // spilled to temporary files, then merges them. Small runs that
            // stay in the CPU's caches and plain temporary files are much
            // faster than the writer's settings (64 MiB cache, temp_store
            // MEMORY): on the 10M-event database 6.3 s with 4 MiB and
            // temp_store FILE, 15.6 s with 64 MiB, 24 s with temp_store
            // MEMORY as well. The writer's settings come back afterwards,
            // whatever happened.
            conn.execute_batch("PRAGMA cache_size = -4096; PRAGMA temp_store = FILE;")?;
            let built = conn.execute_batch(
                "CREATE INDEX IF NOT EXISTS events_by_account ON events (account_id, created_at_us)",
            );
            schema::writer_cache(conn, &self.opts)?;
            built?;
            Ok(())
        })?;
        // The new index went through the WAL: copy it into the file now
        // (on this thread if it is larger than the WAL may grow), as the
        // commits do.
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.after_commit(&self.conn);
        }
        info!(
            path = %self.path.display(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "query index events_by_account is in place"
        );
        Ok(())
    }
}

fn balance_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Balance> {
    Ok(Balance {
        account_id: r.get(0)?,
        currency: r.get(1)?,
        balance_minor: r.get(2)?,
        event_count: r.get(3)?,
    })
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        event_id: r.get(0)?,
        event_type: event_type_name(r.get(1)?).to_owned(),
        account_id: r.get(2)?,
        amount_minor: r.get(3)?,
        currency: r.get(4)?,
        channel: channel_name(r.get(5)?).to_owned(),
        status: status_name(r.get(6)?).to_owned(),
        country: r.get(7)?,
        transaction_ref: r.get(8)?,
        counterparty_account_id: r.get(9)?,
        created_at_us: r.get(10)?,
        committed_at_us: r.get(11)?,
        kafka_partition: r.get(12)?,
        kafka_offset: r.get(13)?,
        payload: r.get(14)?,
    })
}

/// The name of an event type: the protobuf name without its `EVENT_TYPE_`
/// prefix. The table stores the number; [`EventRow`] and the
/// `events_named` view show the name.
fn event_type_name(value: i32) -> &'static str {
    short_name(
        EventType::try_from(value).map(|e| e.as_str_name()),
        "EVENT_TYPE_",
    )
}

/// The name of a channel (`ATM`, ...).
fn channel_name(value: i32) -> &'static str {
    short_name(
        Channel::try_from(value).map(|c| c.as_str_name()),
        "CHANNEL_",
    )
}

/// The name of a status (`COMPLETED`, ...).
fn status_name(value: i32) -> &'static str {
    short_name(Status::try_from(value).map(|s| s.as_str_name()), "STATUS_")
}

/// A protobuf enum name without its prefix; a number the schema does not
/// know reads as `UNSPECIFIED`.
fn short_name<E>(full: Result<&'static str, E>, prefix: &str) -> &'static str {
    full.ok()
        .and_then(|n| n.strip_prefix(prefix))
        .unwrap_or("UNSPECIFIED")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored names are the protobuf names without their prefix; this
    /// ties the hand-written tables to the generated `as_str_name`.
    #[test]
    fn names_match_protobuf() {
        for v in 1..=6 {
            let t = EventType::try_from(v).unwrap();
            assert_eq!(
                Some(event_type_name(v)),
                t.as_str_name().strip_prefix("EVENT_TYPE_")
            );
        }
        for v in 1..=5 {
            let c = Channel::try_from(v).unwrap();
            assert_eq!(
                Some(channel_name(v)),
                c.as_str_name().strip_prefix("CHANNEL_")
            );
        }
        for v in 1..=3 {
            let s = Status::try_from(v).unwrap();
            assert_eq!(
                Some(status_name(v)),
                s.as_str_name().strip_prefix("STATUS_")
            );
        }
    }
}
