//! The fault suite: runs the real binaries (`producer`, `consumer-pull`,
//! `consumer-push`) against Apache Kafka while faults are injected, then
//! checks every consumer's database against the produced events with the
//! harness's one verification ([`testkit::verify`]).
//!
//! Each scenario exists once, in [`scenarios`]. `scripts/chaos.sh` runs
//! them with big numbers ([`Options`], the command line); the tests run the
//! same code with small ones ([`short_run`]). A scenario passes only when
//! nothing is lost, nothing duplicated, no balance is wrong and its own
//! fault-specific checks hold; it prints one line of figures, e.g.
//! `kill9 pull: events 1000000 kills 10 restarts 10 lost 0 duplicated 0 wrong_balances 0 PASS`.

pub mod scenarios;

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use testkit::{Bins, Model};

/// One scenario of the suite, in the order they run by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Bad command lines and files, and `--help` never showing a secret.
    BadInput,
    /// No fault: every event stored once, the stats complete, the database
    /// (not Kafka) says where to resume.
    FullRun,
    /// `kill -9` at random moments, restarted each time.
    Kill9,
    /// SIGTERM mid-run: the open batch committed within 5 s, the restart
    /// continues where it stopped.
    Sigterm,
    /// Two instances in one group, each with its own database.
    TwoInstances,
    /// 1% bad messages of every kind.
    BadMessages,
    /// The broker unreachable at start.
    NoBroker,
    /// The database locked by another process.
    DbLock,
    /// The disk fills up.
    DiskFull,
    /// The broker stopped mid-run, then restarted on the same data.
    Outage,
    /// Offsets skipped on purpose are recorded or refused, never silent.
    OffsetGaps,
    /// Operator moves (a restored backup, a new `--db`, a recreated topic,
    /// `auto.offset.reset=latest`) and a cooperative revocation.
    StartPositions,
    /// Three nodes: `kill -9` of the busiest leader, during a drain and live.
    LeaderKill,
    /// Three nodes: each stopped and restarted in turn, live.
    RollingRestart,
    /// Three nodes: several instances per group; killed, lost, joining.
    ScaleOut,
    /// Three nodes: two down; nothing acknowledged is lost.
    MinorityLoss,
    /// Three nodes: a rebalance while the database is locked longer than
    /// `max.poll.interval.ms`.
    SlowRevoke,
}

impl Scenario {
    /// The name on the command line and in the figures (`kill9`, `db-lock`).
    pub fn name(self) -> String {
        self.to_possible_value()
            .expect("no skipped variant")
            .get_name()
            .to_string()
    }

    /// Parses a comma-separated list of names, or `all`.
    pub fn parse_list(s: &str) -> Result<Vec<Scenario>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => out.extend(Scenario::value_variants()),
                _ => out.push(Scenario::from_str(part, false).map_err(|_| {
                    let known: Vec<_> = Scenario::value_variants()
                        .iter()
                        .map(|s| s.name())
                        .collect();
                    anyhow!(
                        "unknown scenario {part:?}; known: all, {}",
                        known.join(", ")
                    )
                })?),
            }
        }
        if out.is_empty() {
            bail!("no scenario given");
        }
        Ok(out)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Parses `pull` or `push`.
pub fn parse_model(s: &str) -> Result<Model> {
    Model::ALL
        .into_iter()
        .find(|m| m.name() == s.trim())
        .ok_or_else(|| anyhow!("unknown consumer {s:?} (expected pull or push)"))
}

/// The broker of the scenarios that do not stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// Apache Kafka, one JVM for the whole run ([`testkit::Kafka::shared`]).
    Kafka,
    /// Nisshi, the embedded Rust broker, where Java is absent: a new one
    /// in memory per scenario, on SQLite for `outage`.
    Nisshi,
    /// librdkafka's mock cluster, a new one per scenario: hermetic tests
    /// only, never the only proof of a guarantee.
    Mock,
}

