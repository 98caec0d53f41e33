//! `bad-messages` (chaos/README.md). The good events are the producer's,
//! sent by a plain rdkafka producer so that the bad ones can be interleaved.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use testkit::ConsumerStats;

use anyhow::Result;
use prost::Message as _;
use proto::{BankingEvent, decode_event};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use testkit::clients::RawProducer;
use testkit::verify;

use super::{broker, consumer, exactness, expected, fresh_dir, sub, topic};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::BadMessages;

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

/// A bad message as sent.
struct BadSent {
    kind: &'static str,
    key: Vec<u8>,
    payload: Option<Vec<u8>>,
}

/// The bad messages of a topic: how many of each kind, and each one by the
/// (partition, offset) where it landed.
#[derive(Default)]
struct Sent {
    per_kind: BTreeMap<&'static str, u64>,
    at: HashMap<(i32, i64), BadSent>,
}

/// Clean and bad runs one after the other, so that their throughputs
/// compare.
pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "bad-messages")?;
    let broker = broker(cfg)?;
    let clean = topic(cfg, &*broker, "clean")?;
    let bad = topic(cfg, &*broker, "bad")?;
    let brokers = broker.bootstrap().to_string();
    let bad_count = cfg.events.div_ceil(100);
    send(cfg, &brokers, &clean, 0)?;
    let sent = send(cfg, &brokers, &bad, bad_count)?;
    let expected = expected(cfg);

    let mut outcomes = Vec::new();
    for &c in &cfg.consumers {
        let mut problems = Vec::new();
        // Best of `rounds` alternating clean and bad runs: the machine is
        // shared and noisy, a single pair of runs can differ by 30% either
        // way with no bad message at all.
        let mut eps = [0.0f64; 2];
        let mut figures = Vec::new();
        let runs = (0..cfg.throughput_rounds.max(1))
            .flat_map(|r| [(r, "clean", &clean, 0), (r, "bad", &bad, bad_count)]);
        for (round, name, topic, bad) in runs {
            let i = usize::from(bad > 0);
            let run_dir = sub(&dir, &format!("{}-{name}-{round}", c.name()))?;
            let mut cmd = consumer(cfg, SC, c, &brokers, topic, &run_dir);
            cmd.idle_secs = Some(3);
            let mut p = cmd.spawn(&cfg.bins, 0, &[])?;
            let status = p.wait(testkit::procs::GENEROUS)?;
            if !status.success() {
                problems.push(format!("{name}: exited with {status}: {}", p.log_tail(5)));
                continue;
            }
            let stats: ConsumerStats = p.read_stats()?;
            let reason = stats.exit_reason.name();
            if reason != "idle" {
                problems.push(format!("{name}: stopped early: {reason}"));
            }
            eps[i] = eps[i].max(stats.events_per_second);
            let f = verify(&cmd.db, &expected, bad)?;
            exactness(&f, cfg.events, &mut problems);
            if bad > 0 {
                dead_letters_as_sent(&cmd.db, &sent, &mut problems)?;
                figures.push(f);
            }
            // The databases of a 1M run take ~0.5 GB each: keep the last.
            if round + 1 < cfg.throughput_rounds {
                let _ = std::fs::remove_dir_all(&run_dir);
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
        let line = format!(
            "events {} bad {bad_count} kinds {} dead_letters {} {} events_per_s (best of {}) clean {:.0} bad {:.0} ({:+.1}%)",
            f.events,
            KINDS.len(),
            f.dead_letters,
            f.brief(),
            cfg.throughput_rounds.max(1),
            eps[0],
            eps[1],
            (ratio - 1.0) * 100.0
        );
        outcomes.push(Outcome::new(SC, c.name(), line, problems));
    }
    Ok(outcomes)
}

/// Every dead letter is a bad message exactly as sent: at the partition
/// and offset where it landed, with its key and bytes, and a reason; and
/// every kind is there as often as it was sent.
fn dead_letters_as_sent(db: &Path, sent: &Sent, problems: &mut Vec<String>) -> Result<()> {
    let store = store::Store::open(db)?;
    let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut strangers, mut altered) = (Vec::new(), Vec::new());
    for d in store.dead_letters()? {
        let at = (d.partition, d.offset);
        match sent.at.get(&at) {
            None => strangers.push(at),
            Some(b) => {
                *seen.entry(b.kind).or_default() += 1;
                // A duplicate id is refused by the store after decoding,
                // where the message's key is no longer at hand (a stored
                // batch event carries none): its dead letter has no key.
                let key_ok = d.key.as_deref() == Some(b.key.as_slice())
                    || (b.kind == "duplicate-id" && d.key.is_none());
                if !key_ok || d.payload != b.payload || d.error.is_empty() {
                    altered.push(at);
                }
            }
        }
    }
    if !strangers.is_empty() {
        problems.push(format!(
            "{} dead letters are not where a bad message landed, e.g. partition/offset {:?}",
            strangers.len(),
            &strangers[..strangers.len().min(5)]
        ));
    }
    if !altered.is_empty() {
        problems.push(format!(
            "{} dead letters lack the key, bytes or reason of the message, e.g. {:?}",
            altered.len(),
            &altered[..altered.len().min(5)]
        ));
    }
    if seen != sent.per_kind {
        problems.push(format!(
            "dead letters by kind {seen:?}, sent {:?}",
            sent.per_kind
        ));
    }
    Ok(())
}

/// Sends the good events of the configuration to `topic` (the producer's:
/// same generator, seed and keys), with `bad` bad messages spread evenly at
/// random among them.
fn send(cfg: &Config, brokers: &str, topic: &str, bad: u64) -> Result<Sent> {
    let mut producer = RawProducer::new(brokers)?;
    let mut generator = producer::Generator::new(cfg.seed, cfg.accounts, 1)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(4));
    let mut sent = Sent::default();
    let mut bad_sent: Vec<BadSent> = Vec::new();
    let mut last_good: Option<BankingEvent> = None;
    let mut bad_left = bad;
    let mut good_left = cfg.events;
    while bad_left + good_left > 0 {
        // A bad message with probability bad_left / remaining, after at
        // least one good event (a duplicate needs an original).
        let remaining = bad_left + good_left;
        let is_bad = last_good.is_some()
            && bad_left > 0
            && (good_left == 0 || rng.random_range(0..remaining) < bad_left);
        if is_bad {
            bad_left -= 1;
            let n = bad_sent.len() as u64 + 1;
            let kind = KINDS[bad_sent.len() % KINDS.len()];
            *sent.per_kind.entry(kind).or_default() += 1;
            let original = last_good.as_ref().expect("checked above");
            let (key, payload) =
                bad_message(kind, n, original, cfg.oversized_bytes as usize, &mut rng);
            producer.send(topic, Some(&key), payload.as_deref(), Some(bad_sent.len()))?;
            bad_sent.push(BadSent { kind, key, payload });
        } else {
            good_left -= 1;
            let e = generator.next_event(common::now_us());
            let key = e.account_id.to_string().into_bytes();
            producer.send(topic, Some(&key), Some(&e.encode_to_vec()), None)?;
            last_good = Some(e);
        }
    }
    let landed = producer.finish()?;
    for (i, b) in bad_sent.into_iter().enumerate() {
        sent.at.insert(landed.tagged[&i], b);
    }
    Ok(sent)
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
        "empty" => (n % 2 == 1).then(Vec::new),
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
