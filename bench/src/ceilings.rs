//! The two ceilings that bound a consumer, each in a process of its own so
//! that its CPU and memory are its own: **raw consume** (read and decode
//! every message, store nothing: no consumer reads faster) and **store
//! insert** (the same events regenerated and committed, no Kafka: no
//! consumer stores faster).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{Progress, ResourceUsage, now_us};
use producer::Generator;
use prost::Message as _;
use proto::BankingEvent;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use store::{BareTable, Batch, Store, StoreOptions};

use crate::cli::{ConsumeArgs, StoreArgs};
use crate::stats::{RawConsumeStats, STATS_VERSION, StoreInsertStats, rate};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Properties a raw read must not inherit: they name the consumers' own
/// group or client, or would make it commit.
const NOT_INHERITED: [&str; 4] = [
    "bootstrap.servers",
    "group.id",
    "client.id",
    "group.instance.id",
];

/// Reads and decodes `c.count` messages (or until `c.idle` seconds without
/// one) with the consumers' librdkafka settings, `c.properties`.
pub fn raw_consume(c: &ConsumeArgs) -> anyhow::Result<RawConsumeStats> {
    let mut config = ClientConfig::new();
    config.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
    for (k, v) in &c.properties {
        if !NOT_INHERITED.contains(&k.as_str()) {
            config.set(k, v);
        }
    }
    config
        .set("bootstrap.servers", &c.brokers)
        .set("group.id", &c.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    let settings: BTreeMap<String, String> = config
        .config_map()
        .iter()
        .map(|(k, v)| (k.to_string(), common::kafka::redacted(k, v).to_string()))
        .collect();
    let consumer: BaseConsumer = config.create().context("cannot create the consumer")?;
    consumer
        .subscribe(&[&c.topic])
        .with_context(|| format!("cannot subscribe to {}", c.topic))?;

    let mut progress = Progress::new(Some(c.count), "read (raw)");
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut last = started;
    let mut events = 0u64;
    let mut decode_errors = 0u64;
    let mut pending = 0u64;
    let exit_reason = loop {
        if events >= c.count {
            break "count";
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                events += 1;
                pending += 1;
                if proto::decode_event(m.payload().unwrap_or_default()).is_err() {
                    decode_errors += 1;
                }
                if pending >= 10_000 {
                    progress.inc(pending);
                    pending = 0;
                }
            }
            Some(Err(e)) => tracing::warn!("consumer error: {e}"),
            None => {
                let waited = match first {
                    Some(_) => last.elapsed() >= Duration::from_secs(c.idle),
                    None => started.elapsed() >= START_TIMEOUT,
                };
                if waited {
                    break if first.is_some() {
                        "idle"
                    } else {
                        "no-messages"
                    };
                }
            }
        }
    };
    progress.inc(pending);
    progress.finish();
    let wall = first.map(|f| (last - f).as_secs_f64()).unwrap_or(0.0);
    let usage = ResourceUsage::now();
    Ok(RawConsumeStats {
        version: STATS_VERSION,
        topic: c.topic.clone(),
        group: c.group.clone(),
        events,
        decode_errors,
        wall_seconds: wall,
        events_per_second: rate(events, wall),
        cpu_seconds: usage.cpu_seconds,
        max_rss_bytes: usage.max_rss_bytes,
        settings,
        exit_reason: exit_reason.to_string(),
    })
}

const CEILING_TOPIC: &str = "bench.store-ceiling";

