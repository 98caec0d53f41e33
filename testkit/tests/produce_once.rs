//! `docker/produce-once.sh`, the compose producer's entry: it runs the
//! producer when its range has no stats file, skips a range that was
//! wholly acknowledged, and refuses (exit 3, the range and the way out
//! named) a range whose run ended early, instead of calling it done.

use std::path::Path;
use std::process::{Command, Output};

use common::stats::{ProducerStats, write_json};

/// A stats file as the producer writes it: `acked` of 1,000 events from id
/// 1 acknowledged, `failed` failed, ids up to `last` sent.
fn stats_file(path: &Path, acked: u64, failed: u64, last: u64) {
    let stats: ProducerStats = serde_json::from_value(serde_json::json!({
        "version": common::stats::STATS_VERSION, "mode": "events",
        "brokers": "kafka:19092", "topic": "banking.events",
        "events_requested": 1000, "events_sent": last, "events_acknowledged": acked,
        "events_failed": failed, "amount_minor_sum": 5, "id_checksum": "00000000000000ff",
        "first_event_id": 1, "last_event_id": last, "seed": 42, "accounts": 10000,
        "rate_limit": 0, "wall_seconds": 1.0, "events_per_second": 1.0, "cpu_seconds": 0.1,
        "max_rss_bytes": 1, "interrupted": acked + failed < 1000, "settings": {}, "errors": [],
    }))
    .expect("the fields of ProducerStats");
    write_json(path, &stats).expect("write the stats file");
}

/// `produce-once STATS echo producer-ran`.
fn produce_once(stats: &Path) -> Output {
    Command::new("sh")
        .arg(testkit::repo_root().join("docker/produce-once.sh"))
        .arg(stats)
        .args(["echo", "producer-ran"])
        .output()
        .expect("run sh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_range_is_sent_once_and_an_unfinished_one_is_refused_not_called_done() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("producer-1-1000.json");

    // No stats file: the producer runs, writing one.
    let out = produce_once(&stats);
    assert!(out.status.success());
    let args = format!("producer-ran --stats-json {}\n", stats.display());
    assert_eq!(text(&out.stdout), args);

    // Every event acknowledged: skipped, exit 0.
    stats_file(&stats, 1000, 0, 1000);
    let out = produce_once(&stats);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("produce-once: this range was already sent"));
    assert!(!text(&out.stdout).contains("producer-ran"));

    // Stopped early with the broker gone: refused, the figures and the
    // next free id named; the producer does not run.
    for (acked, failed, last) in [(549, 75, 624), (600, 0, 600), (990, 10, 1000)] {
        stats_file(&stats, acked, failed, last);
        let out = produce_once(&stats);
        assert_eq!(out.status.code(), Some(3), "{acked} {failed}");
        let err = text(&out.stderr);
        let said = format!("{acked} of 1000 events acknowledged, {failed} failed delivery");
        assert!(err.contains(&said), "{err}");
        assert!(err.contains(&format!("FIRST_ID={}", last + 1)), "{err}");
        assert!(!text(&out.stdout).contains("producer-ran"));
    }

    // A file it cannot read is not a finished run either.
    std::fs::write(&stats, "{}\n").unwrap();
    assert_eq!(produce_once(&stats).status.code(), Some(3));
}
