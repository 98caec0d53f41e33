//! The binaries' Prometheus endpoints from the outside: [`scrape`], and
//! [`metrics_match_the_database`], the check both consumers' tests run.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::telemetry::names;
use prometheus_parse::{Sample, Value};

use crate::bins::{Bins, Model};
use crate::kafka::{Kafka, unique};
use crate::procs::{ConsumerCmd, GENEROUS, ProducerCmd, wait_until};
use crate::{free_port, verify};

#[derive(Debug)]
pub struct Scrape(Vec<Sample>);

/// GETs `http://<addr>/metrics` and parses it.
pub fn scrape(addr: &str) -> Result<Scrape> {
    let body = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .with_context(|| format!("GET http://{addr}/metrics"))?
        .body_mut()
        .read_to_string()
        .context("read the metrics")?;
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).context("parse the metrics")?;
    Ok(Scrape(parsed.samples))
}

impl Scrape {
    /// The samples of `name` with a plain value.
    fn numbers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a Sample, f64)> + 'a {
        let samples = self.0.iter().filter(move |s| s.metric == name);
        samples.filter_map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some((s, v)),
            _ => None,
        })
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.numbers(name).next().map(|(_, v)| v)
    }

    /// A counter's value, 0 when it is not there yet.
    pub fn counter(&self, name: &str) -> u64 {
        self.value(name).unwrap_or(0.0) as u64
    }

    /// How many observations histogram `name` holds.
    pub fn histogram_count(&self, name: &str) -> Option<u64> {
        if let Some(v) = self.value(&format!("{name}_count")) {
            return Some(v as u64);
        }
        let mut samples = self.0.iter().filter(|s| s.metric == name);
        samples.find_map(|s| match &s.value {
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map(|b| b.count as u64),
            _ => None,
        })
    }

    /// The value of `name` per `partition` label.
    pub fn by_partition(&self, name: &str) -> Vec<(i32, f64)> {
        self.numbers(name)
            .filter_map(|(s, v)| Some((s.labels.get("partition")?.parse().ok()?, v)))
            .collect()
    }
}

/// Events the check sends: enough for several batches at its rate.
const COUNT: u64 = 6_000;
const PARTITIONS: i32 = 3;

/// Runs `model` with `--metrics-addr` and `--log-format json` while a
/// paced producer with `--metrics-addr` sends [`COUNT`] events; scrapes
/// both while the events flow and at the end, checking them against each
/// other, the database and the stats file; every log line must be JSON.
pub fn metrics_match_the_database(test: &str, model: Model) -> Result<()> {
    let Some(kafka) = Kafka::shared_or_skip(test) else {
        return Ok(());
    };
    let bins = Bins::of_this_build();
    let dir = tempfile::tempdir()?;
    let topic = unique("metrics");
    kafka.create_topic(&topic, PARTITIONS)?;

    let consumer_addr = format!("127.0.0.1:{}", free_port());
    let group = unique("metrics");
    let mut cmd = ConsumerCmd::new(model, kafka.bootstrap(), &topic, &group, dir.path());
    cmd.idle_secs = None;
    let args =
        format!("--metrics-addr {consumer_addr} --log-format json -X statistics.interval.ms=200");
    let mut consumer = cmd.spawn(&bins, 1, &args.split(' ').collect::<Vec<_>>())?;
    let producer_addr = format!("127.0.0.1:{}", free_port());
    let mut pcmd = ProducerCmd::new(kafka.bootstrap(), &topic, COUNT, 11, 200);
    pcmd.rate = 2_000;
    pcmd.extra = vec!["--metrics-addr".into(), producer_addr.clone()];
    let mut producer = pcmd.spawn(&bins, dir.path(), "producer")?;

    let deadline = Instant::now() + GENEROUS;
    let mut producer_scrapes = 0;
    let mut mid_flow = 0;
    let end = loop {
        ensure!(Instant::now() < deadline, "the events were not all stored");
        if let Some(s) = consumer.try_status() {
            bail!("{} exited ({s}):\n{}", consumer.name, consumer.log_tail(20));
        }
        if producer.try_status().is_none() {
            if let Ok(p) = scrape(&producer_addr) {
                let sent = p.counter(names::PRODUCER_SENT);
                let acked = p.counter(names::PRODUCER_ACKNOWLEDGED);
                ensure!(acked <= sent, "acknowledged {acked} > sent {sent}");
                ensure!(p.counter(names::PRODUCER_FAILED) == 0, "failed deliveries");
                producer_scrapes += 1;
            }
        }
        // Not there until the endpoint is up: then try again.
        if let Ok(s) = scrape(&consumer_addr) {
            let committed = s.counter(names::EVENTS_COMMITTED);
            // The counter moves after the SQLite commit: never ahead of it.
            let rows = verify::row_count(&cmd.db);
            ensure!(committed <= rows, "counter {committed} > rows {rows}");
            if committed > 0 && committed < COUNT {
                mid_flow += 1;
            }
            if committed == COUNT {
                break s;
            }
        }
        thread::sleep(Duration::from_millis(50));
    };
    let produced = pcmd.finish(&mut producer)?;
    ensure!(producer_scrapes > 0, "the producer was never scraped");
    ensure!(mid_flow > 0, "no scrape saw the events flowing");
    ensure!(verify::row_count(&cmd.db) == COUNT);
    ensure!(produced.events_acknowledged == COUNT);
    ensure!(
        end.histogram_count(names::END_TO_END_SECONDS) == Some(COUNT),
        "latency histogram count {:?}",
        end.histogram_count(names::END_TO_END_SECONDS)
    );
    ensure!(end.counter(names::DEAD_LETTERS) == 0);
    ensure!(end.value(names::RSS).is_some_and(|v| v > 0.0), "no RSS");

    // Lag: librdkafka's statistics see the offsets committed to Kafka.
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let left = deadline.saturating_duration_since(Instant::now());
    wait_until(left, "the lag to reach 0 everywhere", || {
        scrape(&consumer_addr).is_ok_and(|s| {
            let lag = s.by_partition(names::CONSUMER_LAG);
            let zero = lag.iter().filter(|(_, v)| *v == 0.0).map(|(p, _)| *p);
            zero.collect::<BTreeSet<i32>>() == all
        })
    })?;
    let batches = scrape(&consumer_addr)?
        .histogram_count(names::BATCH_COMMIT_SECONDS)
        .context("no batch commit histogram")?;

    consumer.sigterm();
    let stats: common::stats::ConsumerStats = consumer.wait_success()?;
    ensure!(stats.events_committed == COUNT);
    ensure!(stats.dead_letters == 0);
    ensure!(
        stats.batches == batches,
        "stats file batches {} != histogram count {batches}",
        stats.batches
    );

    // --log-format json: every log line is an object with the text fields.
    let log = consumer.log_text();
    let mut json_lines = 0;
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        for field in ["timestamp", "level", "message"] {
            ensure!(v.get(field).is_some(), "no {field} in {line}");
        }
        json_lines += 1;
    }
    ensure!(json_lines > 0, "no JSON log line:\n{log}");
    ensure!(
        !log.lines()
            .any(|l| !l.starts_with('{') && l.contains(" INFO ")),
        "a text log line among the JSON ones:\n{log}"
    );
    Ok(())
}
