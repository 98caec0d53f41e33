//! `start-positions` (chaos/README.md): each case ends with every event
//! stored once, or a refusal naming the range and the flag that accepts it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use testkit::clients::delete_topic;
use testkit::procs::{GENEROUS, wait_until};
use testkit::verify::row_count;
use testkit::{ConsumerStats, Expected, group_offsets, kafka, verify_all};

use super::{At, Case, Filled, cases, check, consumer, refused, sub};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::StartPositions;
const PARTITIONS: i32 = 3;

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let all: [(&str, Case); 3] = [
        ("restored", restored_backup),
        ("recreated", recreated_topic),
        ("revoke-one", partial_revocation),
    ];
    cases(cfg, SC, &all)
}

fn copy_db(from: &Path, to: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let (f, t) = (
            format!("{}{suffix}", from.display()),
            format!("{}{suffix}", to.display()),
        );
        let _ = std::fs::remove_file(&t);
        if Path::new(&f).exists() {
            std::fs::copy(&f, &t).with_context(|| format!("copy {f} to {t}"))?;
        }
    }
    Ok(())
}

/// A case's topic of [`PARTITIONS`] partitions and its first events.
fn case(cfg: &Config, dir: &Path, name: &str) -> Result<Filled> {
    Filled::new(cfg, dir, name, PARTITIONS, cfg.events.clamp(30, 30_000))
}

/// The restored backup, then a new `--db` and `auto.offset.reset=latest`
/// against the same group.
fn restored_backup(At { cfg, model, dir }: At, problems: &mut Vec<String>) -> Result<String> {
    let case = case(cfg, dir, "restored")?;
    let (n, dir, half) = (case.n, &case.dir, case.n / 2);
    let cmd = case.consumer(cfg, SC, model);
    let half_arg = half.to_string();
    let _: ConsumerStats = cmd
        .spawn(&cfg.bins, 0, &["--max-events", &half_arg])?
        .wait_success()?;
    let backup = dir.join("backup.db");
    copy_db(&cmd.db, &backup)?;
    let _: ConsumerStats = cmd.spawn(&cfg.bins, 1, &[])?.wait_success()?;
    let full = row_count(&cmd.db);
    check(problems, full == n, || {
        format!("restored: the database held {full} events before the restore, not {n}")
    });

    copy_db(&backup, &cmd.db)?;
    let before = row_count(&cmd.db);
    let needles = ["went back in time", "--restored-backup"];
    refused(cfg, &cmd, 2, &needles, "restored backup", problems)?;
    let again: ConsumerStats = cmd
        .spawn(&cfg.bins, 3, &["--restored-backup"])?
        .wait_success()?;
    let expected = Expected::of(cfg.seed, cfg.accounts, n);
    let f = verify_all(&[&cmd.db], &expected, 0)?;
    check(problems, f.exact() && f.events == n, || {
        format!("restored: after --restored-backup: {}", f.brief())
    });

    // The same group, a new database, no word of several instances.
    let mut wrong = cmd.clone();
    wrong.db = dir.join("mistyped.db");
    let needles = ["holds nothing of the partition", "--scale-out", "--group"];
    refused(cfg, &wrong, 4, &needles, "new --db", problems)?;
    // A new group reads everything into it.
    wrong.group = kafka::unique("chaos-start-positions-fresh");
    let fresh: ConsumerStats = wrong.spawn(&cfg.bins, 5, &[])?.wait_success()?;
    let f2 = verify_all(&[&wrong.db], &expected, 0)?;
    check(problems, f2.exact() && f2.events == n, || {
        format!("new --db with a new --group: {}", f2.brief())
    });

    // auto.offset.reset=latest on a first start with a backlog.
    let mut latest = cmd.clone();
    latest.db = dir.join("latest.db");
    latest.group = kafka::unique("chaos-start-positions-latest");
    let what = "auto.offset.reset=latest";
    latest.extra.extend(["-X", what].map(String::from));
    let needles = ["auto.offset.reset=latest is not accepted"];
    refused(cfg, &latest, 6, &needles, what, problems)?;
    Ok(format!(
        "{before} of {n} after the restore, {} re-read; new db: refused, then {} with a new group",
        again.events_committed, fresh.events_committed
    ))
}

