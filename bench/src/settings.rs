//! The settings of a run: given on its command line, recorded in
//! `run.json`, and handed to every process it starts as the typed arguments
//! of that process ([`crate::argv`]). What the bench does not choose is the
//! program's own default, taken from its parser.

use std::ffi::OsString;
use std::path::Path;

use clap::Parser as _;
use common::parse_property;
use consumer_core::args::{DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_MS, parse_cli_from};
use consumer_core::config::CONSUMER_DEFAULTS;
use consumer_core::{ConsumerArgs, Model};
use serde::{Deserialize, Serialize};

use crate::argv::argv;
use crate::cli::{ConsumeArgs, StoreArgs};

const PRODUCER_TIMEOUT_S: u64 = 60;

#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct Settings {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,

    /// Partitions of every topic the run creates.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,

    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Generator accounts.
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u64,

    /// librdkafka property for the producer (and its raw ceiling), applied
    /// after the producer's defaults; repeatable (e.g. linger.ms=1).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_property)]
    pub producer_property: Vec<(String, String)>,

    /// The consumers' --batch-size (also the store ceiling's batches).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,

    /// The consumers' --flush-interval-ms.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_FLUSH_INTERVAL_MS)]
    pub flush_interval_ms: u64,

    /// librdkafka property for both consumers and the raw consume ceiling,
    /// applied after the consumers' defaults; repeatable (e.g.
    /// fetch.wait.max.ms=10).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_property)]
    pub consumer_property: Vec<(String, String)>,

    /// Both consumers and the store ceilings also store each event's raw
    /// protobuf bytes (the consumers' --keep-event-payloads).
    #[arg(long)]
    #[serde(default)]
    pub keep_event_payloads: bool,
}

/// A consumer's command line, to take the consumers' defaults from.
#[derive(Debug, clap::Parser)]
struct ConsumerCli {
    #[command(flatten)]
    consumer: ConsumerArgs,
}

impl Settings {
    /// `count` events at `rate` (0: unpaced), or the raw ceiling.
    pub fn producer(
        &self,
        topic: &str,
        count: u64,
        rate: u64,
        stats: &Path,
        raw: bool,
    ) -> producer::Args {
        let mut a =
            producer::Args::try_parse_from(["producer"]).expect("the producer's defaults parse");
        a.kafka.brokers = self.brokers.clone();
        a.kafka.topic = topic.to_string();
        a.kafka.properties = self.producer_property.clone();
        a.count = count;
        a.rate = rate;
        a.seed = self.seed;
        a.accounts = self.accounts;
        a.partitions = Some(self.partitions);
        a.timeout = PRODUCER_TIMEOUT_S;
        a.stats_json = Some(stats.to_path_buf());
        a.raw = raw;
        a
    }

    /// `<name>.db`, `.json` and `.ready` in `dir`; exits after `max_events`,
    /// or 5 s without one.
    pub fn consumer(
        &self,
        model: Model,
        dir: &Path,
        name: &str,
        topic: &str,
        group: &str,
        max_events: u64,
    ) -> ConsumerArgs {
        let mut a = parse_cli_from::<ConsumerCli, _, _>(model, [model.binary()])
            .expect("the consumers' defaults parse")
            .consumer;
        a.kafka.brokers = self.brokers.clone();
        a.kafka.topic = topic.to_string();
        a.kafka.properties = self.consumer_property.clone();
        a.group = group.to_string();
        a.db = dir.join(format!("{name}.db"));
        a.keep_event_payloads = self.keep_event_payloads;
        a.batch_size = self.batch_size;
        a.flush_interval_ms = self.flush_interval_ms;
        a.stats_json = Some(dir.join(format!("{name}.json")));
        a.exit_when_idle = Some(5);
        a.max_events = Some(max_events);
        a.ready_file = Some(dir.join(format!("{name}.ready")));
        a
    }

    /// The raw consume ceiling: the consumers' librdkafka settings.
    pub fn raw_consume(&self, topic: &str, group: &str, count: u64, stats: &Path) -> ConsumeArgs {
        let properties = CONSUMER_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(self.consumer_property.iter().cloned())
            .collect();
        ConsumeArgs {
            brokers: self.brokers.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            count,
            properties,
            idle: 10,
            stats_json: Some(stats.to_path_buf()),
        }
    }

