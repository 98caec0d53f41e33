//! `broker`: installs, starts, stops, kills and describes the local broker
//! of `scripts/broker.sh` (which picks `KAFKA_BROKERS` or Docker first, and
//! hands the local kinds to this binary). `broker --help` for the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use testkit::launcher::{self, Kind, Place, Start};

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
    /// Make sure the broker runs (installed if need be, reusing one started
    /// earlier), create the topic unless --no-topic, print the bootstrap
    /// address last; with NODE, start that node of the local cluster again
    /// on its data.
    Start {
        /// One node of the local cluster.
        node: Option<u32>,
        #[command(flatten)]
        start: Start,
        #[arg(long, default_value = "banking.events")]
        topic: String,
        #[arg(long, env = "PARTITIONS", default_value_t = 6)]
        partitions: i32,
        #[arg(long)]
        no_topic: bool,
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
    /// Install the broker (auto: Apache Kafka, else Nisshi) unless there;
    /// print its jars' directory or binary.
    Install {
        #[arg(long, value_enum, default_value = "auto")]
        kind: Kind,
    },
    /// Exit 0 when a local broker started from RUN_DIR runs.
    Running,
    /// Exit 0 when a TCP connection to one of ADDRESSES (host:port,...) succeeds.
    Answers { addresses: String },
    /// Print the Apache Kafka version (docker-compose.yml's image tag).
    Version,
}

fn main() -> Result<ExitCode> {
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
    let run_dir = &place.run_dir;
    let ok = |b: bool| Ok(ExitCode::from(u8::from(!b)));
    match cli.command {
        Command::Start { node: Some(id), .. } => launcher::start_node(&place, id)?,
        Command::Start {
            node: None,
            start,
            topic,
            partitions,
            no_topic,
        } => {
            let address = launcher::start(&place, &start)?;
            if !no_topic {
                launcher::topic(run_dir, &topic, partitions)?;
            }
            println!("{address}");
        }
        Command::Stop { node: Some(id) } => launcher::stop_node(run_dir, id, false)?,
        Command::Stop { node: None } => launcher::stop(run_dir)?,
        Command::Kill { node } => launcher::stop_node(run_dir, node, true)?,
        Command::Topic { name, partitions } => launcher::topic(run_dir, &name, partitions)?,
        Command::Status => return ok(launcher::status(&place)),
        Command::Install { kind } => println!("{}", launcher::install(kind)?.1.display()),
        Command::Running => return ok(launcher::running(run_dir)),
        Command::Answers { addresses } => return ok(launcher::answers(&addresses)),
        Command::Version => println!("{}", testkit::settings::version()?),
    }
    Ok(ExitCode::SUCCESS)
}
