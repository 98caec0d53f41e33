//! The local brokers of `scripts/broker.sh` (the `broker` binary): the
//! tests' [`Kafka`](crate::Kafka) (one node or several) or [`Nisshi`],
//! living on after the command, their facts in a [`RunDir`].
//!
//! Node `I` of `N` listens on `port + 2(I-1)`, its controller one above
//! (one node: on `controller_port`, default `port + 1`); its files are in
//! `RUN_DIR/kafka` (one node) or `RUN_DIR/kafka-I`, its pid in `pid` or
//! `pid-I`.

/// A line on stderr, as `broker: …`.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("broker: {}", format_args!($($arg)*)) };
}

mod install;
mod rundir;
mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub use install::install;
pub use rundir::{RunDir, answers};
pub use status::status;

use crate::brokerproc::{self, Lifetime};
use crate::kafka::{self, Existing, KafkaOptions};
use crate::nisshi::{self, Nisshi, Storage};
use crate::settings::{self, Replication};

/// Where the local broker lives (see the module documentation).
#[derive(Debug, Clone)]
pub struct Place {
    pub host: String,
    pub port: u16,
    pub controller_port: Option<u16>,
    pub run_dir: PathBuf,
}

impl Place {
    fn node_port(&self, id: u32) -> u16 {
        self.port + 2 * (id as u16 - 1)
    }

    fn controller(&self, nodes: u32, id: u32) -> u16 {
        match (nodes, self.controller_port) {
            (1, Some(port)) => port,
            _ => self.node_port(id) + 1,
        }
    }

    fn node_dir(&self, nodes: u32, id: u32) -> PathBuf {
        match nodes {
            1 => self.run_dir.join("kafka"),
            _ => self.run_dir.join(format!("kafka-{id}")),
        }
    }

    fn address(&self, id: u32) -> String {
        format!("{}:{}", self.host, self.node_port(id))
    }

