//! Item 4: bad messages from another producer on the same topic, 1% of the
//! stream, of every kind: empty (and null), random bytes, truncated
//! protobuf, oversized (`--oversized-bytes`, 16 KiB), wrong schema (JSON), valid protobuf with
//! invalid fields, duplicate event id (an exact re-send, or the same id
//! with another amount, on the same partition after the original). Every
//! one must land in `dead_letters`, every good event be stored once with
//! exact balances, and the consumer's throughput stay within the tolerance
//! of a clean run of the same good events.
//!
//! The good events are the producer's (same generator, seed and keys), sent
//! by a plain rdkafka producer here so that the bad ones can be interleaved;
//! the clean run reads the same good events, sent the same way, from a
//! topic of its own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use banking_proto::{BankingEvent, decode_event};
use prost::Message as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::{Spawn, exactness, expected, fresh_dir, start_broker};
use crate::verify::verify;
use crate::{Config, Outcome, Scenario};

const CLEAN: &str = "chaos.clean";
const BAD: &str = "chaos.bad";

/// The kinds of bad message, in the order they cycle.
const KINDS: [&str; 7] = [
    "empty",
    "random",
    "truncated",
    "oversized",
    "wrong-schema",
    "invalid-fields",
    "duplicate-id",
];

/// Runs the scenario: one clean and one bad run per consumer, one after
/// the other so that their throughputs compare.
pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "bad-messages")?;
    let broker = start_broker(cfg, &dir)?;
    broker.topic(CLEAN, cfg.partitions)?;
    broker.topic(BAD, cfg.partitions)?;
    let bad_count = cfg.events.div_ceil(100);
    send(cfg, &broker.bootstrap, CLEAN, 0)?;
    let per_kind = send(cfg, &broker.bootstrap, BAD, bad_count)?;
    let expected = expected(cfg);

    let mut outcomes = Vec::new();
    for &c in &cfg.consumers {
        let mut problems = Vec::new();
        // Best of `rounds` alternating clean and bad runs: the machine is
        // shared and noisy, a single pair of runs can differ by 30% either
        // way with no bad message at all.
        let mut eps = [0.0f64; 2];
        let mut figures = Vec::new();
        let runs =
            (0..cfg.throughput_rounds.max(1)).flat_map(|r| [(r, CLEAN, 0), (r, BAD, bad_count)]);
        for (round, topic, bad) in runs {
            let i = usize::from(bad > 0);
            let sub = dir.join(format!("{}-{topic}-{round}", c.name()));
            std::fs::create_dir_all(&sub)?;
            let spawn = Spawn {
                cfg,
                consumer: c,
                brokers: &broker.bootstrap,
                topic,
                dir: &sub,
                idle_secs: 3,
                db_dir: None,
            };
            let mut p = spawn.run(0, &[])?;
            let status = p.wait(Duration::from_secs(3600))?;
            if !status.success() {
                problems.push(format!("{topic}: exited with {status}: {}", p.log_tail(5)));
                continue;
            }
            let stats = spawn.stats(0)?;
            if stats["exit_reason"].as_str() != Some("idle") {
                problems.push(format!("{topic}: stopped early: {}", stats["exit_reason"]));
            }
            eps[i] = eps[i].max(stats["events_per_second"].as_f64().unwrap_or(0.0));
            let f = verify(&spawn.db(), &expected, bad)?;
            exactness(&f, cfg.events, &mut problems);
            if bad > 0 {
                kinds_in_dead_letters(&spawn.db(), &per_kind, &mut problems)?;
                figures.push(f);
            }
            // The databases of a 1M run take ~0.5 GB each: keep the last.
            if round + 1 < cfg.throughput_rounds {
                let _ = std::fs::remove_dir_all(&sub);
            }
        }
        let ratio = if eps[0] > 0.0 { eps[1] / eps[0] } else { 0.0 };
        if ratio < 1.0 - cfg.throughput_tolerance {
            problems.push(format!(
                "throughput with bad messages {:.0}/s is {:.0}% of the clean run's {:.0}/s",
                eps[1],
                ratio * 100.0,
                eps[0]
            ));
        }
        let f = figures.last().cloned().unwrap_or_default();
        outcomes.push(Outcome::new(
            Scenario::BadMessages,
            c.name(),
            format!(
                "events {} bad {bad_count} kinds {} dead_letters {} {} events_per_s (best of {}) clean {:.0} bad {:.0} ({:+.1}%)",
                f.events,
                KINDS.len(),
                f.dead_letters,
                f.brief(),
                cfg.throughput_rounds.max(1),
                eps[0],
                eps[1],
                (ratio - 1.0) * 100.0
            ),
            problems,
        ));
    }
    Ok(outcomes)
}

