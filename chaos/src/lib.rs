//! The fault suite (issue 6): runs the real binaries (`producer`,
//! `consumer-pull`, `consumer-push`) against Apache Kafka while faults are
//! injected, then checks every consumer's database against the produced
//! events with the one verification of the harness
//! ([`testkit::verify`]).
//!
//! Each scenario exists once, here, built on the harness
//! ([`testkit`]: brokers, binaries, processes, verification).
//! `scripts/chaos.sh` runs them with big numbers ([`Config::new`]); the
//! tests run the same code with small ones ([`short_run`]): the consumer
//! crates' tests the scenarios about one consumer, `tests/chaos.rs` the
//! ones about the broker and the command lines.
//!
//! Each scenario prints one line of figures, e.g.
//! `kill9 pull: events 1000000 kills 10 restarts 10 lost 0 duplicated 0 wrong_balances 0 PASS`.
//! A scenario passes only when nothing is lost, nothing duplicated, no
//! balance is wrong and its own fault-specific checks hold.
//!
//! `scripts/chaos.sh` is the front door; `chaos --help` lists the flags.

#![deny(missing_docs)]

pub mod scenarios;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use testkit::{Bins, Model};

/// One scenario of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Bad command lines and files (issue 6, item 6), plus the cheap
    /// security checks.
    BadInput,
    /// No fault: every event stored exactly once, the stats complete, and
    /// the database (not Kafka) says where to resume.
    FullRun,
    /// `kill -9` at random moments, restarted each time (item 1).
    Kill9,
    /// SIGTERM mid-run: the open batch committed on the way out, within the
    /// 5 s bound, and a restart that continues where it stopped.
    Sigterm,
    /// Two instances in one group, each with its own database.
    TwoInstances,
    /// 1% bad messages of every kind (item 4).
    BadMessages,
    /// The broker unreachable at start (item 3).
    NoBroker,
    /// The database locked by another process (item 5, first half).
    DbLock,
    /// The disk fills up (item 5, second half).
    DiskFull,
    /// The broker stopped in the middle of a run, then restarted on the
    /// same data (item 2).
    Outage,
    /// Offsets skipped on purpose are recorded, never silent: events the
    /// broker deleted before they were read stop the consumer unless
    /// `--accept-data-loss`, and a hand-over from another instance is
    /// recorded (issue 15).
    OffsetGaps,
    /// Operator moves (a restored backup, a new `--db`, a recreated topic,
    /// `auto.offset.reset=latest`) and a cooperative revocation: every
    /// start position proven or refused with the flag that accepts it
    /// (issue 23).
    StartPositions,
    /// On a three-node cluster: `kill -9` of the node leading the most
    /// partitions, during a backlog drain and during live production
    /// (issue 16).
    LeaderKill,
    /// On a three-node cluster: each node stopped and restarted in turn
    /// during live production.
    RollingRestart,
    /// On a three-node cluster: several instances per group, each with its
    /// own database and instance id; one killed and restarted, one killed
    /// for good, one joining.
    ScaleOut,
    /// On a three-node cluster: two nodes down; the producer gives up
    /// within its timeout, nothing acknowledged is lost.
    MinorityLoss,
    /// On a three-node cluster: a rebalance while the database is locked
    /// longer than `max.poll.interval.ms`.
    SlowRevoke,
}

impl Scenario {
    /// Every scenario, in the order they run by default.
    pub const ALL: [Scenario; 17] = [
        Scenario::BadInput,
        Scenario::FullRun,
        Scenario::Kill9,
        Scenario::Sigterm,
        Scenario::TwoInstances,
        Scenario::BadMessages,
        Scenario::NoBroker,
        Scenario::DbLock,
        Scenario::DiskFull,
        Scenario::Outage,
        Scenario::OffsetGaps,
        Scenario::StartPositions,
        Scenario::LeaderKill,
        Scenario::RollingRestart,
        Scenario::ScaleOut,
        Scenario::MinorityLoss,
        Scenario::SlowRevoke,
    ];

    /// The name used on the command line and in the figures.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::BadInput => "bad-input",
            Scenario::FullRun => "full-run",
            Scenario::Kill9 => "kill9",
            Scenario::Sigterm => "sigterm",
            Scenario::TwoInstances => "two-instances",
            Scenario::BadMessages => "bad-messages",
            Scenario::NoBroker => "no-broker",
            Scenario::DbLock => "db-lock",
            Scenario::DiskFull => "disk-full",
            Scenario::Outage => "outage",
            Scenario::OffsetGaps => "offset-gaps",
            Scenario::StartPositions => "start-positions",
            Scenario::LeaderKill => "leader-kill",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::ScaleOut => "scale-out",
            Scenario::MinorityLoss => "minority-loss",
            Scenario::SlowRevoke => "slow-revoke",
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

/// Parses a comma-separated list of consumers (`pull`, `push`).
pub fn parse_models(s: &str) -> Result<Vec<Model>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            testkit::bins::MODELS
                .into_iter()
                .find(|m| m.name() == p)
                .ok_or_else(|| anyhow::anyhow!("unknown consumer {p:?} (expected pull or push)"))
        })
        .collect()
}

