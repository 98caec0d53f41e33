//! The scenarios, one module each, and what they share.

mod bad_input;
mod bad_messages;
mod cluster;
mod db_faults;
mod full_run;
mod kill9;
mod no_broker;
mod offset_gaps;
mod outage;
pub mod ready;
mod sigterm;
mod start_positions;
mod two_instances;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;

use anyhow::{Context, Result, anyhow};
use testkit::nisshi::{self, Storage};
use testkit::procs::{GENEROUS, SECRET, files_showing};
use testkit::verify::{Figures, row_count};
use testkit::{
    Broker, ConsumerCmd, Expected, Kafka, MockKafka, Model, Nisshi, ProducerCmd, ProducerStats,
    kafka,
};

use crate::{BrokerKind, Config, Outcome, Scenario};

/// Runs one scenario; never panics, a harness failure is a failed outcome.
pub fn run(cfg: &Config, sc: Scenario) -> Vec<Outcome> {
    let needs = match sc {
        Scenario::BadInput => None,
        Scenario::NoBroker
        | Scenario::OffsetGaps
        | Scenario::StartPositions
        | Scenario::LeaderKill
        | Scenario::RollingRestart
        | Scenario::ScaleOut
        | Scenario::MinorityLoss
        | Scenario::SlowRevoke => Some(BrokerKind::Kafka),
        Scenario::Outage if cfg.broker == BrokerKind::Nisshi => Some(BrokerKind::Nisshi),
        Scenario::Outage => Some(BrokerKind::Kafka),
        _ => Some(cfg.broker),
    };
    let available = match needs {
        Some(BrokerKind::Kafka) => kafka::available().map(drop),
        Some(BrokerKind::Nisshi) => nisshi::available().map(drop),
        Some(BrokerKind::Mock) | None => Ok(()),
    };
    if let Err(why) = available {
        return vec![Outcome::skipped(sc, "all", format!("{why:#}"))];
    }
    let result = match sc {
        Scenario::BadInput => bad_input::run(cfg),
        Scenario::FullRun => full_run::run(cfg),
        Scenario::Kill9 => kill9::run(cfg),
        Scenario::Sigterm => sigterm::run(cfg),
        Scenario::TwoInstances => two_instances::run(cfg),
        Scenario::BadMessages => bad_messages::run(cfg),
        Scenario::NoBroker => no_broker::run(cfg),
        Scenario::DbLock => db_faults::lock(cfg),
        Scenario::DiskFull => db_faults::disk_full(cfg),
        Scenario::Outage => outage::run(cfg),
        Scenario::OffsetGaps => offset_gaps::run(cfg),
        Scenario::StartPositions => start_positions::run(cfg),
        Scenario::LeaderKill => cluster::leader_kill(cfg),
        Scenario::RollingRestart => cluster::rolling_restart(cfg),
        Scenario::ScaleOut => cluster::scale_out(cfg),
        Scenario::MinorityLoss => cluster::minority_loss(cfg),
        Scenario::SlowRevoke => cluster::slow_revoke(cfg),
    };
    result.unwrap_or_else(|e| vec![Outcome::error(sc, "all", &e)])
}

