//! The librdkafka configuration of both consumers, and the record of every
//! property in force that goes into the stats file.

use common::kafka::{conf_dump, redacted};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;

use crate::args::{ConsumerArgs, Model};
use crate::error::ConsumerError;

/// librdkafka settings of both consumers, applied before the user's `-X`
/// properties (which override them).
///
/// - Offsets are ours to manage: no auto commit, no auto offset store. The
///   source of truth is the `offsets` table in SQLite; Kafka gets a copy
///   after each SQLite commit so that lag shows in standard tools.
/// - `auto.offset.reset=earliest`: a partition nobody has read yet starts at
///   its first message.
/// - `enable.partition.eof`: the consumer is told when it has read a
///   partition to its end, which is how `--exit-when-idle` knows the
///   backlog is drained.
/// - Prefetch: `queued.min.messages=1000000` so that only the byte cap
///   limits librdkafka's prefetch queue, and `queued.max.messages.kbytes=
///   4096` as that cap, which bounds memory whatever the backlog. The cap
///   counts payload bytes only; librdkafka's own per-message overhead
///   roughly triples it for ~120-byte events (measured, 10M backlog on
///   the embedded broker: peak RSS ~290 MiB with 16 MiB, ~232 MiB with 8 MiB, ~180 MiB
///   with 4 MiB, throughput within the run-to-run noise). 4 MiB is still
///   ~33,000 events, more than a full batch, and with `fetch.min.bytes=1`
///   a refill is a few milliseconds away.
/// - `fetch.queue.backoff.ms=10`: when that queue is full librdkafka
///   checks again 10 ms later. A 0 measured well without a
///   database; here the SQLite writer is the bottleneck, the queue is full
///   most of the time, and 0 makes the fetcher spin: measured on 2 cores,
///   1M events, 0 vs 10 ms: 5.6-5.9 vs 4.0-4.2 CPU seconds and ~30% less
///   throughput.
/// - `fetch.wait.max.ms=100` (librdkafka: 500): how long the broker may
///   hold a fetch open waiting for data. Apache Kafka answers as soon as
///   data arrives (`fetch.min.bytes=1`), so the wait adds no latency there,
///   and every empty answer is a request to serve: with 5 ms, two idle
///   consumers cost a local Kafka 0.33 of a core (3.34 CPU-s per 10 s,
///   against 0.04 for the broker alone), with 100 ms 0.07; on a 2-core
///   machine that CPU is taken from the consumers (measured on Apache Kafka
///   4.3.1). The embedded broker holds every fetch for the full wait even
///   when data is there (Nisshi 0.8.1 does), so it needs
///   `-X fetch.wait.max.ms=5` (the bench gives it there): measured with
///   Nisshi 0.8.1 (in memory), live 4k events/s p50 153 -> 16 ms with
///   5 ms instead of 500.
/// - `fetch.error.backoff.ms=10` (librdkafka: 500): after a fetch error the
///   partition is fetched again 10 ms later instead of 500. A broker that
///   answers many fetches with an error (empty or refused) otherwise shows
///   500 ms stalls in live latency (measured on an earlier embedded broker:
///   p99 ~640 ms instead of ~30 ms at 20k events/s). Nisshi 0.8.1 shows no
///   such stalls (live 4k events/s:
///   p50 16 ms either way); kept, as it bounds the pause after a real
///   fetch error on any broker.
/// - `partition.assignment.strategy=cooperative-sticky`: a rebalance only
///   moves the partitions that change owner, and the others keep flowing.
///   It also makes the hand-over commit reliable: the revoking member
///   commits its final offsets after the group has settled on the new
///   generation, before the partitions go to their new owner. (With the
///   eager protocol the commit happens while the group is re-forming; a
///   real Kafka broker accepts it then, librdkafka's mock cluster refuses
///   it with REBALANCE_IN_PROGRESS.)
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("enable.partition.eof", "true"),
    ("queued.min.messages", "1000000"),
    ("queued.max.messages.kbytes", "4096"),
    ("fetch.queue.backoff.ms", "10"),
    ("fetch.wait.max.ms", "100"),
    ("fetch.error.backoff.ms", "10"),
];

/// With `--metrics-addr`: librdkafka's statistics every 5 s, from which
/// the per-partition lag gauge is set (`ExactlyOnceContext`'s `stats`
/// callback). Off otherwise: statistics cost librdkafka a JSON document
/// per interval. `-X statistics.interval.ms=...` overrides it.
pub const METRICS_STATISTICS: (&str, &str) = ("statistics.interval.ms", "5000");

/// The consumer's client configuration: our defaults, `group.id`,
/// `client.id`, `group.instance.id` (`--instance-id`), then the user's `-X`
/// properties.
pub fn client_config(model: Model, args: &ConsumerArgs) -> ClientConfig {
    let mut defaults: Vec<(&str, &str)> = vec![
        ("group.id", args.group.as_str()),
        ("client.id", model.binary()),
    ];
    if let Some(id) = &args.instance_id {
        defaults.push(("group.instance.id", id.as_str()));
    }
    defaults.extend_from_slice(CONSUMER_DEFAULTS);
    if args.telemetry.metrics_addr.is_some() {
        defaults.push(METRICS_STATISTICS);
    }
    args.kafka.client_config(&defaults)
}