/// Regenerates the producer's events and commits them, timing the commits:
/// into a [`Store`], or with `bare` as bare rows ([`BareTable`]: the store's
/// event columns in one table with one b-tree, the store's pragmas and
/// statements, nothing else). With `c.skip`, continues the database an
/// earlier run began (the benchmark measures each ceiling in two halves,
/// before and after the drains, so that the machine's drift weighs on both
/// sides); with `c.skip` 0 the database must not exist.
pub fn insert_ceiling(c: &StoreArgs, bare: bool) -> anyhow::Result<StoreInsertStats> {
    anyhow::ensure!(
        c.db.exists() == (c.skip > 0),
        "{} {}",
        c.db.display(),
        if c.skip == 0 {
            "exists already; the store ceiling needs a fresh database"
        } else {
            "does not exist; --skip continues a database an earlier run began"
        }
    );
    let batch_size = c.batch_size.max(1);
    let partitions = c.partitions.max(1) as u64;
    let mut generator = Generator::new(c.seed, c.accounts, c.first_id)
        .map_err(|e| anyhow::anyhow!("invalid generator settings: {e}"))?;
    // Passed over: stored by the first half.
    let mut skipped = std::collections::HashMap::new();
    let mut e = BankingEvent::default();
    for _ in 0..c.skip {
        generator.fill(&mut e, 0);
        *skipped
            .entry((e.account_id % partitions) as i32)
            .or_insert(0) += 1;
    }
    let opts = StoreOptions {
        keep_event_payloads: c.keep_event_payloads,
        ..StoreOptions::default()
    };
    let topic = CEILING_TOPIC;
    type Commit = Box<dyn FnMut(&Batch) -> anyhow::Result<()>>;
    let (mut commit, stored): (Commit, _) = if bare {
        let mut bare = BareTable::open(&c.db, &opts)
            .with_context(|| format!("cannot open {}", c.db.display()))?;
        anyhow::ensure!(
            bare.count()? == c.skip,
            "{} does not hold the {} rows --skip says",
            c.db.display(),
            c.skip
        );
        let insert = move |b: &Batch| bare.insert(b.events()).context("bare insert failed");
        (Box::new(insert), skipped)
    } else {
        let mut store = Store::open_with(&c.db, &opts)
            .with_context(|| format!("cannot open {}", c.db.display()))?;
        let stored = store
            .stored_offsets(topic)
            .with_context(|| format!("cannot read the offsets of {}", c.db.display()))?;
        let commit = move |b: &Batch| store.commit(b).map(drop).context("store commit failed");
        (Box::new(commit), stored)
    };
    let mut offsets: Vec<i64> = (0..partitions as i32)
        .map(|p| stored.get(&p).copied().unwrap_or(0))
        .collect();
    let mut progress = Progress::new(Some(c.events), "stored (no Kafka)");
    let started = Instant::now();
    let mut commit_time = Duration::ZERO;
    let mut commit_cpu = Duration::ZERO;
    let mut done = 0u64;
    let mut tenths: Vec<[f64; 2]> = Vec::with_capacity(10);
    let mut tenth_from = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut batches = 0u64;
    // Batches are generated on a thread of their own while the previous one
    // commits (as Kafka and decoding overlap with the commit in a consumer);
    // two batches at most exist: the one committing and the one filling.
    let (to_store, filled) = std::sync::mpsc::sync_channel::<Batch>(0);
    let (to_generator, emptied) = std::sync::mpsc::sync_channel::<Batch>(2);
    for _ in 0..2 {
        to_generator
            .send(Batch::with_capacity(topic, batch_size as usize))
            .expect("the channel has room for both batches");
    }
    let events = c.events;
    let generate_time = std::thread::scope(|scope| -> anyhow::Result<Duration> {
        let generating = scope.spawn(move || {
            let mut generate_time = Duration::ZERO;
            let mut left = events;
            while left > 0 {
                let Ok(mut batch) = emptied.recv() else { break };
                let n = batch_size.min(left);
                let t = Instant::now();
                for _ in 0..n {
                    let event = generator.next_event(now_us());
                    let payload = event.encode_to_vec();
                    let partition = (event.account_id % partitions) as usize;
                    let offset = offsets[partition];
                    offsets[partition] += 1;
                    batch.push_event(partition as i32, offset, event, payload);
                }
                generate_time += t.elapsed();
                left -= n;
                if to_store.send(batch).is_err() {
                    break;
                }
            }
            generate_time
        });
        let committed = (|| -> anyhow::Result<()> {
            for mut batch in filled.iter() {
                let n = batch.len() as u64;
                let t = Instant::now();
                let cpu = thread_cpu();
                commit(&batch)?;
                commit_cpu += thread_cpu().saturating_sub(cpu);
                commit_time += t.elapsed();
                batch.clear();
                batches += 1;
                done += n;
                // A batch larger than a tenth completes several: each gets
                // the rate of the batches since the last one recorded.
                if done * 10 >= events * (tenths.len() as u64 + 1) {
                    let (time, cpu) = (commit_time - tenth_from.0, commit_cpu - tenth_from.1);
                    let stored = (done - tenth_from.2) as f64;
                    let rates = [
                        stored / time.as_secs_f64().max(1e-9),
                        stored / cpu.as_secs_f64().max(1e-9),
                    ];
                    while tenths.len() < 10 && done * 10 >= events * (tenths.len() as u64 + 1) {
                        tenths.push(rates);
                    }
                    tenth_from = (commit_time, commit_cpu, done);
                }
                progress.inc(n);
                // The generator may be done already: then the batch is dropped.
                let _ = to_generator.send(batch);
            }
            Ok(())
        })();
        // After a failed commit the generator must not wait for us.
        drop(filled);
        drop(to_generator);
        let generate_time = generating.join().expect("the generator thread panicked");
        committed.map(|()| generate_time)
    })?;
    progress.finish();
    drop(commit);
    let wall = started.elapsed().as_secs_f64();
    let usage = ResourceUsage::now();
    let commit_s = commit_time.as_secs_f64();
    Ok(StoreInsertStats {
        version: STATS_VERSION,
        events: done,
        batch_size,
        batches,
        commit_seconds: commit_s,
        commit_cpu_seconds: commit_cpu.as_secs_f64(),
        generate_seconds: generate_time.as_secs_f64(),
        wall_seconds: wall,
        events_per_second: rate(done, commit_s),
        events_per_second_with_generation: rate(done, wall),
        db_bytes: db_bytes(&c.db),
        cpu_seconds: usage.cpu_seconds,
        max_rss_bytes: usage.max_rss_bytes,
        halves_events_per_second: None,
        tenths,
    })
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only fills it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The file plus its WAL.
pub fn db_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        })
        .sum()
}

