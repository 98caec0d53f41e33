//! scale-out: three instances per consumer in a group, one killed and
//! restarted, one killed for good, a fourth joining; the databases as one.

use super::*;

pub fn scale_out(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::ScaleOut;
    let (dir, cluster, brokers) = start_cluster(cfg, sc)?;
    let topic = topic(cfg, &cluster, "scale-out")?;
    let expected = expected(cfg);
    let n = cfg.events;
    let rate = live_rate(cfg, 40);
    let secs = n / rate;

    // Every model's first three instances, each with its database, before
    // the events flow.
    let mut produce = producer(cfg, &brokers, &topic);
    produce.rate = rate;
    let mut groups = Vec::new();
    for &m in &cfg.consumers {
        let group = testkit::kafka::unique(&format!("chaos-scale-out-{}", m.name()));
        let cmds: Vec<ConsumerCmd> = (1..=4)
            .map(|i| -> Result<ConsumerCmd> {
                let d = sub(&dir, &format!("{}-{i}", m.name()))?;
                let mut cmd = consumer(cfg, sc, m, &brokers, &topic, &d);
                cmd.group = group.clone();
                cmd.idle_secs = Some(IDLE_SECS);
                cmd.extra.extend(SESSION.map(String::from));
                cmd.extra
                    .extend(["--instance-id".to_string(), format!("{}-{i}", m.name())]);
                Ok(cmd)
            })
            .collect::<Result<_>>()?;
        let mut procs = Vec::new();
        for cmd in &cmds[..3] {
            procs.push(cmd.spawn(&cfg.bins, 0, &[])?);
        }
        groups.push((m, (cmds, procs)));
    }
    for (_, (_, procs)) in &mut groups {
        for p in procs {
            p.wait_for_log("assigned ", Duration::from_secs(120))?;
        }
    }
    let background = Background::start(cfg, produce, &dir)?;
    let outcomes = each(sc, groups, |(cmds, procs)| {
        scale_out_one(cfg, &cmds, procs, secs, &background, &expected)
    });
    background.finished()?;
    Ok(outcomes)
}

fn scale_out_one(
    cfg: &Config,
    cmds: &[ConsumerCmd],
    mut procs: Vec<Proc>,
    secs: u64,
    background: &Background,
    expected: &Expected,
) -> Result<Outcome> {
    let sc = Scenario::ScaleOut;
    let model = cmds[0].model;
    let step = Duration::from_secs((secs / 4).max(2));
    let mut problems = Vec::new();
    wait_until(GENEROUS, "the first events stored", || {
        cmds[..3].iter().any(|c| committed_messages(&c.db) > 0)
    })?;
    // Instance 1: kill -9, back within the session timeout (30 s here).
    thread::sleep(step);
    procs[0].kill9();
    thread::sleep(Duration::from_secs(1));
    procs[0] = cmds[0].spawn(&cfg.bins, 1, &[])?;
    // Instance 2: kill -9 for good; its partitions move once its session
    // times out, from the group's offsets.
    thread::sleep(step);
    procs[1].kill9();
    // Instance 4 joins.
    thread::sleep(step);
    procs.push(cmds[3].spawn(&cfg.bins, 0, &[])?);
    background.finished()?;
    for (i, p) in procs.iter_mut().enumerate() {
        if i == 1 {
            continue;
        }
        let _: ConsumerStats = p.wait_success()?;
    }
    check(&mut problems, procs[0].log_text().contains("(db)"), || {
        "the restarted instance did not resume from its own database".into()
    });

    let dbs: Vec<PathBuf> = cmds
        .iter()
        .map(|c| c.db.clone())
        .filter(|d| d.exists())
        .collect();
    let ledger = ledger::Ledger::open(&dbs)?;
    let summary = ledger.summary()?;
    let lost = in_no_database(&dbs, expected)?;
    for db in &dbs {
        let f = verify(db, expected, 0)?;
        check(
            &mut problems,
            f.duplicated == 0 && f.unexpected == 0,
            || format!("{}: {}", db.display(), f.brief()),
        );
    }
    check(&mut problems, lost == 0, || {
        format!("{lost} events in no database")
    });
    check(
        &mut problems,
        summary.distinct_events == expected.ids.len() as u64,
        || {
            format!(
                "{} distinct events in the databases, not {}",
                summary.distinct_events,
                expected.ids.len()
            )
        },
    );
    check(
        &mut problems,
        summary.amount_minor_sum == expected.amount_minor_sum,
        || "the amount sum of the distinct events is wrong".into(),
    );
    let wrong = wrong_balances(&ledger, expected)?;
    check(&mut problems, wrong == 0, || {
        format!("{wrong} balances of the databases read as one are wrong")
    });
    // Every hand-over names a database among these: the union is the
    // group's whole history.
    let missing = ledger.missing_hand_overs()?;
    check(&mut problems, missing.is_empty(), || {
        format!("hand-overs from databases not among the group's: {missing:?}")
    });

    // The bound: only the instance killed for good hands its partitions
    // over without committing to Kafka first, and what it had stored but
    // not yet committed to Kafka is what it stored during one offset
    // commit's round trip (one request in flight at a time, see
    // consumer-core's `commit_async`): checked here as at most what it
    // stored in its last second.
    let dead = &cmds[1].db;
    let twice = ledger.twice_stored(None)?;
    let dead_ids = testkit::verify::stored_ids(dead)?;
    let outside = twice
        .iter()
        .filter(|(id, _)| !dead_ids.contains(id))
        .count();
    check(&mut problems, outside == 0, || {
        format!("{outside} events stored twice are not the dead instance's")
    });
    let bound = stored_in_last(dead, Duration::from_secs(1))?;
    check(&mut problems, summary.extra_copies <= bound, || {
        format!(
            "{} extra copies across the databases, more than the dead instance stored in its last second ({bound})",
            summary.extra_copies
        )
    });
    let figures = format!(
        "instances 4 events {} distinct {} lost {lost} stored_twice {} (bound {bound}) wrong_balances {wrong}",
        summary.rows, summary.distinct_events, summary.stored_twice
    );
    Ok(Outcome::new(sc, model.name(), figures, problems))
}

/// Events a database stored in the last `span` before its last commit.
fn stored_in_last(db: &Path, span: Duration) -> Result<u64> {
    let timeline = commit_timeline(db)?;
    let Some(last) = timeline.iter().map(|&(_, _, c)| c).max() else {
        return Ok(0);
    };
    let from = last - span.as_micros() as i64;
    Ok(timeline.iter().filter(|&&(_, _, c)| c >= from).count() as u64)
}
