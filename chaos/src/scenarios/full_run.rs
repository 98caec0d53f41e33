//! No fault (chaos/README.md, `full-run`).

use anyhow::{Result, bail};
use testkit::ConsumerStats;
use testkit::verify::stored_offsets;
use testkit::{Model, group_offsets, kafka, verify};

use super::{Producing, check, consumer, exactness, while_producing};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::FullRun;

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    while_producing(cfg, SC, 0, |s, m| one(cfg, m, s))
}

fn one(cfg: &Config, model: Model, s: &Producing<'_>) -> Result<Outcome> {
    let (brokers, topic, dir, expected) =
        (s.brokers.as_str(), s.topic.as_str(), &s.dir, &s.expected);
    let produced = s.background.finished()?;
    if produced.id_checksum != expected.id_checksum.hex() {
        bail!("the producer's id checksum differs from the regenerated events'");
    }
    let n = cfg.events;
    let cmd = consumer(cfg, SC, model, brokers, topic, dir);
    let mut problems = Vec::new();
    let stats: ConsumerStats = cmd.spawn(&cfg.bins, 0, &[])?.wait_success()?;
    let f = verify(&cmd.db, expected, 0)?;
    exactness(&f, n, &mut problems);
    let committed = stats.events_committed;
    check(&mut problems, committed == n, || {
        format!("stats: events_committed {committed}, not {n}")
    });
    let dead = stats.dead_letters;
    check(&mut problems, dead == 0, || {
        format!("stats: {dead} dead letters")
    });
    let reason = stats.exit_reason.name();
    check(&mut problems, reason == "idle", || {
        format!("stats: exit_reason {reason}, not idle")
    });
    let timed = stats.latency_us.count;
    check(&mut problems, timed == n, || {
        format!("stats: {timed} latencies, not {n}")
    });
    check(&mut problems, stats.events_per_second > 0.0, || {
        "stats: no events_per_second".into()
    });
    check(
        &mut problems,
        stats.settings.librdkafka.contains_key("fetch.wait.max.ms"),
        || "stats: the librdkafka settings are not recorded".into(),
    );
    check(&mut problems, !stats.timeline.is_empty(), || {
        "stats: no timeline".into()
    });
    // After a clean exit Kafka has a copy of the final offsets.
    let stored = stored_offsets(&cmd.db)?;
    let in_kafka = group_offsets(brokers, &cmd.group, topic, cfg.partitions)?;
    check(&mut problems, in_kafka == stored, || {
        format!("Kafka's offsets {in_kafka:?} differ from the database's {stored:?}")
    });

    // A new group: Kafka has no offsets for it, the database has them all.
    let mut again = cmd.clone();
    again.group = kafka::unique(&format!("chaos-full-run-{}-fresh", model.name()));
    let stats: ConsumerStats = again.spawn(&cfg.bins, 1, &[])?.wait_success()?;
    let read_again = stats.events_committed + stats.dead_letters;
    check(&mut problems, read_again == 0, || {
        format!("a run in a new group stored {read_again} messages again")
    });
    let f = verify(&cmd.db, expected, 0)?;
    exactness(&f, n, &mut problems);
    let figures = format!(
        "events {} kafka_offsets_match {} stored_again_in_new_group {read_again} {}",
        f.events,
        in_kafka == stored,
        f.brief()
    );
    Ok(Outcome::new(SC, model.name(), figures, problems))
}
