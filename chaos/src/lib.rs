//! The fault suite (chaos/README.md): each scenario exists once, in
//! [`scenarios`]; `scripts/chaos.sh` runs them with big numbers
//! ([`Options`]), the tests with small ones ([`short_run`]).

pub mod scenarios;

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, ensure};
use clap::{Parser, ValueEnum};
use testkit::{Bins, Model};

/// The scenarios (chaos/README.md), in the order they run by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    BadInput,
    FullRun,
    Kill9,
    Sigterm,
    TwoInstances,
    BadMessages,
    NoBroker,
    DbLock,
    DiskFull,
    Outage,
    OffsetGaps,
    StartPositions,
    LeaderKill,
    RollingRestart,
    ScaleOut,
    MinorityLoss,
    SlowRevoke,
}

impl Scenario {
    pub fn name(self) -> String {
        self.to_possible_value()
            .expect("no skipped variant")
            .get_name()
            .to_string()
    }

    pub fn parse_list(s: &str) -> Result<Vec<Scenario>> {
        let all = Scenario::value_variants();
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let known = || all.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
            match part {
                "all" => out.extend(all),
                _ => {
                    out.push(Scenario::from_str(part, false).map_err(|_| {
                        anyhow!("unknown scenario {part:?}; known: all, {}", known())
                    })?)
                }
            }
        }
        ensure!(!out.is_empty(), "no scenario given");
        Ok(out)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

pub fn parse_model(s: &str) -> Result<Model> {
    Model::ALL
        .into_iter()
        .find(|m| m.name() == s.trim())
        .ok_or_else(|| anyhow!("unknown consumer {s:?} (expected pull or push)"))
}

/// The broker of the scenarios that do not stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// Apache Kafka, one JVM for the whole run.
    Kafka,
    /// Nisshi, the embedded Rust broker: a new one per scenario.
    Nisshi,
    /// librdkafka's mock cluster: proves nothing alone.
    Mock,
}

/// Runs the project's binaries against Apache Kafka (started here) while
/// faults are injected, and checks that every consumer's database holds
/// exactly the produced events: nothing lost, nothing duplicated, every
/// balance right. Prints one line of figures per scenario and consumer;
/// exits 1 if any scenario failed. chaos/README.md describes each one.
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
    /// The broker. no-broker, offset-gaps, start-positions and the cluster
    /// scenarios always run on Apache Kafka, and outage does unless
    /// `nisshi` (then on SQLite, whose log survives the restart).
    #[arg(long, value_enum, default_value = "kafka")]
    pub broker: BrokerKind,
    /// Working directory (databases, logs, brokers); its scenario
    /// subdirectories are replaced on each run.
    #[arg(long, default_value = ".run/chaos")]
    pub out: PathBuf,
    /// Directory with the producer and consumer binaries (default: this
    /// binary's).
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
    /// Largest accepted loss of throughput with 1% bad messages (fraction).
    #[arg(long, default_value_t = 0.2)]
    pub throughput_tolerance: f64,
    /// Clean and bad runs per consumer in bad-messages; the best compared.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub throughput_rounds: u32,
    /// Size of the oversized bad messages in bytes (~100× a valid event).
    #[arg(long, default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(256..=900_000))]
    pub oversized_bytes: u64,
    /// --batch-size passed to the consumers (default: theirs).
    #[arg(long)]
    pub batch_size: Option<u64>,
    /// Events per second of the live parts of the cluster scenarios.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub live_rate: u64,
    /// Apache Kafka's jars, as scripts/setup.sh installs them (default:
    /// ~/.cache/banking-pipeline/kafka-<version>).
    #[arg(long, env = "KAFKA_HOME_DIR")]
    pub kafka_home: Option<PathBuf>,
}

/// A run of the suite: the options and the binaries they name.
#[derive(Debug, Clone)]
pub struct Config {
    pub options: Options,
    pub bins: Bins,
}

impl Deref for Config {
    type Target = Options;
    fn deref(&self) -> &Options {
        &self.options
    }
}

impl Config {
    /// The tests' small sizes, with the binaries of this build; throughput
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
}

/// The verdict of one scenario for one subject: a consumer, `producer` or
/// `all`.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    pub subject: String,
    /// The figures, e.g. `events 1000000 kills 10 lost 0 ...`.
    pub figures: String,
    /// Why it could not run here (neither pass nor fail).
    pub skipped: Option<String>,
    /// What went wrong, one line each: it passed when there is none.
    pub problems: Vec<String>,
}

impl Outcome {
    pub fn new(sc: Scenario, subject: &str, figures: String, problems: Vec<String>) -> Outcome {
        let (scenario, subject, skipped) = (sc, subject.to_string(), None);
        Outcome {
            scenario,
            subject,
            figures,
            skipped,
            problems,
        }
    }

    pub fn skipped(sc: Scenario, subject: &str, why: String) -> Outcome {
        let skipped = Some(why);
        Outcome {
            skipped,
            ..Outcome::new(sc, subject, String::new(), Vec::new())
        }
    }

    /// A scenario that broke down before it could measure anything.
    pub fn error(sc: Scenario, subject: &str, e: &anyhow::Error) -> Outcome {
        Outcome::new(sc, subject, "harness error".into(), vec![format!("{e:#}")])
    }

    pub fn failed(&self) -> bool {
        self.skipped.is_none() && !self.problems.is_empty()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scenario, subject) = (self.scenario, &self.subject);
        if let Some(why) = &self.skipped {
            return write!(f, "{scenario} {subject}: SKIPPED ({why})");
        }
        let verdict = if self.failed() { "FAIL" } else { "PASS" };
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
        .filter(|o| o.failed())
        .map(|o| o.to_string())
        .collect();
    if !failed.is_empty() {
        let (kept, failed) = (out.keep(), failed.join("\n"));
        panic!("failed (files kept in {}):\n{failed}", kept.display());
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
