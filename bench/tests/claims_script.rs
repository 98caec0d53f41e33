//! `scripts/bench.sh --claims`: the claims experiments end to end on a
//! small scale (a local Apache Kafka on free ports, started and stopped by
//! the script), and its refusals before any broker starts.

mod common;

use common::{bench_sh, passes_in_temp_dir, refused_before_any_broker, show};

#[test]
fn a_mistyped_claims_option_fails_before_any_broker_starts() {
    let mut cmd = bench_sh();
    cmd.args(["--claims", "--only", "latency,idel"]);
    let what = "scripts/bench.sh --claims --only idel";
    let (stderr, log) = refused_before_any_broker(what, &mut cmd);
    assert!(stderr.contains("idel"), "{log}");
}

#[test]
fn help_names_the_claims_mode() {
    let o = bench_sh().arg("--help").output().expect("run --help");
    assert!(o.status.success(), "{}", show("--help", &o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--claims"));
}

/// A few experiments at small sizes: every phase verified, the claims
/// table written with a verdict per claim run, the group of two instances
/// checked as one.
#[test]
fn a_small_claims_run_passes_and_writes_its_verdicts() {
    if let Err(why) = testkit::kafka::available() {
        testkit::skip("a_small_claims_run_passes_and_writes_its_verdicts", &why);
        return;
    }
    let args = "--claims --only latency,idle,scale,outage --rates 10,1000 --duration 2 --idle-seconds 2 --scale-events 20000 --scale-instances 1,2 --outage-rate 1000 --outage-seconds 2 --skip-warmup";
    let (_tmp, out, _, log) = passes_in_temp_dir("scripts/bench.sh --claims", args, "claims");
    let md = std::fs::read_to_string(out.join("claims.md")).expect("claims.md");
    for claim in [
        "| Push has lower latency",
        "| Pull uses more CPU",
        "| Pull scales to many consumers",
        "| Push couples producer and consumer",
    ] {
        assert!(md.contains(claim), "{claim} missing:\n{md}");
    }
    assert!(
        md.contains("Verification: **PASS** in 10 of 10 phases"),
        "{md}"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("claims.json")).unwrap()).unwrap();
    let phases = run["phases"].as_array().expect("phases");
    let two = phases
        .iter()
        .find(|p| p["name"] == "scale-push-2-a")
        .expect("the two-instance push group");
    let stored: u64 = two["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["stats"]["events_committed"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, 20_000, "{two}");
    assert!(
        two["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["what"] == "distinct events (ledger)" && c["pass"] == true),
        "{two}"
    );
    for f in ["claims-latency.svg", "claims-cpu.svg"] {
        assert!(out.join(f).is_file(), "{f} not drawn\n{log}");
    }
}
