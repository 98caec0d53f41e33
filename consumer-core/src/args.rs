//! The command line both consumers share.
//!
//! The two binaries differ only in their defaults (`--group`, `--db`), so
//! they flatten [`ConsumerArgs`] into their own `clap::Parser` and parse it with
//! [`parse_cli`], which fills in the model's defaults (shown in `--help`).

use std::path::PathBuf;
use std::time::Duration;

use common::{KafkaArgs, TelemetryArgs};

pub use common::stats::Model;

/// Default of `--batch-size`. A batch is one SQLite transaction, and its
/// fixed cost is mostly the balances: a batch of 20,000 events touches most
/// of 10,000 accounts, each an upsert, whatever the batch's size. Measured
/// with `bench ceiling-store`, 3M events, three runs each: batches of 5,000
/// 316-348k events/s, 20,000 364-398k, 50,000 370-444k, 100,000 389-423k
/// (with RSS 119 MB at 50,000 and 158 MB at 100,000). Only a backlog fills
/// batches this large; live traffic is written by --flush-interval-ms.
pub const DEFAULT_BATCH_SIZE: usize = 50_000;
/// Default of `--flush-interval-ms`. Short, because it only decides when
/// traffic is light: under load a due batch waits for the writer (one batch
/// is committed at a time) and keeps filling meanwhile, up to
/// `--batch-size`, so the backlog drain still commits full batches
/// (measured on 2 cores, Apache Kafka, 20k events/s, producer `linger.ms=2`:
/// median end-to-end latency 5.3-5.9 ms with 2 ms, 7-12 ms with 5 ms; each
/// consumer then spends ~0.3 of a core instead of ~0.2 with 10 ms).
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 2;

/// Flags shared by consumer-pull and consumer-push. Serializable so that
/// a program starting a consumer (the benchmark) can build the command line
/// from this very struct.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ConsumerArgs {
    /// Kafka connection and topic.
    #[command(flatten)]
    #[serde(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group. Members of one group share the topic's partitions.
    #[arg(long, value_name = "GROUP")]
    pub group: String,

    /// This is one of several instances of the group, each with its own
    /// database, and ID is its name (implies --scale-out), with static
    /// group membership (librdkafka's `group.instance.id`; unique per
    /// instance, stable across its restarts): an instance restarted within
    /// the session timeout (`-X session.timeout.ms`, 45 s by default) gets
    /// its own partitions back without a rebalance; it does not leave the
    /// group when it stops, so its partitions wait for it until the session
    /// times out.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,

    /// This is one of several instances of the group, each with its own
    /// database (dynamic membership: every start and stop rebalances the
    /// group). A partition the group has read further than this database,
    /// by another instance's commits, is then a hand-over: the range is
    /// recorded in offset_gaps with the other database's id (`ledger
    /// check` reads the databases as one) and reading starts at the group's
    /// offset. Without it (or --instance-id) the consumer is the group's
    /// only one and refuses to skip such a range: a mistyped --db, say.
    #[arg(long)]
    pub scale_out: bool,

    /// SQLite database the events are stored in (created if missing; its
    /// directory must exist). It also holds the consumed offsets, so a
    /// restart resumes exactly where it left off.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,

    /// Also store each event's raw protobuf bytes beside its decoded
    /// columns (`events.payload`), for audit or to keep fields this build
    /// does not know. Off by default: it makes the database ~2x larger
    /// and slower to write (docs/store.md). Dead letters always keep theirs.
    #[arg(long)]
    pub keep_event_payloads: bool,

    /// Messages per SQLite transaction: a batch is written when it holds
    /// this many messages or when --flush-interval-ms has passed since its
    /// first message, whichever comes first.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub batch_size: usize,

    /// Longest time a message waits in an open batch before the batch is
    /// written, in milliseconds (bounds latency when traffic is light).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_FLUSH_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub flush_interval_ms: u64,

    /// Write the run's figures (throughput, latency percentiles, CPU,
    /// memory, settings) as JSON to this file (mode 0600) at exit.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,

    /// Exit (status 0) once every assigned partition has been read to its
    /// end, no message has arrived for SECS seconds, and the group's
    /// committed offsets show the partitions held by other members read to
    /// their ends too (a member killed without leaving holds its partitions
    /// until its session times out). Without it the consumer runs until
    /// SIGINT/SIGTERM.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub exit_when_idle: Option<u64>,

    /// Exit (status 0) after N messages (events and dead letters alike) have
    /// been stored; the rest stays in Kafka for the next run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_events: Option<u64>,

    /// Go on when the broker has deleted events this database never read
    /// (retention or DeleteRecords moved the partition's log start past the
    /// stored offset). The lost range is recorded in the offset_gaps table
    /// and logged. Without it the consumer stops with an error that names
    /// the partition and how many events are gone, and stores nothing past
    /// the gap.
    #[arg(long)]
    pub accept_data_loss: bool,

    /// This database was restored from a backup (or is an older copy of
    /// itself): the group's offsets that it committed itself are ahead of
    /// what it holds, and that range is read again from Kafka into it
    /// (nothing is stored twice in it). Without it the consumer stops with
    /// an error naming the range. Stop any other copy of the database
    /// first.
    #[arg(long)]
    pub restored_backup: bool,

    /// The topic was deleted and created again (its topic ID changed, or
    /// this database's offsets are past the partitions' ends): keep this
    /// database's rows, put its offsets of the old topic aside (table
    /// topic_resets), and read the new topic from its start. Without it
    /// the consumer stops with an error naming the topic. Meant for one
    /// start, not to be left on.
    #[arg(long)]
    pub accept_new_topic: bool,

    /// Write this file (atomically: a temporary file, then a rename) once
    /// the first partitions are assigned and positioned at their start
    /// offsets, so that a program starting the consumer knows when it is
    /// ready. Removed at start if it exists. It holds JSON: the topic and
    /// the assigned partitions.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,

    /// `--log-format` and `--metrics-addr`.
    #[command(flatten)]
    #[serde(flatten)]
    pub telemetry: TelemetryArgs,
}