/// A fresh directory under `--out`.
pub(crate) fn fresh_dir(cfg: &Config, name: &str) -> Result<PathBuf> {
    let dir = cfg.out.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// `<dir>/<name>`, made.
pub(crate) fn sub(dir: &Path, name: &str) -> Result<PathBuf> {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
    Ok(d)
}

/// The broker of the scenarios that do not stop it: the process's Apache
/// Kafka, or a new Nisshi in memory or mock cluster.
pub(crate) fn broker(cfg: &Config) -> Result<Box<dyn Broker>> {
    Ok(match cfg.broker {
        BrokerKind::Kafka => Box::new(Kafka::shared()?),
        BrokerKind::Nisshi => {
            let dir = cfg.out.join(kafka::unique("nisshi"));
            Box::new(Nisshi::start_in_dir(&dir, Storage::Memory)?)
        }
        BrokerKind::Mock => Box::new(MockKafka::new()?),
    })
}

/// A new topic of `cfg.partitions` partitions, named after `what`.
pub(crate) fn topic(cfg: &Config, broker: &dyn Broker, what: &str) -> Result<String> {
    let topic = kafka::unique(&format!("chaos.{what}"));
    broker.create_topic(&topic, cfg.partitions)?;
    Ok(topic)
}

/// Consumer `model` of `sc` in a group of its own, files in `dir`.
pub(crate) fn consumer(
    cfg: &Config,
    sc: Scenario,
    model: Model,
    brokers: &str,
    topic: &str,
    dir: &Path,
) -> ConsumerCmd {
    let group = kafka::unique(&format!("chaos-{}-{}", sc.name(), model.name()));
    let mut cmd = ConsumerCmd::new(model, brokers, topic, &group, dir);
    if let Some(n) = cfg.batch_size {
        cmd.extra = vec!["--batch-size".into(), n.to_string()];
    }
    cmd
}

pub(crate) fn producer(cfg: &Config, brokers: &str, topic: &str) -> ProducerCmd {
    ProducerCmd::new(brokers, topic, cfg.events, cfg.seed, cfg.accounts)
}

/// Runs the producer to the end: `n` events of `cfg.seed` with ids from
/// `first_id`, its files `<dir>/<name>.*`.
pub(crate) fn produce(
    cfg: &Config,
    (brokers, topic): (&str, &str),
    (first_id, n): (u64, u64),
    dir: &Path,
    name: &str,
) -> Result<ProducerStats> {
    let mut cmd = producer(cfg, brokers, topic);
    (cmd.count, cmd.first_id) = (n, first_id);
    cmd.run(&cfg.bins, dir, name)
}

/// A new topic on the process's Apache Kafka holding events 1..=`n`.
pub(crate) struct Filled {
    pub(crate) kafka: &'static Kafka,
    pub(crate) topic: String,
    pub(crate) dir: PathBuf,
    pub(crate) n: u64,
}

impl Filled {
    /// The topic named after `name`, its files in `<dir>/<name>`.
    pub(crate) fn new(
        cfg: &Config,
        dir: &Path,
        name: &str,
        partitions: i32,
        n: u64,
    ) -> Result<Filled> {
        let (kafka, dir) = (Kafka::shared()?, sub(dir, name)?);
        let topic = kafka::unique(&format!("chaos.{name}"));
        kafka.create_topic(&topic, partitions)?;
        produce(cfg, (kafka.bootstrap(), &topic), (1, n), &dir, "producer-1")?;
        Ok(Filled {
            kafka,
            topic,
            dir,
            n,
        })
    }

    /// `more` events after the first `n`; what both runs make.
    pub(crate) fn more(&self, cfg: &Config, more: u64) -> Result<Expected> {
        let (brokers, n) = ((self.kafka.bootstrap(), self.topic.as_str()), self.n);
        produce(cfg, brokers, (n + 1, more), &self.dir, "producer-2")?;
        let runs = [(1, n), (n + 1, more)];
        Ok(Expected::of_runs(cfg.seed, cfg.accounts, &runs))
    }

    /// Consumer `model` of `sc` reading it, its files in the same directory.
    pub(crate) fn consumer(&self, cfg: &Config, sc: Scenario, model: Model) -> ConsumerCmd {
        let (brokers, topic) = (self.kafka.bootstrap(), &self.topic);
        consumer(cfg, sc, model, brokers, topic, &self.dir)
    }
}

/// Where a case of [`cases`] runs: for one consumer, its files in `dir`.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) model: Model,
    pub(crate) dir: &'a Path,
}

/// One case of a scenario made of several: its figures; problems pushed.
pub(crate) type Case = fn(At<'_>, &mut Vec<String>) -> Result<String>;

/// Runs `cases` one after the other for every consumer at once, each
/// consumer's files in `<out>/<sc>/<model>`; figures `<case>: ...; ...`.
pub(crate) fn cases(cfg: &Config, sc: Scenario, cases: &[(&str, Case)]) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, &sc.name())?;
    Ok(per_consumer(cfg, sc, |m| {
        let (dir, mut problems) = (dir.join(m.name()), Vec::new());
        let mut figures = Vec::new();
        for (name, case) in cases {
            let at = At {
                cfg,
                model: m,
                dir: &dir,
            };
            figures.push(format!("{name}: {}", case(at, &mut problems)?));
        }
        Ok(Outcome::new(sc, m.name(), figures.join("; "), problems))
    }))
}

pub(crate) fn expected(cfg: &Config) -> Expected {
    Expected::of(cfg.seed, cfg.accounts, cfg.events)
}

/// What [`while_producing`] gives each consumer.
pub(crate) struct Producing<'a> {
    pub(crate) dir: PathBuf,
    pub(crate) brokers: String,
    pub(crate) topic: String,
    pub(crate) expected: Expected,
    pub(crate) background: &'a Background,
}