    /// One half of an insert ceiling: `events` after passing over `skip`.
    pub fn store_ceiling(
        &self,
        db: &Path,
        events: u64,
        skip: u64,
        first_id: u64,
        stats: &Path,
    ) -> StoreArgs {
        StoreArgs {
            db: db.to_path_buf(),
            events,
            seed: self.seed,
            accounts: self.accounts,
            first_id,
            batch_size: self.batch_size as u64,
            partitions: self.partitions,
            skip,
            keep_event_payloads: self.keep_event_payloads,
            stats_json: Some(stats.to_path_buf()),
        }
    }

    /// Whether the producer's and the consumers' own parsers accept these
    /// settings, before anything starts.
    pub fn check(&self) -> anyhow::Result<()> {
        let p = argv(&self.producer("t", 1, 0, Path::new("p.json"), false))?;
        producer::Args::try_parse_from(std::iter::once("producer".into()).chain(p))
            .map_err(|e| anyhow::anyhow!("the producer refuses these settings: {e}"))?;
        for model in Model::ALL {
            let args = argv(&self.consumer(model, Path::new(""), "c", "t", "g", 1))?;
            parse_cli_from::<ConsumerCli, _, _>(
                model,
                std::iter::once(OsString::from(model.binary())).chain(args),
            )
            .map_err(|e| anyhow::anyhow!("{} refuses these settings: {e}", model.binary()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::parse;
    use clap::Parser;

    fn json<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    /// The command lines parse back, in the programs' own parsers, into
    /// exactly the arguments the bench chose.
    #[test]
    fn every_program_gets_exactly_the_settings() {
        let s = parse::<Settings>(&[
            "--batch-size=700",
            "--producer-property=linger.ms=1",
            "--consumer-property",
            "fetch.wait.max.ms=9",
            "--keep-event-payloads",
        ]);
        s.check().unwrap();
        let p = s.producer("topic", 10, 5, Path::new("/o/p.json"), true);
        let back = producer::Args::try_parse_from(
            std::iter::once("producer".into()).chain(argv(&p).unwrap()),
        )
        .unwrap();
        assert_eq!(json(&back), json(&p));
        assert_eq!(back.kafka.properties, [("linger.ms".into(), "1".into())]);

        let mut c = s.consumer(Model::Pull, Path::new("/o"), "pull", "topic", "g", 10);
        c.exit_when_idle = Some(20);
        let back: ConsumerCli = parse_cli_from(
            Model::Pull,
            std::iter::once(OsString::from("consumer-pull")).chain(argv(&c).unwrap()),
        )
        .unwrap();
        assert_eq!(json(&back.consumer), json(&c));
        assert_eq!(back.consumer.batch_size, 700);
        assert_eq!(back.consumer.ready_file, Some("/o/pull.ready".into()));
        assert!(back.consumer.keep_event_payloads);
        let store = s.store_ceiling(Path::new("s.db"), 5, 0, 1, Path::new("s.json"));
        assert!(store.keep_event_payloads);
    }

    #[test]
    fn the_defaults_are_the_consumers() {
        let s = parse::<Settings>(&[]);
        assert_eq!(s.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(s.flush_interval_ms, DEFAULT_FLUSH_INTERVAL_MS);
        let raw = s.raw_consume("t", "g", 1, Path::new("r.json"));
        assert_eq!(raw.properties.len(), CONSUMER_DEFAULTS.len());
        let store = s.store_ceiling(Path::new("s.db"), 5, 0, 1, Path::new("s.json"));
        assert_eq!(store.batch_size, DEFAULT_BATCH_SIZE as u64);
    }

    #[test]
    fn a_setting_a_consumer_refuses_is_caught_before_the_run() {
        let e = parse::<Settings>(&["--batch-size=0"]).check().unwrap_err();
        assert!(e.to_string().contains("consumer-pull"), "{e}");
    }
}
