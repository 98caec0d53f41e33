//! The fault suite (issue 6): runs the real binaries (`producer`,
//! `consumer-pull`, `consumer-push`) against a private Tansu broker while
//! faults are injected, then checks every consumer's database against the
//! produced events with totals computed independently of the store
//! ([`banking_testkit::Expected`]).
//!
//! Each scenario prints one line of figures, e.g.
//! `kill9 pull: events 1000000 kills 10 restarts 10 lost 0 duplicated 0 wrong_balances 0 PASS`.
//! A scenario passes only when nothing is lost, nothing duplicated, no
//! balance is wrong and its own fault-specific checks hold.
//!
//! `scripts/chaos.sh` is the front door; `chaos --help` lists the flags.

#![deny(missing_docs)]

pub mod broker;
pub mod procs;
pub mod scenarios;
pub mod verify;

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

pub use procs::Consumer;

/// The topic of the scenarios.
pub const TOPIC: &str = "banking.events";

/// One scenario of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Bad command lines and files (issue 6, item 6), plus the cheap
    /// security checks.
    BadInput,
    /// `kill -9` at random moments, restarted each time (item 1).
    Kill9,
    /// 1% bad messages of every kind (item 4).
    BadMessages,
    /// The broker unreachable at start (item 3).
    NoBroker,
    /// The database locked by another process (item 5, first half).
    DbLock,
    /// The disk fills up (item 5, second half).
    DiskFull,
    /// The broker unreachable in the middle of a run (item 2).
    Outage,
}

impl Scenario {
    /// Every scenario, in the order they run by default.
    pub const ALL: [Scenario; 7] = [
        Scenario::BadInput,
        Scenario::Kill9,
        Scenario::BadMessages,
        Scenario::NoBroker,
        Scenario::DbLock,
        Scenario::DiskFull,
        Scenario::Outage,
    ];

    /// The name used on the command line and in the figures.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::BadInput => "bad-input",
            Scenario::Kill9 => "kill9",
            Scenario::BadMessages => "bad-messages",
            Scenario::NoBroker => "no-broker",
            Scenario::DbLock => "db-lock",
            Scenario::DiskFull => "disk-full",
            Scenario::Outage => "outage",
        }
    }

    /// Parses a name (or `all`).
    pub fn parse_list(s: &str) -> Result<Vec<Scenario>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                out.extend(Scenario::ALL);
                continue;
            }
            match Scenario::ALL.iter().find(|sc| sc.name() == part) {
                Some(sc) => out.push(*sc),
                None => bail!(
                    "unknown scenario {part:?}; known: all, {}",
                    Scenario::ALL.map(Scenario::name).join(", ")
                ),
            }
        }
        if out.is_empty() {
            bail!("no scenario given");
        }
        Ok(out)
    }
}

/// Everything a run of the suite needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Good events per scenario.
    pub events: u64,
    /// Scenarios to run, in order.
    pub scenarios: Vec<Scenario>,
    /// Consumers to run each scenario against.
    pub consumers: Vec<Consumer>,
    /// Working directory: databases, logs, stats, broker state.
    pub out: PathBuf,
    /// Directory with `producer`, `consumer-pull`, `consumer-push`.
    pub bin_dir: PathBuf,
    /// `scripts/broker.sh`.
    pub broker_script: PathBuf,
    /// Seed of the events (and of the random moments).
    pub seed: u64,
    /// Accounts the events are spread over.
    pub accounts: u64,
    /// Partitions of the topic.
    pub partitions: i32,
    /// `kill -9`s per consumer.
    pub kills: u32,
    /// Seconds the broker is unreachable mid-run.
    pub outage_secs: u64,
    /// Seconds the consumers run without a broker at start.
    pub no_broker_secs: u64,
    /// Seconds the database is locked.
    pub lock_secs: u64,
    /// Largest allowed throughput loss with bad messages (0.2 = 20%).
    pub throughput_tolerance: f64,
    /// Clean and bad runs per consumer in bad-messages; the best of each
    /// is compared.
    pub throughput_rounds: u32,
    /// Size of the oversized bad messages. The default, 16 KiB, is about a
    /// hundred times the largest valid event; at 1% of the stream the bad
    /// messages then carry ~40% more payload bytes than the good events,
    /// and the dead letters keep every byte.
    pub oversized_bytes: usize,
    /// `--batch-size` for the consumers (None: their default).
    pub batch_size: Option<u64>,
}

