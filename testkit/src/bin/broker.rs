//! `broker`: starts, stops, kills and describes the local broker of
//! `scripts/broker.sh` (which picks `KAFKA_BROKERS` or Docker first, and
//! hands the local kinds to this binary). `broker --help` for the commands.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use testkit::launcher::{self, Kind, Place, Start};
use testkit::nisshi::Storage;

/// A local Apache Kafka (one node or a cluster) or Nisshi that lives on
/// after this command, its facts in RUN_DIR (kind, version, address, pid,
/// nodes, heap, storage). The last line `start` prints on stdout is the
/// bootstrap address, alone.
#[derive(Parser)]
#[command(name = "broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Address the broker listens on.
    #[arg(long, env = "BROKER_HOST", default_value = "127.0.0.1", global = true)]
    host: String,
    /// Client port (node I of a cluster: PORT + 2(I-1), its controller one above).
    #[arg(long, env = "BROKER_PORT", default_value_t = 9092, global = true)]
    port: u16,
    /// Controller port of a single node (default PORT + 1).
    #[arg(long, env = "KAFKA_CONTROLLER_PORT", global = true)]
    controller_port: Option<u16>,
    /// State directory (default <repo>/.run/broker, or .run/broker-PORT when PORT is not 9092).
    #[arg(long, env = "RUN_DIR", global = true)]
    run_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Make sure the broker runs (reusing one started earlier), create the
    /// topic unless --no-topic, print the bootstrap address last; with NODE,
    /// start that node of the local cluster again on its data.
    Start {
        /// One node of the local cluster.
        node: Option<u32>,
        /// auto: Apache Kafka where it is or can be installed, else Nisshi.
        #[arg(long, value_enum, default_value = "auto")]
        kind: KindArg,
        /// Nodes of a local Apache Kafka: replication min(N, 3), min.insync.replicas one fewer.
        #[arg(long)]
        nodes: Option<u32>,
        /// Delete the stored log first when the broker is not running.
        #[arg(long)]
        fresh: bool,
        #[arg(long, default_value = "banking.events")]
        topic: String,
        #[arg(long, env = "PARTITIONS", default_value_t = 6)]
        partitions: i32,
        #[arg(long)]
        no_topic: bool,
        /// JVM heap options of Apache Kafka.
        #[arg(long, env = "KAFKA_HEAP", default_value = "-Xms1g -Xmx1g")]
        heap: String,
        /// Nisshi's storage: memory, or sqlite (RUN_DIR/nisshi.db, kept across restarts).
        #[arg(long, env = "NISSHI_STORAGE", value_enum, default_value = "memory")]
        storage: StorageArg,
    },
    /// Stop what start started (SIGTERM; SIGKILL after 60 s for Kafka, 10 s
    /// for Nisshi), or node NODE (controlled shutdown). The log stays.
    Stop { node: Option<u32> },
    /// kill -9 of node NODE of the local cluster.
    Kill { node: u32 },
    /// Create topic NAME on the broker started here (an existing one is kept).
    Topic {
        name: String,
        #[arg(long, env = "PARTITIONS", default_value_t = 6)]
        partitions: i32,
    },
    /// Print kind, address, pid, version; exit 0 when the broker answers.
    Status,
    /// Install the broker (Apache Kafka, else Nisshi) unless there; print its
    /// jars' directory or binary.
    Install {
        #[arg(long, value_enum, default_value = "auto")]
        kind: KindArg,
    },
    /// Exit 0 when a local broker started from RUN_DIR runs.
    Running,
    /// Exit 0 when a TCP connection to one of ADDRESSES (host:port,...) succeeds.
    Answers { addresses: String },
    /// Print the Apache Kafka version (docker-compose.yml's image tag).
    Version,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Auto,
    Kafka,
    Nisshi,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Auto => Kind::Auto,
            KindArg::Kafka => Kind::Kafka,
            KindArg::Nisshi => Kind::Nisshi,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum StorageArg {
    Memory,
    Sqlite,
}

fn main() -> Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let run_dir = cli.run_dir.unwrap_or_else(|| {
        let name = match cli.port {
            9092 => "broker".to_string(),
            port => format!("broker-{port}"),
        };
        testkit::repo_root().join(".run").join(name)
    });
    let place = Place {
        host: cli.host,
        port: cli.port,
        controller_port: cli.controller_port,
        run_dir: std::path::absolute(run_dir)?,
    };
    let ok = |b: bool| Ok(std::process::ExitCode::from(u8::from(!b)));
    match cli.command {
        Command::Start { node: Some(id), .. } => launcher::start_node(&place, id)?,
        Command::Start {
            node: None,
            kind,
            nodes,
            fresh,
            topic,
            partitions,
            no_topic,
            heap,
            storage,
        } => {
            let start = Start {
                kind: kind.into(),
                nodes,
                fresh,
                heap,
                storage: match storage {
                    StorageArg::Memory => Storage::Memory,
                    StorageArg::Sqlite => Storage::Sqlite,
                },
            };
            let address = launcher::start(&place, &start)?;
            if !no_topic {
                launcher::topic(&place.run_dir, &topic, partitions)?;
            }
            println!("{address}");
        }
        Command::Stop { node: Some(id) } => launcher::stop_node(&place.run_dir, id, false)?,
        Command::Stop { node: None } => launcher::stop(&place.run_dir)?,
        Command::Kill { node } => launcher::stop_node(&place.run_dir, node, true)?,
        Command::Topic { name, partitions } => launcher::topic(&place.run_dir, &name, partitions)?,
        Command::Status => return ok(launcher::status(&place)),
        Command::Running => return ok(launcher::running(&place.run_dir)),
        Command::Answers { addresses } => return ok(launcher::answers(&addresses)),
        Command::Install { kind } => println!("{}", launcher::install(kind.into())?.1.display()),
        Command::Version => println!("{}", launcher::version()?),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