pub fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::IdChecksum;

    /// Every generated event is committed once, in batches of the given
    /// size (the last one short), whatever the generator thread's pace.
    #[test]
    fn store_ceiling_commits_exactly_the_generated_events() {
        let dir = tempfile::tempdir().unwrap();
        let c = StoreArgs {
            db: dir.path().join("ceiling.db"),
            events: 2_500,
            seed: 7,
            accounts: 100,
            first_id: 11,
            batch_size: 1_000,
            partitions: 3,
            skip: 0,
            keep_event_payloads: false,
            stats_json: None,
        };
        let stats = insert_ceiling(&c, false).unwrap();
        assert_eq!((stats.events, stats.batches), (2_500, 3));
        assert_eq!(stats.tenths.len(), 10);
        assert!(stats.commit_seconds <= stats.wall_seconds);
        // A second fresh run refuses the existing database...
        assert!(insert_ceiling(&c, false).is_err());
        // ...and a continuation refuses a missing one.
        let missing = StoreArgs {
            db: dir.path().join("missing.db"),
            skip: 10,
            ..c.clone()
        };
        assert!(insert_ceiling(&missing, false).is_err());

        // The second half continues the generator and the offsets: the
        // database then holds exactly the first 4,000 events, once each.
        let second = StoreArgs {
            events: 1_500,
            skip: 2_500,
            ..c.clone()
        };
        assert_eq!(insert_ceiling(&second, false).unwrap().events, 1_500);

        let mut expected = Generator::new(7, 100, 11).unwrap();
        let (mut sum, mut checksum) = (0i128, IdChecksum::default());
        let mut per_partition = std::collections::HashMap::<i32, i64>::new();
        for _ in 0..4_000 {
            let e = expected.next_event(0);
            sum += i128::from(e.amount_minor);
            checksum.add(e.event_id);
            *per_partition.entry((e.account_id % 3) as i32).or_default() += 1;
        }
        let store = Store::open(&c.db).unwrap();
        let s = store.summary().unwrap();
        assert_eq!((s.events, s.distinct_event_ids), (4_000, 4_000));
        assert_eq!(s.amount_minor_sum, sum);
        assert_eq!(s.id_checksum, checksum);
        assert_eq!(store.stored_offsets(CEILING_TOPIC).unwrap(), per_partition);
    }
}