/// Runs the project's binaries against Apache Kafka (one broker for the
/// run, started here from the jars scripts/setup.sh installs; a private one
/// for the scenarios that stop it or start it late; a cluster of three for
/// leader-kill, rolling-restart, scale-out, minority-loss and slow-revoke)
/// while faults are injected (kill -9, SIGTERM, a second instance, broker
/// outages, nodes lost, bad messages, a locked or full database, bad
/// command lines) and checks that every consumer's database holds exactly
/// the produced events: nothing lost, nothing duplicated, every balance
/// right. Prints one line of figures per scenario and consumer; exits 1 if
/// any scenario failed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chaos",
    version,
    after_help = "Scenarios (in the default order): bad-input, full-run, kill9, sigterm, \
two-instances, bad-messages, no-broker, db-lock, disk-full, outage, offset-gaps, \
start-positions, leader-kill, rolling-restart, scale-out, minority-loss, slow-revoke.\n\nExamples:\n  \
scripts/chaos.sh --events 1000000 --scenarios kill9,bad-messages\n  \
scripts/chaos.sh --broker nisshi --events 100000 --scenarios kill9,sigterm"
)]
pub struct Options {
    /// Good events per scenario.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=50_000_000))]
    pub events: u64,
    /// Comma-separated scenarios, or `all`.
    // `::std::vec::Vec` keeps clap from reading one scenario per value.
    #[arg(long, default_value = "all", value_parser = Scenario::parse_list)]
    pub scenarios: ::std::vec::Vec<Scenario>,
    /// Comma-separated consumers: pull, push.
    #[arg(long, default_value = "pull,push", value_delimiter = ',', value_parser = parse_model)]
    pub consumers: Vec<Model>,
    /// The broker: `kafka` (Apache Kafka), `nisshi` (the embedded Rust
    /// broker, where Java is absent; for outage a private one on SQLite,
    /// whose log survives its restart), or `mock` (librdkafka's mock
    /// cluster; proves nothing alone). no-broker, offset-gaps,
    /// start-positions and the cluster scenarios always run on a private
    /// Apache Kafka, and outage does unless `nisshi`.
    #[arg(long, value_enum, default_value = "kafka")]
    pub broker: BrokerKind,
    /// Working directory: databases, logs, stats files, the brokers' data
    /// and logs. Its scenario subdirectories are replaced on each run.
    #[arg(long, default_value = ".run/chaos")]
    pub out: PathBuf,
    /// Directory with the producer, consumer-pull and consumer-push
    /// binaries (default: the directory of this binary).
    #[arg(long, env = "BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Seed of the events and of the random moments.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Accounts the events are spread over.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub accounts: u64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=64))]
    pub partitions: i32,
    /// kill -9 per consumer in the kill9 scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub kills: u32,
    /// Seconds the broker is down in the outage scenario.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub outage_secs: u64,
    /// Seconds the consumers run before the broker appears (no-broker).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub no_broker_secs: u64,
    /// Seconds the database is locked in db-lock.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub lock_secs: u64,
    /// Largest accepted loss of consumer throughput with 1% bad messages,
    /// as a fraction of the clean run's.
    #[arg(long, default_value_t = 0.2)]
    pub throughput_tolerance: f64,
    /// Clean and bad runs per consumer in bad-messages (alternating); the
    /// best throughput of each kind is compared.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub throughput_rounds: u32,
    /// Size of the oversized bad messages in bytes (bad-messages). The
    /// default, 16 KiB, is about a hundred times the largest valid event.
    #[arg(long, default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(256..=900_000))]
    pub oversized_bytes: u64,
    /// --batch-size passed to the consumers (default: theirs).
    #[arg(long)]
    pub batch_size: Option<u64>,
    /// Events per second of the live parts of the cluster scenarios; lower
    /// when there are too few events for the scenario to last.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub live_rate: u64,
    /// Apache Kafka's installation (its `libs/` jars), as scripts/setup.sh
    /// makes it (default: ~/.cache/banking-pipeline/kafka-<version>).
    #[arg(long, env = "KAFKA_HOME_DIR")]
    pub kafka_home: Option<PathBuf>,
}

/// A run of the suite: the options and the binaries they name.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the command line (or [`Config::short`]) says.
    pub options: Options,
    /// The producer and consumer binaries.
    pub bins: Bins,
}

impl Deref for Config {
    type Target = Options;
    fn deref(&self) -> &Options {
        &self.options
    }
}