impl ConsumerArgs {
    /// What the start decision may do, from the flags.
    pub fn start_flags(&self) -> crate::context::StartFlags {
        crate::context::StartFlags {
            allowed: crate::start::Allowed {
                instance: self.scale_out || self.instance_id.is_some(),
                restored_backup: self.restored_backup,
                data_loss: self.accept_data_loss,
            },
            accept_new_topic: self.accept_new_topic,
        }
    }

    /// `--flush-interval-ms` as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// `--exit-when-idle` as a duration.
    pub fn idle_after(&self) -> Option<Duration> {
        self.exit_when_idle.map(Duration::from_secs)
    }
}

/// Parses the command line of a consumer binary whose `clap::Parser` `T`
/// flattens [`ConsumerArgs`], with `model`'s defaults for `--group` and
/// `--db`. Exits with clap's message on a usage error, as `Parser::parse`.
pub fn parse_cli<T: clap::Parser>(model: Model) -> T {
    parse_cli_from(model, std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// [`parse_cli`] over the given arguments (the first is the program name).
pub fn parse_cli_from<T, I, S>(model: Model, argv: I) -> Result<T, clap::Error>
where
    T: clap::Parser,
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = with_model_defaults(T::command(), model);
    let matches = cmd.try_get_matches_from_mut(argv)?;
    T::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// Gives `--group` and `--db` the defaults of `model`, and ends the help
/// with the librdkafka settings the consumers set, listed from
/// [`CONSUMER_DEFAULTS`](crate::config::CONSUMER_DEFAULTS) so the help
/// cannot drift from the code.
pub fn with_model_defaults(cmd: clap::Command, model: Model) -> clap::Command {
    let settings: Vec<String> = crate::config::CONSUMER_DEFAULTS
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let defaults = format!(
        "librdkafka defaults set here (override with -X): {}.",
        settings.join(", ")
    );
    let after_help = match cmd.get_after_help() {
        Some(examples) => format!("{examples}\n\n{defaults}"),
        None => defaults,
    };
    cmd.after_help(after_help)
        .mut_arg("group", |a| {
            a.default_value(model.default_group()).required(false)
        })
        .mut_arg("db", |a| {
            a.default_value(model.default_db()).required(false)
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A binary's command line: the consumer's flags alone.
    #[derive(Debug, clap::Parser)]
    pub(crate) struct Cli {
        #[command(flatten)]
        pub(crate) consumer: ConsumerArgs,
    }

    #[test]
    fn defaults_follow_the_model() {
        let pull: Cli = parse_cli_from(Model::Pull, ["consumer-pull"]).unwrap();
        assert_eq!(pull.consumer.group, "banking-pull");
        assert_eq!(pull.consumer.db, PathBuf::from("pull.db"));
        assert_eq!(pull.consumer.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(pull.consumer.flush_interval_ms, DEFAULT_FLUSH_INTERVAL_MS);
        assert_eq!(pull.consumer.exit_when_idle, None);
        assert_eq!(pull.consumer.telemetry.metrics_addr, None);
        let push: Cli = parse_cli_from(Model::Push, ["consumer-push"]).unwrap();
        assert_eq!(push.consumer.group, "banking-push");
        assert_eq!(push.consumer.db, PathBuf::from("push.db"));
    }

    #[test]
    fn flags_are_parsed_and_checked() {
        let cli: Cli = parse_cli_from(
            Model::Pull,
            [
                "consumer-pull",
                "--group",
                "g",
                "--db",
                "/tmp/x.db",
                "--batch-size",
                "500",
                "--flush-interval-ms",
                "20",
                "--exit-when-idle",
                "3",
                "--max-events",
                "10",
                "-X",
                "fetch.wait.max.ms=50",
                "--ready-file",
                "/tmp/x.ready",
                "--metrics-addr",
                "127.0.0.1:9464",
                "--log-format",
                "json",
            ],
        )
        .unwrap();
        assert_eq!(cli.consumer.ready_file, Some(PathBuf::from("/tmp/x.ready")));
        assert_eq!(cli.consumer.group, "g");
        assert_eq!(cli.consumer.batch_size, 500);
        assert_eq!(cli.consumer.idle_after(), Some(Duration::from_secs(3)));
        assert_eq!(cli.consumer.max_events, Some(10));
        assert_eq!(
            cli.consumer.telemetry.metrics_addr,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(cli.consumer.telemetry.log_format, common::LogFormat::Json);
        assert_eq!(
            cli.consumer.kafka.properties,
            vec![("fetch.wait.max.ms".to_string(), "50".to_string())]
        );
        assert!(parse_cli_from::<Cli, _, _>(Model::Pull, ["c", "--batch-size", "0"]).is_err());
        assert!(parse_cli_from::<Cli, _, _>(Model::Pull, ["c", "--exit-when-idle", "0"]).is_err());
    }
}