/// The topic deleted and created again under the same name, with new
/// events.
fn recreated_topic(At { cfg, model, dir }: At, problems: &mut Vec<String>) -> Result<String> {
    let case = case(cfg, dir, "recreated")?;
    let (kafka, topic, n) = (case.kafka, &case.topic, case.n);
    let cmd = case.consumer(cfg, SC, model);
    let _: ConsumerStats = cmd.spawn(&cfg.bins, 0, &[])?.wait_success()?;

    delete_topic(kafka.bootstrap(), topic)?;
    kafka.create_topic(topic, PARTITIONS)?;
    let more = (n / 2).max(3);
    let expected = case.more(cfg, more)?;

    let needles = [topic.as_str(), "--accept-new-topic"];
    refused(cfg, &cmd, 1, &needles, "recreated topic", problems)?;
    let rows = row_count(&cmd.db);
    check(problems, rows == n, || {
        format!("recreated: {rows} events after the refused restart, not {n}")
    });
    let stats: ConsumerStats = cmd
        .spawn(&cfg.bins, 2, &["--accept-new-topic"])?
        .wait_success()?;
    let f = verify_all(&[&cmd.db], &expected, 0)?;
    // Everything but the offsets' agreement with the rows: the rows of the
    // old topic keep their offsets, which the new topic's start over.
    let mut f_rows = f.clone();
    f_rows.offsets_inconsistent = 0;
    check(problems, f_rows.exact() && f.events == n + more, || {
        format!("recreated: after --accept-new-topic: {}", f.brief())
    });
    let resets = store::Store::open(&cmd.db)?.topic_resets()?.len();
    check(problems, resets == 1, || {
        format!("recreated: {resets} rows in topic_resets, not 1")
    });
    Ok(format!(
        "refused, then {} new events stored",
        stats.events_committed
    ))
}

/// A second instance takes one of the first's three partitions; both keep
/// running while the group's offsets are read.
fn partial_revocation(At { cfg, model, dir }: At, problems: &mut Vec<String>) -> Result<String> {
    let case = case(cfg, dir, "revoke-one")?;
    let (kafka, topic, n) = (case.kafka, &case.topic, case.n);
    let instance = |name: &str| -> Result<testkit::ConsumerCmd> {
        let d = sub(&case.dir, name)?;
        let mut cmd = consumer(cfg, SC, model, kafka.bootstrap(), topic, &d);
        cmd.idle_secs = None;
        cmd.extra.push("--scale-out".into());
        Ok(cmd)
    };
    let a_cmd = instance("a")?;
    let mut b_cmd = instance("b")?;
    b_cmd.group = a_cmd.group.clone();
    let mut a = a_cmd.spawn(&cfg.bins, 0, &[])?;
    wait_until(GENEROUS, "the first instance to store the backlog", || {
        row_count(&a_cmd.db) >= n || a.try_status().is_some()
    })?;
    let mut b = b_cmd.spawn(&cfg.bins, 0, &[])?;
    wait_until(GENEROUS, "the second instance to get a partition", || {
        b.log_text().contains("assigned 1 partition") || b.try_status().is_some()
    })?;
    let more = (n / 2).max(3);
    let expected = case.more(cfg, more)?;
    let total = n + more;
    wait_until(GENEROUS, "both instances to store everything", || {
        row_count(&a_cmd.db) + row_count(&b_cmd.db) >= total
            || a.try_status().is_some()
            || b.try_status().is_some()
    })?;
    // The group's offsets reach the partitions' ends while both run.
    let ends = testkit::clients::high_watermarks(kafka.bootstrap(), topic, PARTITIONS)?;
    let mut last = Default::default();
    let caught_up = wait_until(
        Duration::from_secs(20),
        "the group's offsets at the ends",
        || {
            last = group_offsets(kafka.bootstrap(), &a_cmd.group, topic, PARTITIONS)
                .unwrap_or_default();
            last == ends
        },
    );
    check(problems, caught_up.is_ok(), || {
        format!(
            "revoke-one: the group's offsets {last:?} are not the partitions' ends {ends:?} (lag) while both instances run"
        )
    });
    a.sigterm();
    b.sigterm();
    let _: ConsumerStats = a.wait_success()?;
    let _: ConsumerStats = b.wait_success()?;
    let f = verify_all(&[&a_cmd.db, &b_cmd.db], &expected, 0)?;
    check(problems, f.exact() && f.events == total, || {
        format!("revoke-one: the two databases: {}", f.brief())
    });
    Ok(format!("lag 0 while running: {}", caught_up.is_ok()))
}
