//! The README's first command, small: the whole `scripts/bench.sh` against a
//! private Apache Kafka (started and stopped by the script itself, through
//! `scripts/broker.sh`, on free ports), then `--verify-only` on a database
//! with one event deleted.
//!
//! Uses the binaries of this very build (BIN_DIR = the directory of the
//! `bench` binary under test; `cargo test --workspace` builds the producer
//! and both consumers there too). Skipped, visibly, when Java or Kafka's
//! jars are missing (`scripts/setup.sh` installs them; CI runs it).

mod common;

use std::process::Command;

use common::{bench_sh, bin_dir, passes_in_temp_dir, refused_before_any_broker, repo_root, show};

#[test]
fn small_run_passes_and_a_deleted_event_fails_verify_only() {
    if let Err(why) = testkit::kafka::available() {
        testkit::skip(
            "small_run_passes_and_a_deleted_event_fails_verify_only",
            &why,
        );
        return;
    }
    let bins = bin_dir();
    for b in ["producer", "consumer-pull", "consumer-push", "broker"] {
        assert!(
            bins.join(b).is_file(),
            "{} is missing: this test runs the real binaries; build them with \
             `cargo build -p producer -p consumer-pull -p consumer-push -p testkit` \
             (or run `cargo test --workspace`, which builds every binary)",
            bins.join(b).display()
        );
    }
    let args = "--events 20000 --partitions 3 --rates 1000,5000 --duration 3 --warmup 3 --saturation --saturation-start 2000 --saturation-max 4000";
    let (_tmp, out, run_dir, log) = passes_in_temp_dir("scripts/bench.sh", args, "run");
    assert!(
        !run_dir.join("pid").exists(),
        "the broker this run started must be stopped at the end\n{log}"
    );

    for f in [
        "report.md",
        "results.json",
        "backlog-throughput.svg",
        "live-latency.svg",
        "live-throughput.svg",
        "saturation-latency.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} not written\n{log}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| backlog | pull | 20,000 |"), "{report}");
    assert!(report.contains("| live 5k/s | push |"), "{report}");
    assert!(report.contains("Verification: **PASS**"), "{report}");

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["verification"], "PASS");
    for model in ["pull", "push"] {
        let m = &results[model];
        assert_eq!(m["events"], 20_000, "{model}: {m}");
        for key in [
            "events_per_second",
            "ceiling_events_per_second",
            "max_rss_bytes",
        ] {
            assert!(
                m[key].as_f64().is_some_and(|x| x > 0.0),
                "{model}.{key} missing or zero: {m}"
            );
        }
        assert!(m["latency_us"]["p99"].as_f64().is_some(), "{model}: {m}");
        assert_eq!(m["live"].as_array().map(Vec::len), Some(2), "{model}: {m}");
    }
    assert!(results["producer"]["ratio_to_raw"].as_f64().is_some());
    assert!(
        results["ceilings"]["raw_consume"]["events_per_second"]
            .as_f64()
            .is_some()
    );
    assert!(
        results["ceilings"]["store_insert"]["events_per_second"]
            .as_f64()
            .is_some()
    );
    assert!(
        results["queries"]["latest_events_50"]["p99_ms"]
            .as_f64()
            .is_some()
    );
    // The bare-SQLite ceiling inserted the same count, in two halves.
    let bare = &results["ceilings"]["bare_sqlite"];
    assert_eq!(bare["events"], 20_000, "{bare}");
    assert!(
        results["ceilings"]["store_to_bare"]
            .as_f64()
            .is_some_and(|x| x > 0.0)
    );
    // The saturation sweep ran its first step (2,000/s; it may stop there
    // on a loaded machine), with every event stored by both models.
    let steps = results["saturation"]["steps"]
        .as_array()
        .expect("saturation steps");
    assert!(!steps.is_empty() && steps.len() <= 2, "{steps:?}");
    assert_eq!(steps[0]["rate"], 2_000);
    let produced = &steps[0]["produced"];
    assert_eq!(steps[0]["pull"]["events"], *produced, "{steps:?}");
    assert_eq!(steps[0]["push"]["events"], *produced, "{steps:?}");
    assert!(report.contains("## Saturation"), "{report}");

    // Untouched, --verify-only agrees.
    let o = bench_sh()
        .arg("--verify-only")
        .arg(&out)
        .output()
        .expect("run --verify-only");
    assert!(o.status.success(), "{}", show("--verify-only", &o));

    // One event fewer in one database: FAIL, non-zero exit.
    let db = out.join("backlog/push.db");
    let conn = rusqlite::Connection::open(&db).expect("open push.db");
    let deleted = conn
        .execute(
            "DELETE FROM events WHERE event_id = (SELECT max(event_id) FROM events)",
            [],
        )
        .expect("delete one event");
    assert_eq!(deleted, 1);
    drop(conn);
    let o = bench_sh()
        .arg("--verify-only")
        .arg(&out)
        .output()
        .expect("run --verify-only");
    let log = show("--verify-only after deleting an event", &o);
    assert!(!o.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("FAIL backlog/push events: 19999 (expected 20000)"),
        "{log}"
    );
    assert!(stdout.contains("FAIL backlog/push id checksum"), "{log}");
    assert!(stdout.contains("PASS backlog/pull events: 20000"), "{log}");
    assert!(stdout.contains("verification FAIL"), "{log}");
}

/// A mistyped option is refused by `bench run` itself, before a broker is
/// started.
#[test]
fn a_mistyped_option_fails_before_any_broker_starts() {
    let mut cmd = bench_sh();
    cmd.args(["--events", "10", "--evnets", "10"]);
    let (stderr, log) = refused_before_any_broker("scripts/bench.sh --evnets", &mut cmd);
    assert!(stderr.contains("--evnets"), "{log}");
}

#[test]
fn missing_binaries_are_reported_before_any_broker_starts() {
    let empty = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(repo_root().join("scripts/bench.sh"));
    cmd.args(["--events", "10"]).env("BIN_DIR", empty.path());
    let what = "scripts/bench.sh with an empty BIN_DIR";
    let (stderr, log) = refused_before_any_broker(what, &mut cmd);
    assert!(stderr.contains("is missing"), "{log}");
    assert!(stderr.contains("cargo build"), "{log}");
}

/// The script's own lines, then every option of `bench run`, which it
/// hands over untouched.
#[test]
fn help_describes_the_flags() {
    let o = bench_sh()
        .arg("--help")
        .output()
        .expect("run scripts/bench.sh --help");
    assert!(o.status.success(), "{}", show("--help", &o));
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--events",
        "--partitions",
        "--out",
        "--rate",
        "--duration",
        "--batch-size",
        "--consumer-property",
        "--verify-only",
        "BIN_DIR",
    ] {
        assert!(
            text.contains(flag),
            "--help does not mention {flag}:\n{text}"
        );
    }
}