/// Every kind of bad message is among the dead letters, as often as sent.
fn kinds_in_dead_letters(
    db: &std::path::Path,
    per_kind: &BTreeMap<&'static str, u64>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let store = banking_store::Store::open(db)?;
    let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    for d in store.dead_letters()? {
        let key = d.key.as_deref().map(String::from_utf8_lossy);
        let kind = key
            .as_deref()
            .and_then(|k| k.strip_prefix("bad-"))
            .and_then(|k| KINDS.iter().find(|kind| k.starts_with(**kind)))
            .copied()
            .unwrap_or("duplicate-id");
        *seen.entry(kind).or_default() += 1;
    }
    if &seen != per_kind {
        problems.push(format!("dead letters by kind {seen:?}, sent {per_kind:?}"));
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Tally {}

impl ProducerContext for Tally {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Sends the good events of the configuration to `topic`, with `bad` bad
/// messages spread evenly at random among them. Returns how many of each
/// kind were sent.
fn send(cfg: &Config, brokers: &str, topic: &str, bad: u64) -> Result<BTreeMap<&'static str, u64>> {
    let producer: rdkafka::producer::BaseProducer<Tally> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("message.timeout.ms", "120000")
        .set("queue.buffering.max.messages", "500000")
        .create_with_context(Tally::default())?;
    let mut generator = banking_producer::Generator::new(cfg.seed, cfg.accounts, 1)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(4));
    let total = cfg.events + bad;
    let mut per_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut last_good: Option<BankingEvent> = None;
    let mut bad_left = bad;
    let mut good_left = cfg.events;
    let mut n_bad = 0u64;
    for _ in 0..total {
        // A bad message with probability bad_left / remaining, after at
        // least one good event (a duplicate needs an original).
        let remaining = bad_left + good_left;
        let is_bad = last_good.is_some()
            && bad_left > 0
            && (good_left == 0 || rng.random_range(0..remaining) < bad_left);
        let (key, payload): (Vec<u8>, Option<Vec<u8>>) = if is_bad {
            bad_left -= 1;
            let kind = KINDS[(n_bad % KINDS.len() as u64) as usize];
            n_bad += 1;
            *per_kind.entry(kind).or_default() += 1;
            let original = last_good.as_ref().expect("checked above");
            bad_message(kind, n_bad, original, cfg.oversized_bytes, &mut rng)
        } else {
            good_left -= 1;
            let e = generator.next_event(banking_common::now_us());
            let bytes = e.encode_to_vec();
            let key = e.account_id.to_string().into_bytes();
            last_good = Some(e);
            (key, Some(bytes))
        };
        let mut record = BaseRecord::<[u8], [u8], ()>::to(topic).key(key.as_slice());
        if let Some(p) = &payload {
            record = record.payload(p.as_slice());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("send to {topic}: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300))?;
    let t = producer.context();
    let (ok, failed) = (
        t.ok.load(Ordering::Relaxed),
        t.failed.load(Ordering::Relaxed),
    );
    if ok != total || failed != 0 {
        bail!("{topic}: {ok} of {total} messages acknowledged, {failed} failed");
    }
    Ok(per_kind)
}

/// One bad message of `kind`: (key, payload).
fn bad_message(
    kind: &'static str,
    n: u64,
    original: &BankingEvent,
    oversized: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = format!("bad-{kind}-{n}").into_bytes();
    let mut sample = original.clone();
    sample.event_id = 900_000_000_000 + n;
    let payload = match kind {
        "empty" => {
            if n % 2 == 0 {
                None
            } else {
                Some(Vec::new())
            }
        }
        "random" => loop {
            let len = rng.random_range(1..300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if decode_event(&bytes).is_err() {
                break Some(bytes);
            }
        },
        "truncated" => {
            let full = sample.encode_to_vec();
            let mut cut = full.len() / 2;
            while cut > 0 && decode_event(&full[..cut]).is_ok() {
                cut -= 1;
            }
            Some(full[..cut].to_vec())
        }
        "oversized" => {
            sample.transaction_ref = "X".repeat(oversized);
            Some(sample.encode_to_vec())
        }
        "wrong-schema" => Some(
            format!(
                "{{\"event_id\":{},\"account_id\":{},\"amount_minor\":{},\"currency\":\"{}\"}}",
                sample.event_id, sample.account_id, sample.amount_minor, sample.currency
            )
            .into_bytes(),
        ),
        "invalid-fields" => {
            match n % 7 {
                0 => sample.amount_minor = -sample.amount_minor.abs() - 1,
                1 => sample.currency = "usd".into(),
                2 => sample.event_id = 0,
                3 => sample.created_at_us = 0,
                4 => sample.event_type = 99,
                5 => sample.account_id = 0,
                _ => sample.country = "Narnia".into(),
            }
            Some(sample.encode_to_vec())
        }
        _ => {
            // duplicate-id: the original again (same key, so same partition,
            // later offset), half the time with another amount.
            let mut dup = original.clone();
            if n % 2 == 0 {
                dup.amount_minor += 1;
            }
            return (
                dup.account_id.to_string().into_bytes(),
                Some(dup.encode_to_vec()),
            );
        }
    };
    if let Some(p) = &payload {
        assert!(
            decode_event(p).is_err(),
            "a {kind} bad message must not be a valid event"
        );
    }
    (key, payload)
}