/// The broker of the scenarios that do not stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Apache Kafka, one for the whole run ([`testkit::Kafka::shared`]).
    Kafka,
    /// Nisshi, the embedded Rust broker ([`testkit::Nisshi`]), a
    /// new one per scenario, in memory, and on SQLite for `outage`: the
    /// fallback where Java is absent, selected with `chaos --broker
    /// nisshi`.
    Nisshi,
    /// librdkafka's mock cluster, a new one per scenario: hermetic tests
    /// only (no JVM needed), never the only proof of a guarantee.
    Mock,
}

impl BrokerKind {
    /// The name used on the command line (`--broker`).
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Kafka => "kafka",
            BrokerKind::Nisshi => "nisshi",
            BrokerKind::Mock => "mock",
        }
    }

    /// Parses `kafka`, `nisshi` or `mock`.
    pub fn parse(s: &str) -> Result<BrokerKind> {
        [BrokerKind::Kafka, BrokerKind::Nisshi, BrokerKind::Mock]
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown broker {s:?} (expected kafka, nisshi or mock)"))
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
    pub consumers: Vec<Model>,
    /// Working directory: databases, logs, stats, private brokers.
    pub out: PathBuf,
    /// The producer and consumer binaries.
    pub bins: Bins,
    /// The broker of the scenarios (`no-broker` and `offset-gaps` always
    /// start a private Apache Kafka; `outage` a private broker of this
    /// kind when Nisshi, else Apache Kafka).
    pub broker: BrokerKind,
    /// Seed of the events (and of the random moments).
    pub seed: u64,
    /// Accounts the events are spread over.
    pub accounts: u64,
    /// Partitions of the topic.
    pub partitions: i32,
    /// `kill -9`s per consumer.
    pub kills: u32,
    /// Seconds the broker is down mid-run.
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
    /// Events per second of the live parts of the cluster scenarios (lower
    /// when there are too few events to last the scenario).
    pub live_rate: u64,
}

impl Config {
    /// Defaults for `events` events in `out`, on Apache Kafka.
    pub fn new(events: u64, out: &Path, bins: Bins) -> Config {
        Config {
            events,
            scenarios: Scenario::ALL.to_vec(),
            consumers: testkit::bins::MODELS.to_vec(),
            out: out.to_path_buf(),
            bins,
            broker: BrokerKind::Kafka,
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
            live_rate: 20_000,
        }
    }

    /// The small sizes of the tests, for `consumers`, with the binaries of
    /// this build: 20,000 events over 2,000 accounts in batches of 1,000,
    /// 3 kills, a 3 s lock, the broker absent 5 s and down 6 s, and
    /// throughput reported but not judged (a run of 20,000 events is too
    /// short to measure it).
    pub fn short(out: &Path, consumers: &[Model]) -> Config {
        let mut cfg = Config::new(20_000, out, Bins::of_this_build());
        cfg.consumers = consumers.to_vec();
        cfg.accounts = 2_000;
        cfg.batch_size = Some(1_000);
        cfg.kills = 3;
        cfg.lock_secs = 3;
        cfg.no_broker_secs = 5;
        cfg.outage_secs = 6;
        cfg.throughput_tolerance = 1.0;
        cfg.throughput_rounds = 1;
        cfg
    }

    /// The consumers' extra arguments every scenario passes.
    pub fn batch_args(&self) -> Vec<String> {
        match self.batch_size {
            Some(n) => vec!["--batch-size".into(), n.to_string()],
            None => Vec::new(),
        }
    }
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

/// For the tests: runs `sc` with the small sizes ([`Config::short`]) for
/// `consumers` on `broker`, in a temporary directory (kept when it
/// fails), prints its lines (`SKIPPED <test>: <why>` when it could not run
/// here) and fails on any failed outcome.
pub fn short_run(
    test: &str,
    sc: Scenario,
    consumers: &[Model],
    broker: BrokerKind,
) -> Vec<Outcome> {
    let out = tempfile::Builder::new()
        .prefix(&format!("chaos-{}-", sc.name()))
        .tempdir()
        .expect("temp dir");
    let mut cfg = Config::short(out.path(), consumers);
    cfg.broker = broker;
    let outcomes = scenarios::run(&cfg, sc);
    for o in &outcomes {
        match &o.skipped {
            Some(why) => testkit::skip(test, why),
            None => eprintln!("{o}"),
        }
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.pass)
        .map(|o| o.to_string())
        .collect();
    if !failed.is_empty() {
        panic!(
            "failed (files kept in {}):\n{}",
            out.keep().display(),
            failed.join("\n")
        );
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_names_round_trip_and_unknown_ones_are_refused() {
        for kind in [BrokerKind::Kafka, BrokerKind::Nisshi, BrokerKind::Mock] {
            assert_eq!(BrokerKind::parse(kind.name()).unwrap(), kind);
        }
        let err = BrokerKind::parse("redpanda").unwrap_err().to_string();
        assert!(err.contains("redpanda") && err.contains("nisshi"), "{err}");
    }
}