/// Properties a `-X` may not change, and why: the consumers decide every
/// start position and every offset from the database (`start.rs`).
pub const FIXED_PROPERTIES: &[(&str, &str)] = &[
    (
        "auto.offset.reset",
        "every partition starts where its database proves it should (the log start on a \
         first read); a reset would skip events or read them again without a record. To start \
         a new database from the start, use a new --group and --db",
    ),
    (
        "enable.auto.commit",
        "offsets go to Kafka only after SQLite has committed their rows; an automatic commit \
         could get ahead of the database",
    ),
    (
        "enable.auto.offset.store",
        "offsets go to Kafka only after SQLite has committed their rows; an automatic commit \
         could get ahead of the database",
    ),
];

/// Refuses a `-X` property of [`FIXED_PROPERTIES`] set to anything but
/// this project's value.
pub fn check_fixed(args: &ConsumerArgs) -> Result<(), ConsumerError> {
    for (key, value) in &args.kafka.properties {
        let (key, value) = (key.as_str(), value.as_str());
        let Some((_, why)) = FIXED_PROPERTIES.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        let ours = CONSUMER_DEFAULTS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v);
        if ours != Some(value) {
            return Err(ConsumerError::ForbiddenProperty {
                key: key.to_string(),
                value: value.to_string(),
                why,
            });
        }
    }
    Ok(())
}

/// Every librdkafka property in force for `config` (librdkafka's defaults
/// included), secrets redacted; callback and pointer entries left out.
///
/// Fails when librdkafka refuses the configuration, which is how a bad `-X`
/// property is reported before anything else happens.
pub fn properties_in_force(
    config: &ClientConfig,
) -> Result<BTreeMap<String, String>, ConsumerError> {
    let mut out = conf_dump(config).map_err(ConsumerError::Config)?;
    // Topic-level properties (auto.offset.reset, ...) live in the default
    // topic configuration, which the dump above does not show.
    for (k, v) in config.config_map() {
        out.insert(k.to_string(), v.to_string());
    }
    out.retain(|k, _| !(k.ends_with("_cb") || k == "opaque" || k == "default_topic_conf"));
    for (k, v) in out.iter_mut() {
        let shown = redacted(k, v);
        if shown != v.as_str() {
            *v = shown.to_string();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_cli_from;
    use crate::args::tests::Cli;

    #[test]
    fn properties_include_defaults_overrides_and_hide_secrets() {
        let cli: Cli = parse_cli_from(
            Model::Pull,
            [
                "c",
                "-X",
                "fetch.wait.max.ms=50",
                "-X",
                "sasl.password=hunter2",
                "-X",
                "queued.min.messages=5000",
            ],
        )
        .unwrap();
        let config = client_config(Model::Pull, &cli.consumer);
        let props = properties_in_force(&config).unwrap();
        assert_eq!(props["fetch.wait.max.ms"], "50");
        assert_eq!(props["queued.min.messages"], "5000");
        assert_eq!(props["enable.auto.commit"], "false");
        assert_eq!(props["auto.offset.reset"], "earliest");
        assert_eq!(props["group.id"], "banking-pull");
        assert_eq!(props["sasl.password"], "[redacted]");
        // a librdkafka default we did not set
        assert!(props.contains_key("session.timeout.ms"));
        assert!(!props.values().any(|v| v.contains("hunter2")));
    }

    #[test]
    fn statistics_only_with_metrics() {
        let off: Cli = parse_cli_from(Model::Push, ["c"]).unwrap();
        let props = properties_in_force(&client_config(Model::Push, &off.consumer)).unwrap();
        assert_eq!(props["statistics.interval.ms"], "0");
        let on: Cli =
            parse_cli_from(Model::Push, ["c", "--metrics-addr", "127.0.0.1:9464"]).unwrap();
        let props = properties_in_force(&client_config(Model::Push, &on.consumer)).unwrap();
        assert_eq!(props["statistics.interval.ms"], "5000");
    }

    #[test]
    fn settings_that_bypass_the_store_are_refused() {
        for bad in [
            "auto.offset.reset=latest",
            "auto.offset.reset=error",
            "enable.auto.commit=true",
            "enable.auto.offset.store=true",
        ] {
            let cli: Cli = parse_cli_from(Model::Pull, ["c", "-X", bad]).unwrap();
            let e = check_fixed(&cli.consumer).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        let same: Cli =
            parse_cli_from(Model::Pull, ["c", "-X", "auto.offset.reset=earliest"]).unwrap();
        check_fixed(&same.consumer).unwrap();
    }

    #[test]
    fn a_bad_property_is_refused() {
        let cli: Cli = parse_cli_from(Model::Pull, ["c", "-X", "no.such.property=1"]).unwrap();
        let config = client_config(Model::Pull, &cli.consumer);
        assert!(properties_in_force(&config).is_err());
    }
}
