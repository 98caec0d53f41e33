//! `offset-gaps` (chaos/README.md): the log start moved past the stored
//! offset, and a hand-over. A broker answering from a later offset than
//! asked is refused by the store (its tests, `offsets.rs`).

use std::path::Path;

use anyhow::{Result, bail};
use store::{OffsetGap, Store};
use testkit::clients::delete_records;
use testkit::verify::row_count;
use testkit::{ConsumerStats, Expected, verify_all};

use super::{At, Case, Filled, cases, check, refused, sub};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::OffsetGaps;

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let all: [(&str, Case); 2] = [
        ("log_start_moved", log_start_moved),
        ("hand_over", hand_over),
    ];
    cases(cfg, SC, &all)
}

fn gaps(db: &Path) -> Result<Vec<OffsetGap>> {
    Ok(Store::open(db)?.offset_gaps()?)
}

/// One partition of `n` events; the consumer stores a third, the broker
/// deletes up to two thirds, the consumer must refuse to go on, then go on
/// with `--accept-data-loss`. Returns the figures.
fn log_start_moved(At { cfg, model, dir }: At, problems: &mut Vec<String>) -> Result<String> {
    let n = cfg.events.clamp(3, 30_000);
    let (first_part, deleted_to) = (n / 3, 2 * n / 3);
    let filled = Filled::new(cfg, dir, "log-start", 1, n)?;
    let cmd = filled.consumer(cfg, SC, model);
    let first_arg = first_part.to_string();
    let _: ConsumerStats = cmd
        .spawn(&cfg.bins, 0, &["--max-events", &first_arg])?
        .wait_success()?;
    let stored = row_count(&cmd.db);
    check(problems, stored == first_part, || {
        format!("the first run stored {stored}, not {first_part}")
    });

    let (brokers, topic) = (filled.kafka.bootstrap(), &filled.topic);
    delete_records(brokers, topic, 0, deleted_to as i64)?;
    let lost = deleted_to - first_part;

    // Without the flag: a clear error, nothing stored past the gap.
    let named = format!("{lost} event(s) were deleted before they were read");
    let needles = [named.as_str(), "partition 0", "--accept-data-loss"];
    let what = "the restart after the deletion";
    let refusal = refused(cfg, &cmd, 1, &needles, what, problems)?;

    // With it: the gap recorded, the rest stored.
    let stats: ConsumerStats = cmd
        .spawn(&cfg.bins, 2, &["--accept-data-loss"])?
        .wait_success()?;
    let recorded = gaps(&cmd.db)?;
    let want = (0, first_part as i64, deleted_to as i64, "log-start-moved");
    let got: Vec<_> = recorded
        .iter()
        .map(|g| (g.partition, g.from_offset, g.to_offset, g.reason.as_str()))
        .collect();
    check(problems, got == [want], || {
        format!("offset_gaps holds {got:?}, not [{want:?}]")
    });
    check(problems, stats.offset_gaps == 1, || {
        format!("stats: {} offset gaps, not 1", stats.offset_gaps)
    });
    // Ids follow offsets on one partition: the deleted ones are the middle.
    let all = Expected::of(cfg.seed, cfg.accounts, n);
    let kept: Vec<_> = all
        .events
        .into_iter()
        .enumerate()
        .filter(|(i, _)| (*i as u64) < first_part || (*i as u64) >= deleted_to)
        .map(|(_, e)| e)
        .collect();
    let expected = Expected::from_events(kept);
    let f = verify_all(&[&cmd.db], &expected, 0)?;
    check(problems, f.exact(), || {
        format!("after --accept-data-loss: {}", f.brief())
    });
    Ok(format!(
        "stored {stored}, deleted {lost}, refused {} then stored {} more, gaps {}",
        refusal,
        stats.events_committed,
        recorded.len()
    ))
}

/// Instance A drains the topic; instance B of the same group starts later
/// with a new database: it records the hand-over, then stores only what
/// is produced afterwards.
fn hand_over(At { cfg, model, dir }: At, problems: &mut Vec<String>) -> Result<String> {
    let n = cfg.events.clamp(2, 20_000);
    let more = (n / 4).max(1);
    let filled = Filled::new(cfg, dir, "hand-over", cfg.partitions, n)?;
    let a = filled.consumer(cfg, SC, model);
    let _: ConsumerStats = a.spawn(&cfg.bins, 0, &[])?.wait_success()?;
    let mut b = a.clone();
    // One of several instances of the group: without it the new database
    // would be refused (a mistyped --db; see start-positions).
    b.extra.push("--scale-out".into());
    b.dir = sub(&filled.dir, "b")?;
    b.db = b.dir.join(format!("{}.db", model.name()));
    let first: ConsumerStats = b.spawn(&cfg.bins, 0, &[])?.wait_success()?;
    let expected = filled.more(cfg, more)?;
    let second: ConsumerStats = b.spawn(&cfg.bins, 1, &[])?.wait_success()?;

    check(problems, first.events_committed == 0, || {
        format!(
            "the second instance stored {} events already stored by the first",
            first.events_committed
        )
    });
    check(problems, second.events_committed == more, || {
        format!(
            "the second instance stored {} new events, not {more}",
            second.events_committed
        )
    });
    let recorded = gaps(&b.db)?;
    let a_store = Store::open(&a.db)?;
    let a_offsets = a_store.stored_offsets(&filled.topic)?;
    let a_id = a_store.database_id().to_string();
    let as_expected = recorded.len() == a_offsets.len()
        && recorded.iter().all(|g| {
            g.reason == "hand-over"
                && g.from_offset == 0
                && a_offsets.get(&g.partition) == Some(&g.to_offset)
                && g.source_database.as_deref() == Some(a_id.as_str())
        });
    check(problems, as_expected, || {
        format!(
            "B's offset_gaps {recorded:?} are not A's ranges {a_offsets:?} as hand-overs from A's database {a_id}"
        )
    });
    check(problems, gaps(&a.db)?.is_empty(), || {
        "the first instance recorded a gap".into()
    });
    let f = verify_all(&[&a.db, &b.db], &expected, 0)?;
    check(problems, f.exact(), || {
        format!("the two databases together: {}", f.brief())
    });
    let (events, total) = (f.events, n + more);
    if events != total {
        bail!("the two databases hold {events} events, not {total}");
    }
    Ok(format!(
        "a {n}, b {} after the hand-over, gaps {}, {}",
        second.events_committed,
        recorded.len(),
        f.brief()
    ))
}
