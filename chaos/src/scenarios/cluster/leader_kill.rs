//! leader-kill: `kill -9` of the node leading the most partitions, during a
//! backlog drain and during live production; back after [`DOWN`].

use super::*;

pub fn leader_kill(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::LeaderKill;
    let (dir, mut cluster, brokers) = start_cluster(cfg, sc)?;
    let expected = expected(cfg);
    let n = cfg.events;
    let mut outcomes = Vec::new();

    // 1. The backlog: every event acknowledged before the consumers start.
    let backlog = sub(&dir, "backlog")?;
    let topic_b = topic(cfg, &cluster, "leader-kill-backlog")?;
    producer(cfg, &brokers, &topic_b).run(&cfg.bins, &backlog, "producer")?;
    let mut consumers = start_consumers(cfg, sc, &brokers, &topic_b, &backlog)?;
    // A third of the way in (at the first commit for small runs, which
    // drain in a moment).
    let at = if n >= 200_000 { n / 3 } else { 1 };
    wait_until(GENEROUS, "the consumers' progress before the kill", || {
        consumers
            .iter_mut()
            .all(|(c, p)| committed_messages(&c.db) >= at || p.try_status().is_some())
    })?;
    let (what, fault_us) = kill_busiest(&mut cluster, &topic_b)?;
    let (part, window) = ((" backlog", what.as_str()), (fault_us, None));
    let end = finish_consumers(sc, consumers, (&expected, n), Ok(()), part, window);
    outcomes.extend(end);
    cluster.wait_in_sync(&topic_b, Duration::from_secs(120))?;

    // 2. Live: the consumers keep up with the producer when the node dies.
    let live = sub(&dir, "live")?;
    let topic_l = topic(cfg, &cluster, "leader-kill-live")?;
    let consumers = start_consumers(cfg, sc, &brokers, &topic_l, &live)?;
    let mut produce = producer(cfg, &brokers, &topic_l);
    produce.rate = live_rate(cfg, 40);
    let mut p = produce.spawn(&cfg.bins, &live, "producer")?;
    let quarter = Duration::from_secs_f64(n as f64 / produce.rate as f64 / 4.0);
    thread::sleep(quarter);
    let (what, fault_us) = kill_busiest(&mut cluster, &topic_l)?;
    let (part, window) = (
        (" live", what.as_str()),
        (fault_us, Some(now_us() + 10_000_000)),
    );
    let produced = produce.finish(&mut p).map(drop);
    let end = finish_consumers(sc, consumers, (&expected, n), produced, part, window);
    outcomes.extend(end);
    Ok(outcomes)
}

/// `kill -9` of the busiest leader of `topic`, back after [`DOWN`]: what
/// was done, and when.
fn kill_busiest(cluster: &mut Cluster, topic: &str) -> Result<(String, i64)> {
    let (node, led) = cluster.busiest_leader(topic)?;
    let fault_us = now_us();
    cluster.kill(node)?;
    thread::sleep(DOWN);
    cluster.restart(node)?;
    Ok((format!("killed node {node} (leader of {led})"), fault_us))
}