impl Config {
    /// Defaults for `events` events in `out`, binaries from `bin_dir`.
    pub fn new(events: u64, out: &Path, bin_dir: &Path) -> Config {
        Config {
            events,
            scenarios: Scenario::ALL.to_vec(),
            consumers: vec![Consumer::Pull, Consumer::Push],
            out: out.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
            broker_script: default_broker_script(),
            seed: 42,
            accounts: 10_000,
            partitions: 6,
            kills: 10,
            outage_secs: 20,
            no_broker_secs: 15,
            lock_secs: 10,
            throughput_tolerance: 0.2,
            throughput_rounds: 3,
            oversized_bytes: 16 * 1024,
            batch_size: None,
        }
    }

    /// The consumers' extra arguments every scenario passes.
    pub fn batch_args(&self) -> Vec<String> {
        match self.batch_size {
            Some(n) => vec!["--batch-size".into(), n.to_string()],
            None => Vec::new(),
        }
    }
}

/// `scripts/broker.sh` of the source tree this harness was built from.
pub fn default_broker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("scripts/broker.sh"))
        .unwrap_or_else(|| PathBuf::from("scripts/broker.sh"))
}

/// The verdict of one scenario for one consumer (or for both).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: &'static str,
    /// `pull`, `push`, or `producer`/`all` for scenarios about every binary.
    pub subject: String,
    /// The figures, e.g. `events 1000000 kills 10 lost 0 ...`.
    pub figures: String,
    /// Whether every check held.
    pub pass: bool,
    /// Why it was not run, if it was not.
    pub skipped: Option<String>,
    /// What went wrong, one line each.
    pub problems: Vec<String>,
}

impl Outcome {
    /// A passed or failed outcome.
    pub fn new(
        scenario: Scenario,
        subject: &str,
        figures: String,
        problems: Vec<String>,
    ) -> Outcome {
        Outcome {
            scenario: scenario.name(),
            subject: subject.to_string(),
            figures,
            pass: problems.is_empty(),
            skipped: None,
            problems,
        }
    }

    /// A scenario that could not run here (counts as neither pass nor fail).
    pub fn skipped(scenario: Scenario, subject: &str, why: String) -> Outcome {
        Outcome {
            scenario: scenario.name(),
            subject: subject.to_string(),
            figures: String::new(),
            pass: true,
            skipped: Some(why),
            problems: Vec::new(),
        }
    }

    /// A scenario that broke down before it could measure anything.
    pub fn error(scenario: Scenario, subject: &str, e: &anyhow::Error) -> Outcome {
        Outcome::new(
            scenario,
            subject,
            "harness error".into(),
            vec![format!("{e:#}")],
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.skipped {
            return write!(f, "{} {}: SKIPPED ({why})", self.scenario, self.subject);
        }
        write!(
            f,
            "{} {}: {} {}",
            self.scenario,
            self.subject,
            self.figures,
            if self.pass { "PASS" } else { "FAIL" }
        )?;
        for p in &self.problems {
            write!(f, "\n    problem: {p}")?;
        }
        Ok(())
    }
}

/// Runs the configured scenarios, printing each outcome as soon as it is
/// known, and returns them all.
pub fn run(config: &Config) -> Result<Vec<Outcome>> {
    std::fs::create_dir_all(&config.out)?;
    for bin in ["producer", "consumer-pull", "consumer-push"] {
        if !config.bin_dir.join(bin).is_file() {
            bail!(
                "{} is missing; build with: cargo build --release -p banking-producer -p consumer-pull -p consumer-push (or set BIN_DIR)",
                config.bin_dir.join(bin).display()
            );
        }
    }
    let mut all = Vec::new();
    for sc in &config.scenarios {
        let outcomes = scenarios::run(config, *sc);
        for o in &outcomes {
            println!("{o}");
        }
        all.extend(outcomes);
    }
    Ok(all)
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(19_092)
}

/// Whether Tansu is installed.
pub fn tansu_installed() -> bool {
    banking_testkit::Tansu::installed()
}

/// For the tests: the directory of the producer and consumer binaries of
/// this build (`target/<profile>`), built first when any of them is missing
/// or older than the running test binary (a plain `cargo test -p
/// banking-chaos` builds the libraries the test links, not the binaries it
/// spawns, which would otherwise be stale).
pub fn test_bin_dir() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    BUILD.call_once(|| {
        let built = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let test_built = built(&exe);
        let stale = ["producer", "consumer-pull", "consumer-push"]
            .iter()
            .any(|b| match (built(&dir.join(b)), test_built) {
                (None, _) => true,
                (Some(bin), Some(test)) => bin < test,
                (Some(_), None) => false,
            });
        if stale {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args([
                "build",
                "-p",
                "banking-producer",
                "-p",
                "consumer-pull",
                "-p",
                "consumer-push",
            ]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build of the binaries failed");
        }
    });
    dir
}
