//! rolling-restart: each node stopped (controlled shutdown) and restarted
//! in turn during live production.

use super::*;

pub fn rolling_restart(cfg: &Config) -> Result<Vec<Outcome>> {
    let sc = Scenario::RollingRestart;
    let (dir, mut cluster, brokers) = start_cluster(cfg, sc)?;
    let expected = expected(cfg);
    let n = cfg.events;
    let topic = topic(cfg, &cluster, "rolling-restart")?;
    let consumers = start_consumers(cfg, sc, &brokers, &topic, &dir)?;
    let mut produce = producer(cfg, &brokers, &topic);
    produce.rate = live_rate(cfg, 60);
    let mut p = produce.spawn(&cfg.bins, &dir, "producer")?;
    thread::sleep(Duration::from_secs(3));
    let start_us = now_us();
    for node in 1..=NODES as u32 {
        cluster.stop(node)?;
        thread::sleep(Duration::from_secs(3));
        cluster.restart(node)?;
        cluster.wait_in_sync(&topic, Duration::from_secs(120))?;
    }
    let end_us = now_us();
    let produced = produce.finish(&mut p).map(drop);
    let secs = (end_us - start_us) as f64 / 1e6;
    let what = format!("nodes restarted {NODES} in {secs:.0} s");
    let window = (start_us, Some(end_us));
    let parts = ("", what.as_str());
    let outcomes = finish_consumers(sc, consumers, (&expected, n), produced, parts, window);
    Ok(outcomes)
}