/// Runs `one` for every consumer at once while the producer sends
/// `cfg.events` to a topic of `sc`'s own, over about `secs` seconds (0: as
/// fast as it can).
pub(crate) fn while_producing<F>(
    cfg: &Config,
    sc: Scenario,
    secs: u64,
    one: F,
) -> Result<Vec<Outcome>>
where
    F: Fn(&Producing<'_>, Model) -> Result<Outcome> + Sync,
{
    let rate = cfg.events.checked_div(secs).map_or(0, |r| r.max(1));
    let (dir, broker) = (fresh_dir(cfg, &sc.name())?, broker(cfg)?);
    producing_on(cfg, sc, dir, &*broker, rate, one)
}

/// [`while_producing`] on `broker` at `rate` events/s, files in `dir`.
pub(crate) fn producing_on<F>(
    cfg: &Config,
    sc: Scenario,
    dir: PathBuf,
    broker: &dyn Broker,
    rate: u64,
    one: F,
) -> Result<Vec<Outcome>>
where
    F: Fn(&Producing<'_>, Model) -> Result<Outcome> + Sync,
{
    let topic = topic(cfg, broker, &sc.name())?;
    let brokers = broker.bootstrap().to_string();
    let mut produce = producer(cfg, &brokers, &topic);
    produce.rate = rate;
    let background = Background::start(cfg, produce, &dir)?;
    let shared = Producing {
        dir,
        brokers,
        topic,
        expected: expected(cfg),
        background: &background,
    };
    let outcomes = per_consumer(cfg, sc, |m| one(&shared, m));
    background.finished()?;
    Ok(outcomes)
}

/// Runs `f` for every configured consumer at once, one thread each.
pub(crate) fn per_consumer<F>(cfg: &Config, sc: Scenario, f: F) -> Vec<Outcome>
where
    F: Fn(Model) -> Result<Outcome> + Sync,
{
    each(sc, cfg.consumers.iter().map(|&m| (m, m)).collect(), f)
}

/// Runs `f` on the items of every consumer at once, one thread each.
pub(crate) fn each<T: Send, F>(sc: Scenario, items: Vec<(Model, T)>, f: F) -> Vec<Outcome>
where
    F: Fn(T) -> Result<Outcome> + Sync,
{
    let f = &f;
    thread::scope(|s| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|(m, t)| (m, s.spawn(move || f(t))))
            .collect();
        handles
            .into_iter()
            .map(|(m, h)| match h.join() {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => Outcome::error(sc, m.name(), &e),
                Err(_) => Outcome::error(sc, m.name(), &anyhow!("the scenario thread panicked")),
            })
            .collect()
    })
}

/// A problem for each log or stats file of `dir` showing the `-X` secret.
pub(crate) fn secret_leaks(dir: &Path) -> Vec<String> {
    files_showing(dir, SECRET)
        .into_iter()
        .map(|p| format!("the -X secret appears in {}", p.display()))
        .collect()
}

/// A problem for each of `paths` (a database's `-wal` and `-shm` too)
/// that others can read.
pub(crate) fn loose_modes(paths: &[PathBuf]) -> Vec<String> {
    let files = paths
        .iter()
        .flat_map(|p| ["", "-wal", "-shm"].map(|s| format!("{}{s}", p.display())));
    let loose = files.filter_map(|f| {
        let mode = std::fs::metadata(&f).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| format!("{f} has mode {mode:o}, not 0600"))
    });
    loose.collect()
}

/// Run `n` of `cmd` must be refused, its log naming each of `needles`, its
/// database unchanged; whether it was refused.
pub(crate) fn refused(
    cfg: &Config,
    cmd: &ConsumerCmd,
    n: u32,
    needles: &[&str],
    what: &str,
    problems: &mut Vec<String>,
) -> Result<bool> {
    let before = row_count(&cmd.db);
    let mut p = cmd.spawn(&cfg.bins, n, &[])?;
    let refused = !p.wait(GENEROUS)?.success();
    check(problems, refused, || {
        format!("{what}: the consumer exited 0 instead of refusing")
    });
    let log = p.log_text();
    for needle in needles.iter().filter(|n| !log.contains(*n)) {
        problems.push(format!(
            "{what}: the error does not say {needle:?}: {}",
            p.log_tail(5)
        ));
    }
    let after = row_count(&cmd.db);
    check(problems, after == before, || {
        format!("{what}: the refused start changed the rows from {before} to {after}")
    });
    Ok(refused)
}

/// A problem unless the databases are exact and hold `expected_events`.
pub(crate) fn exactness(figures: &Figures, expected_events: u64, problems: &mut Vec<String>) {
    if !figures.exact() || figures.events != expected_events {
        problems.push(format!(
            "database holds {} events of {expected_events}: {}",
            figures.events,
            figures.brief()
        ));
    }
}

/// A problem unless `what` holds.
pub(crate) fn check(problems: &mut Vec<String>, ok: bool, what: impl FnOnce() -> String) {
    if !ok {
        problems.push(what());
    }
}

/// A producer in the background that several threads wait for.
pub(crate) struct Background {
    cmd: ProducerCmd,
    state: std::sync::Mutex<(testkit::Proc, Option<Result<ProducerStats, String>>)>,
}

impl Background {
    pub fn start(cfg: &Config, cmd: ProducerCmd, dir: &Path) -> Result<Background> {
        let p = cmd.spawn(&cfg.bins, dir, "producer")?;
        Ok(Background {
            cmd,
            state: std::sync::Mutex::new((p, None)),
        })
    }

    /// Waits for its exit; fails unless every event was acknowledged.
    pub fn finished(&self) -> Result<ProducerStats> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (p, verdict) = &mut *state;
        if verdict.is_none() {
            *verdict = Some(self.cmd.finish(p).map_err(|e| format!("{e:#}")));
        }
        verdict.clone().expect("set above").map_err(|e| anyhow!(e))
    }
}
