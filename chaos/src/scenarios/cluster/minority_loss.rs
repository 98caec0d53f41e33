//! minority-loss: two of three nodes down; the producer fails in time
//! saying why, nothing acknowledged is missing, and a run after their
//! return completes.

use super::*;

pub fn minority_loss(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::MinorityLoss;
    let (dir, mut cluster, brokers) = start_cluster(cfg, sc)?;
    let topic = topic(cfg, &cluster, "minority-loss")?;
    let mut problems = Vec::new();

    // A first run with two nodes down.
    let first = cfg.events.min(10_000);
    cluster.kill(2)?;
    cluster.kill(3)?;
    let mut stalled = producer(cfg, &brokers, &topic);
    stalled.count = first;
    stalled.timeout_secs = 20;
    let started = std::time::Instant::now();
    let mut p = stalled.spawn(&cfg.bins, &dir, "producer-stalled")?;
    let status = p.wait(Duration::from_secs(120))?;
    let took = started.elapsed();
    let text = p.log_text();
    check(&mut problems, !status.success(), || {
        "the producer succeeded with two of three nodes down".into()
    });
    check(
        &mut problems,
        took < Duration::from_secs(stalled.timeout_secs + 30),
        || format!("the producer took {took:?} to give up (--timeout 20)"),
    );
    let why = [
        "NOT_ENOUGH_REPLICAS",
        "NotEnoughReplicas",
        "timed out",
        "Timed out",
    ];
    let named = why.iter().any(|w| text.contains(w));
    check(&mut problems, named, || {
        format!(
            "the producer's error names neither NOT_ENOUGH_REPLICAS nor a timeout: {}",
            p.log_tail(3)
        )
    });
    let stalled: Result<testkit::ProducerStats> = p.read_stats();
    let acked = stalled.map_or(0, |s| s.events_acknowledged);

    // The nodes come back; a second run completes.
    cluster.restart(2)?;
    cluster.restart(3)?;
    cluster.wait_in_sync(&topic, Duration::from_secs(120))?;
    let mut second = producer(cfg, &brokers, &topic);
    second.first_id = first + 1;
    second.count = first;
    let second_ok = second.run(&cfg.bins, &dir, "producer-second");
    if let Err(e) = &second_ok {
        problems.push(format!("the run after the nodes came back: {e:#}"));
    }

    // Each consumer reads the topic: every event of the second run, at
    // least the acknowledged ones of the first, nothing twice.
    let runs = Expected::of_runs(cfg.seed, cfg.accounts, &[(1, first), (first + 1, first)]);
    let mut figures = Vec::new();
    for (cmd, mut c) in start_consumers(cfg, sc, &brokers, &topic, &dir)? {
        let stats: ConsumerStats = c.wait_success()?;
        let f = verify(&cmd.db, &runs, 0)?;
        let ids = testkit::verify::stored_ids(&cmd.db)?;
        let of_first = ids.iter().filter(|&&id| id <= first).count() as u64;
        let of_second = ids.iter().filter(|&&id| id > first).count() as u64;
        let name = cmd.model.name();
        check(
            &mut problems,
            f.duplicated == 0 && f.unexpected == 0,
            || format!("{name}: {}", f.brief()),
        );
        check(&mut problems, of_second == first, || {
            format!("{name}: {of_second} events of the second run stored, not {first}")
        });
        check(&mut problems, of_first >= acked, || {
            format!(
                "{name}: {of_first} events of the first run stored, fewer than the {acked} acknowledged"
            )
        });
        figures.push(format!(
            "{name} stored {} (first run {of_first}, second {of_second})",
            stats.events_committed
        ));
    }
    let second = second_ok.as_ref().map_or("FAILED", |_| "complete");
    let figures = format!(
        "first run {first} events: acknowledged {acked}, gave up after {:.0} s; second run {second}; {}",
        took.as_secs_f64(),
        figures.join(", ")
    );
    Ok(vec![Outcome::new(sc, "all", figures, problems)])
}
