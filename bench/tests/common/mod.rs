//! What the tests of `scripts/bench.sh` share: the script, run with the
//! binaries of this very build, and a readable dump of its output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ lives one level below the root")
        .to_path_buf()
}

/// The directory of the `bench` binary under test (`cargo test
/// --workspace` builds the producer and both consumers there too).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bench"))
        .parent()
        .expect("binary has a directory")
        .to_path_buf()
}

/// `scripts/bench.sh` on this build's binaries, never on an outside broker.
pub fn bench_sh() -> Command {
    let mut c = Command::new(repo_root().join("scripts/bench.sh"));
    c.env("BIN_DIR", bin_dir()).env_remove("KAFKA_BROKERS");
    c
}

/// Runs `cmd` (`what`) against a broker it must not start: asserts that
/// it fails and that no broker was started; returns its stderr and the
/// whole output, for the caller's own assertions.
pub fn refused_before_any_broker(what: &str, cmd: &mut Command) -> (String, String) {
    let empty = tempfile::tempdir().expect("temp dir");
    let run_dir = empty.path().join("broker");
    let o = on_private_kafka(cmd, &run_dir)
        .output()
        .expect("run scripts/bench.sh");
    let log = show(what, &o);
    assert!(!o.status.success(), "{log}");
    assert!(!run_dir.exists(), "no broker may be started\n{log}");
    (String::from_utf8_lossy(&o.stderr).into_owned(), log)
}

/// Runs `cmd` (`what`) on a private Apache Kafka that it starts and stops
/// itself, and asserts that it passed verification; returns its output,
/// readable.
fn passes_on_private_kafka(what: &str, cmd: &mut Command, run_dir: &Path) -> String {
    let o = on_private_kafka(cmd, run_dir).output().expect(what);
    let log = show(what, &o);
    assert!(o.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("verification PASS"), "{log}");
    log
}

/// `scripts/bench.sh ARGS --out <temp>/<name>` (`args` split at spaces)
/// on a private Apache Kafka, passed: the temp directory (removed when
/// dropped), the output and broker run directories, and the output.
pub fn passes_in_temp_dir(
    what: &str,
    args: &str,
    name: &str,
) -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (out, run_dir) = (tmp.path().join(name), tmp.path().join("broker"));
    let mut cmd = bench_sh();
    cmd.args(args.split(' ')).arg("--out").arg(&out);
    let log = passes_on_private_kafka(what, &mut cmd, &run_dir);
    (tmp, out, run_dir, log)
}

/// `cmd` with a private Apache Kafka on free ports, its run directory
/// `run_dir`.
fn on_private_kafka<'a>(cmd: &'a mut Command, run_dir: &Path) -> &'a mut Command {
    cmd.env("BROKER_KIND", "kafka")
        .env("BROKER_PORT", testkit::free_port().to_string())
        .env("KAFKA_CONTROLLER_PORT", testkit::free_port().to_string())
        .env("RUN_DIR", run_dir)
}

/// A command's status, stdout and stderr, for an assertion's message.
pub fn show(what: &str, o: &Output) -> String {
    format!(
        "{what}: status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
