//! `--ready-file` of consumer-push, against librdkafka's mock cluster: the
//! file appears once the partitions are assigned and positioned, and not
//! before (a stale one is removed at start).

use std::path::Path;
use std::time::{Duration, Instant};

use banking_consumer::ready::Ready;
use banking_testkit::MockKafka;
use banking_testkit::scenarios::{ConsumerRun, PARTITIONS, TOPIC, Workdir};

#[test]
fn the_ready_file_is_written_after_the_assignment() {
    let bin = Path::new(env!("CARGO_BIN_EXE_consumer-push"));
    let kafka = MockKafka::start(TOPIC, PARTITIONS);
    let work = Workdir::new("ready-file");
    let ready = work.path("c.ready");
    std::fs::write(&ready, "left by an earlier run").unwrap();
    let ready_arg = ready.to_str().unwrap();
    let mut run = ConsumerRun::spawn(
        bin,
        &work,
        "run",
        &kafka.bootstrap,
        "g",
        &work.path("c.db"),
        &["--ready-file", ready_arg],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let record = loop {
        if let Some(r) = Ready::read(&ready) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no ready file; the log:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(record.topic, TOPIC);
    assert_eq!(record.partitions, (0..PARTITIONS).collect::<Vec<_>>());
    assert_eq!(record.pid, run.pid());
    // Nothing to consume: it exits on --exit-when-idle, cleanly.
    run.wait_success();
    let log = run.log();
    let assigned = log
        .find(&format!("assigned {PARTITIONS} partition(s) of {TOPIC}"))
        .unwrap_or_else(|| panic!("no assignment in the log:\n{log}"));
    let written = log
        .find("ready: wrote")
        .unwrap_or_else(|| panic!("no ready line in the log:\n{log}"));
    assert!(assigned < written, "ready before the assignment:\n{log}");
}