    fn addresses(&self, nodes: u32) -> String {
        (1..=nodes)
            .map(|i| self.address(i))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Which broker to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Apache Kafka where it is (or can be) installed, else Nisshi.
    Auto,
    /// Apache Kafka from Maven Central's jars, one JVM per node.
    Kafka,
    /// Nisshi, the embedded Rust broker.
    Nisshi,
}

/// What `start` does beyond the place (the `broker start` options).
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Start {
    #[arg(long, value_enum, default_value = "auto")]
    pub kind: Kind,
    /// Nodes of a local Apache Kafka (default: as running, else 1):
    /// replication min(N, 3), min.insync.replicas one fewer.
    #[arg(long)]
    pub nodes: Option<u32>,
    /// Delete the stored log first when the broker is not running.
    #[arg(long)]
    pub fresh: bool,
    /// JVM heap options of Apache Kafka.
    #[arg(long, env = "KAFKA_HEAP", default_value = "-Xms1g -Xmx1g")]
    pub heap: String,
    /// Nisshi's storage (sqlite: RUN_DIR/nisshi.db, kept across restarts).
    #[arg(long, env = "NISSHI_STORAGE", value_enum, default_value = "memory")]
    pub storage: Storage,
}

fn pid_name(nodes: u32, id: u32) -> String {
    match nodes {
        1 => "pid".into(),
        _ => format!("pid-{id}"),
    }
}

fn nodes_of(run: &RunDir) -> u32 {
    run.get("nodes").and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// The live pid of each node of the broker started from `run`, if a `kind`.
fn pids(run: &RunDir, kind: &str) -> Vec<Option<u32>> {
    if run.get("kind").as_deref() != Some(kind) {
        return Vec::new();
    }
    let (nodes, marker) = match kind {
        "kafka" => (nodes_of(run), "kafka.Kafka"),
        _ => (1, "nisshi"),
    };
    (1..=nodes)
        .map(|i| run.live_pid(&pid_name(nodes, i), marker))
        .collect()
}

fn nisshi_pid(run: &RunDir) -> Option<u32> {
    pids(run, "nisshi").into_iter().flatten().next()
}

/// Whether a broker started from `run_dir` runs.
pub fn running(run_dir: &Path) -> bool {
    let run = RunDir::open(run_dir);
    nisshi_pid(&run).is_some() || pids(&run, "kafka").iter().any(Option::is_some)
}

/// Makes sure the broker runs; returns its bootstrap address.
pub fn start(place: &Place, start: &Start) -> Result<String> {
    let run = RunDir::lock(&place.run_dir)?;
    let address = match install(start.kind)? {
        (Kind::Nisshi, bin) => start_nisshi(place, &run, start, &bin)?,
        _ => start_kafka(place, &run, start)?,
    };
    run.set("address", &address)?;
    Ok(address)
}

/// Fails when something not started from `run` listens on `address`.
fn free(run: &RunDir, address: &str, what: &str) -> Result<()> {
    if answers(address) {
        bail!(
            "{what} {address} is taken by something not started from {} (no live pid). \
             Use it with KAFKA_BROKERS={address}, stop it, or choose another BROKER_PORT",
            run.path().display()
        );
    }
    Ok(())
}

/// Starts nodes `ids` (detached) and records their pids.
fn launch(place: &Place, run: &RunDir, nodes: u32, ids: &[u32], heap: &str) -> Result<()> {
    for &id in ids {
        let log = place.node_dir(nodes, id).join("logs/server.log");
        say!(
            "starting node {id} on {} (heap {heap}), log in {}",
            place.address(id),
            log.display()
        );
    }
    let started = kafka::start_nodes(nodes, ids, &place.host, Lifetime::Detached, |i| {
        let options = KafkaOptions {
            port: Some(place.node_port(i)),
            host: Some(place.host.clone()),
            heap: Some(heap.to_string()),
            ..KafkaOptions::default()
        };
        (
            place.node_dir(nodes, i),
            options,
            place.controller(nodes, i),
        )
    })?;
    for (id, mut kafka) in ids.iter().zip(started) {
        let pid = kafka.detach().context("the node runs")?;
        run.set(&pid_name(nodes, *id), &pid.to_string())?;
    }
    Ok(())
}

fn start_kafka(place: &Place, run: &RunDir, start: &Start) -> Result<String> {
    let version = settings::version()?;
    let was = pids(run, "kafka");
    let nodes = if was.iter().any(Option::is_some) {
        let have = nodes_of(run);
        if start.nodes.is_some_and(|n| n != have) {
            bail!(
                "the local Kafka in {} runs {have} node(s); stop it first",
                run.path().display()
            );
        }
        say!(
            "reusing Apache Kafka started earlier ({have} node(s)) on {}",
            place.addresses(have)
        );
        let down: Vec<u32> = (1..=have)
            .filter(|&i| was[i as usize - 1].is_none())
            .collect();
        if !down.is_empty() {
            say!("node(s) {down:?} not running: starting them again");
            launch(place, run, have, &down, &start.heap)?;
        }
        have
    } else {
        let nodes = start.nodes.unwrap_or(1);
        for id in 1..=nodes {
            run.remove(&pid_name(nodes, id));
            free(run, &place.address(id), "the client address")?;
            let controller = format!("{}:{}", place.host, place.controller(nodes, id));
            let what = "the controller address (KAFKA_CONTROLLER_PORT)";
            free(run, &controller, what)?;
            let data = place.node_dir(nodes, id).join("data");
            if start.fresh && data.is_dir() {
                say!("--fresh: deleting the stored log {}", data.display());
                std::fs::remove_dir_all(&data)?;
            }
        }
        run.set("kind", "kafka")?;
        run.set("nodes", &nodes.to_string())?;
        let r = Replication::for_nodes(nodes as usize);
        say!(
            "starting Apache Kafka {version}: {nodes} node(s) in KRaft combined mode (broker + controller), replication {}, min.insync.replicas {}",
            r.replicas,
            r.min_isr
        );
        let started = std::time::Instant::now();
        let all: Vec<u32> = (1..=nodes).collect();
        launch(place, run, nodes, &all, &start.heap)?;
        say!(
            "Apache Kafka is up ({nodes} node(s)) after {} s",
            started.elapsed().as_secs()
        );
        nodes
    };
    run.set("version", &format!("Apache Kafka {version}"))?;
    run.set("heap", &start.heap)?;
    Ok(place.addresses(nodes))
}

fn start_nisshi(place: &Place, run: &RunDir, start: &Start, bin: &Path) -> Result<String> {
    let address = place.address(1);
    if let Some(pid) = nisshi_pid(run) {
        say!("reusing Nisshi started earlier (pid {pid}) on {address}");
    } else {
        run.remove("pid");
        free(run, &address, "the address")?;
        let db = run.path().join("nisshi.db");
        if start.fresh && start.storage == Storage::Sqlite && db.exists() {
            say!("--fresh: deleting the stored log {}", db.display());
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
        }
        let log = run.path().join("nisshi.log");
        say!(
            "starting Nisshi on {address} (storage {}), log in {}",
            start.storage.url(),
            log.display()
        );
        let pid = Nisshi::start_detached(&run.path().canonicalize()?, &address, start.storage)?;
        run.set("pid", &pid.to_string())?;
        run.set("storage", start.storage.url())?;
        say!("Nisshi is up (pid {pid})");
    }
    let version = nisshi::version_of(bin).unwrap_or_else(|| "(unknown version)".into());
    run.set("kind", "nisshi")?;
    run.set("version", &format!("nisshi {version}"))?;
    Ok(address)
}

/// Creates `topic` on the broker started from `run_dir`, replicated as its
/// nodes allow; an existing topic is kept
/// (with a warning when its partitions differ).
pub fn topic(run_dir: &Path, topic: &str, partitions: i32) -> Result<()> {
    let run = RunDir::lock(run_dir)?;
    let address = run.get("address").with_context(|| {
        format!(
            "no broker started from {}; start one first",
            run_dir.display()
        )
    })?;
    let r = Replication::for_nodes(nodes_of(&run) as usize);
    let have = kafka::create_topic(&address, topic, partitions, r, Existing::Keep)?;
    if have != partitions {
        say!(
            "warning: topic {topic} has {have} partitions, not {partitions}; stop, then start --fresh for a fresh topic"
        );
    } else {
        let (replicas, min_isr) = (r.replicas, r.min_isr);
        say!(
            "topic {topic} ready on {address} ({partitions} partitions, {replicas} replica(s), min.insync.replicas {min_isr})"
        );
    }
    Ok(())
}

/// The nodes of the local Kafka started from `run`, when `id` is one.
fn node_in(run: &RunDir, id: u32) -> Result<u32> {
    if run.get("kind").as_deref() != Some("kafka") {
        bail!(
            "'NODE' commands act on a local Apache Kafka started from {}; none was",
            run.path().display()
        );
    }
    let nodes = nodes_of(run);
    if id == 0 || id > nodes {
        bail!("NODE must be 1..{nodes}, got {id}");
    }
    Ok(nodes)
}

/// Starts node `id` of the local cluster again on its data.
pub fn start_node(place: &Place, id: u32) -> Result<()> {
    let run = RunDir::lock(&place.run_dir)?;
    let nodes = node_in(&run, id)?;
    if pids(&run, "kafka")[id as usize - 1].is_some() {
        say!("node {id} already runs");
        return Ok(());
    }
    let heap = run.get("heap").unwrap_or_else(|| "-Xms1g -Xmx1g".into());
    launch(place, &run, nodes, &[id], &heap)?;
    say!("node {id} is up");
    Ok(())
}

/// Stops node `id` (SIGTERM; SIGKILL after 60 s), or `kill -9`s it.
pub fn stop_node(run_dir: &Path, id: u32, kill: bool) -> Result<()> {
    let run = RunDir::lock(run_dir)?;
    stop_kafka_node(&run, node_in(&run, id)?, id, kill);
    Ok(())
}

fn stop_kafka_node(run: &RunDir, nodes: u32, id: u32, kill: bool) {
    let name = pid_name(nodes, id);
    match run.live_pid(&name, "kafka.Kafka") {
        None => say!("node {id} of the local Kafka is not running"),
        Some(pid) if kill => {
            say!("kill -9 of node {id} (pid {pid})");
            brokerproc::kill9(pid);
        }
        Some(pid) => {
            say!("stopping node {id} (pid {pid}; controlled shutdown)");
            brokerproc::terminate(pid, Duration::from_secs(60), &format!("broker: node {id}"));
        }
    }
    run.remove(&name);
}

/// Stops what `start` started from `run_dir`, every node at once (the last
/// ones cannot shut down in a controlled way once the quorum is gone).
pub fn stop(run_dir: &Path) -> Result<()> {
    let run = RunDir::lock(run_dir)?;
    match (run.get("kind").as_deref(), nisshi_pid(&run)) {
        (Some("kafka"), _) => {
            let nodes = nodes_of(&run);
            std::thread::scope(|s| {
                for id in 1..=nodes {
                    let run = &run;
                    s.spawn(move || stop_kafka_node(run, nodes, id, false));
                }
            });
            say!(
                "Apache Kafka stopped (its log stays under {})",
                run_dir.display()
            );
        }
        (Some("nisshi"), Some(pid)) => {
            say!("stopping Nisshi (pid {pid})");
            brokerproc::terminate(pid, Duration::from_secs(10), "broker: Nisshi");
            match run.get("storage").is_some_and(|s| s.starts_with("sqlite")) {
                true => say!("Nisshi stopped (its log stays in nisshi.db)"),
                false => say!("Nisshi stopped (in-memory storage: its topics are gone)"),
            }
        }
        (Some("nisshi"), None) => say!("Nisshi is not running"),
        _ => say!(
            "nothing was started from {}; nothing to stop",
            run_dir.display()
        ),
    }
    run.remove("pid");
    run.remove("address");
    Ok(())
}