impl Config {
    /// The small sizes of the tests, with the binaries of this build:
    /// 20,000 events over 2,000 accounts in batches of 1,000, 3 kills, a
    /// 3 s lock, the broker absent 5 s and down 6 s, and throughput
    /// reported but not judged (20,000 events are too few to measure it).
    pub fn short(out: &Path, consumers: &[Model], broker: BrokerKind) -> Config {
        let mut options = Options::parse_from(
            "chaos --events 20000 --accounts 2000 --batch-size 1000 --kills 3 --lock-secs 3 \
             --no-broker-secs 5 --outage-secs 6 --throughput-tolerance 1 --throughput-rounds 1"
                .split(' '),
        );
        options.out = out.to_path_buf();
        options.consumers = consumers.to_vec();
        options.broker = broker;
        Config {
            options,
            bins: Bins::of_this_build(),
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

/// The verdict of one scenario for one consumer (or for all binaries).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario.
    pub scenario: Scenario,
    /// `pull`, `push`, or `producer`/`all` for scenarios about every binary.
    pub subject: String,
    /// The figures, e.g. `events 1000000 kills 10 lost 0 ...`.
    pub figures: String,
    /// Whether every check held.
    pub pass: bool,
    /// Why it was not run, if it was not (neither pass nor fail).
    pub skipped: Option<String>,
    /// What went wrong, one line each.
    pub problems: Vec<String>,
}

impl Outcome {
    /// A passed or failed outcome: failed when there are problems.
    pub fn new(
        scenario: Scenario,
        subject: &str,
        figures: String,
        problems: Vec<String>,
    ) -> Outcome {
        let pass = problems.is_empty();
        let subject = subject.to_string();
        Outcome {
            scenario,
            subject,
            figures,
            pass,
            skipped: None,
            problems,
        }
    }

    /// A scenario that could not run here.
    pub fn skipped(scenario: Scenario, subject: &str, why: String) -> Outcome {
        Outcome {
            skipped: Some(why),
            ..Outcome::new(scenario, subject, String::new(), Vec::new())
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
        let (scenario, subject) = (self.scenario, &self.subject);
        if let Some(why) = &self.skipped {
            return write!(f, "{scenario} {subject}: SKIPPED ({why})");
        }
        let verdict = if self.pass { "PASS" } else { "FAIL" };
        write!(f, "{scenario} {subject}: {} {verdict}", self.figures)?;
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
        outcomes.iter().for_each(|o| println!("{o}"));
        all.extend(outcomes);
    }
    Ok(all)
}

/// For the tests: runs `sc` with the small sizes ([`Config::short`]) for
/// `consumers` on `broker`, in a temporary directory (kept when it
/// fails), prints its lines ([`testkit::skip`] when it could not run here)
/// and fails on any failed outcome.
pub fn short_run(
    test: &str,
    sc: Scenario,
    consumers: &[Model],
    broker: BrokerKind,
) -> Vec<Outcome> {
    let out = tempfile::Builder::new()
        .prefix(&format!("chaos-{sc}-"))
        .tempdir()
        .expect("temp dir");
    let outcomes = scenarios::run(&Config::short(out.path(), consumers, broker), sc);
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

/// One consumer binary's end-to-end tests, written once for both:
/// `consumer-pull/tests/end_to_end.rs` is `chaos::consumer_tests!(Model::Pull);`.
/// The scenarios about one consumer with small numbers on Apache Kafka (one
/// broker per test process, a topic and group per scenario), the full run
/// again on librdkafka's mock cluster (hermetic, never the only proof),
/// `--ready-file`, and the metrics against the database.
#[macro_export]
macro_rules! consumer_tests {
    ($model:expr) => {
        $crate::consumer_tests! { $model;
            stores_every_event_exactly: FullRun on Kafka,
            kill_9_mid_run_then_restart_is_exact: Kill9 on Kafka,
            sigterm_commits_the_open_batch_and_restart_continues: Sigterm on Kafka,
            two_instances_in_one_group_store_each_event_once: TwoInstances on Kafka,
            bad_messages_go_to_dead_letters: BadMessages on Kafka,
            waits_out_a_write_lock: DbLock on Kafka,
            skipped_offsets_are_recorded_never_silent: OffsetGaps on Kafka,
            start_positions_are_proven_or_refused: StartPositions on Kafka,
            stores_every_event_exactly_on_the_mock_cluster: FullRun on Mock,
        }

        #[test]
        fn the_ready_file_is_written_after_the_assignment() {
            $crate::scenarios::ready::ready_file_test("the_ready_file_is_written_after_the_assignment", $model);
        }

        #[test]
        fn metrics_match_the_database_while_events_flow() {
            testkit::metrics::metrics_match_the_database("metrics_match_the_database_while_events_flow", $model)
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
    };
    ($model:expr; $($test:ident: $scenario:ident on $broker:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            $crate::short_run(stringify!($test), $crate::Scenario::$scenario, &[$model], $crate::BrokerKind::$broker);
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip_and_unknown_ones_are_refused() {
        assert_eq!(Scenario::Kill9.name(), "kill9");
        assert_eq!(
            Scenario::parse_list("db-lock, kill9").unwrap(),
            [Scenario::DbLock, Scenario::Kill9]
        );
        assert_eq!(
            Scenario::parse_list("all").unwrap().len(),
            Scenario::value_variants().len()
        );
        let err = Scenario::parse_list("kill-9").unwrap_err().to_string();
        assert!(
            err.contains("kill-9") && err.contains("slow-revoke"),
            "{err}"
        );
        <Options as clap::CommandFactory>::command().debug_assert();
    }
}
