//! End-to-end scenarios of a consumer binary (consumer-pull or
//! consumer-push), written once and run against each: the test hosts
//! librdkafka's mock cluster, produces events, spawns the binary given by
//! path as a separate process, and checks the SQLite database it leaves
//! against [`Expected`], which is computed from the generator
//! independently of the store's code.
//!
//! Each scenario is one `#[test]` in `consumer-pull/tests/` and
//! `consumer-push/tests/`, a single line calling the function here with
//! `env!("CARGO_BIN_EXE_...")`.
//!
//! No timing is asserted except the explicit bound (SIGTERM: exit
//! within 5 s); every other wait is generous, and a run that hangs fails
//! with the consumer's log attached.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use banking_common::stats::{ConsumerStats, ExitReason, read_stats};
use banking_producer::ProducerStats;
use banking_proto::{BankingEvent, decode_event};
use banking_store::{Store, Summary};
use prost::Message as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::{Expected, MockKafka, producer_args};

/// Topic of every scenario.
pub const TOPIC: &str = "banking.events";
/// Partitions of the topic.
pub const PARTITIONS: i32 = 6;
/// Events of the main scenarios (well under the mock cluster's 5 MiB per
/// partition).
pub const EVENTS: u64 = 50_000;
const ACCOUNTS: u64 = 2_000;
/// Longest wait for anything but the SIGTERM bound.
const GENEROUS: Duration = Duration::from_secs(180);

/// librdkafka settings that make group changes quick on the mock cluster:
/// a killed member is declared dead after 6 s instead of 45 s, and members
/// notice a rebalance within half a second.
const FAST_GROUP: &[&str] = &[
    "-X",
    "session.timeout.ms=6000",
    "-X",
    "heartbeat.interval.ms=500",
];

// ---------------------------------------------------------------------------
// Running the binary

/// A scratch directory with the databases, stats files and logs of one
/// scenario. Kept (and its path printed) when the scenario fails.
pub struct Workdir {
    dir: Option<tempfile::TempDir>,
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "scenario failed: its files are kept in {}",
                    dir.keep().display()
                );
            }
        }
    }
}

impl Workdir {
    /// A new scratch directory.
    pub fn new(name: &str) -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("consumer-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        Workdir { dir: Some(dir) }
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.as_ref().expect("not dropped").path().join(name)
    }
}

/// One run of a consumer binary.
pub struct ConsumerRun {
    child: Child,
    log: PathBuf,
    stats: PathBuf,
    name: String,
}

impl ConsumerRun {
    /// Spawns `bin` against `bootstrap` with database `db` in group
    /// `group`; `--stats-json`, quick group settings and (unless `extra`
    /// has its own) `--exit-when-idle 3` are added, then `extra`. Output
    /// goes to `<name>.log`.
    pub fn spawn(
        bin: &Path,
        work: &Workdir,
        name: &str,
        bootstrap: &str,
        group: &str,
        db: &Path,
        extra: &[&str],
    ) -> ConsumerRun {
        let log = work.path(&format!("{name}.log"));
        let stats = work.path(&format!("{name}.json"));
        let out = File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let idle: &[&str] = if extra.contains(&"--exit-when-idle") {
            &[]
        } else {
            &["--exit-when-idle", "3"]
        };
        let child = Command::new(bin)
            .args(["--brokers", bootstrap, "--topic", TOPIC, "--group", group])
            .arg("--db")
            .arg(db)
            .arg("--stats-json")
            .arg(&stats)
            .args(idle)
            .args(FAST_GROUP)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("KAFKA_BROKERS")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        ConsumerRun {
            child,
            log,
            stats,
            name: name.to_string(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit, at most `timeout` (then kills it and
    /// fails with its log).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {timeout:?}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a clean exit (status 0) and returns the stats file.
    pub fn wait_success(&mut self) -> ConsumerStats {
        let status = self.wait(GENEROUS);
        assert!(
            status.success(),
            "{} exited with {status}; its log:\n{}",
            self.name,
            self.log()
        );
        self.stats()
    }

    /// The `--stats-json` file.
    pub fn stats(&self) -> ConsumerStats {
        read_stats(&self.stats)
            .unwrap_or_else(|e| panic!("{}: {e}; its log:\n{}", self.name, self.log()))
    }

    /// SIGKILL, and wait for it.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {}", self.pid());
    }
}

impl Drop for ConsumerRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Producing

/// Produces `count` events of `seed` (ids from 1) with the producer
/// library, at `rate` events/s (0: as fast as possible), in a background
/// thread.
fn produce_in_background(
    bootstrap: &str,
    count: u64,
    seed: u64,
    rate: u64,
) -> JoinHandle<ProducerStats> {
    let bootstrap = bootstrap.to_string();
    thread::spawn(move || {
        let (count, seed, rate, accounts) = (
            count.to_string(),
            seed.to_string(),
            rate.to_string(),
            ACCOUNTS.to_string(),
        );
        let args = producer_args(
            &bootstrap,
            TOPIC,
            &[
                "--count",
                &count,
                "--seed",
                &seed,
                "--accounts",
                &accounts,
                "--rate",
                &rate,
                "--timeout",
                "60",
            ],
        );
        let stats = banking_producer::run(&args, &AtomicBool::new(false)).expect("produce events");
        assert_eq!(
            stats.events_failed, 0,
            "delivery failures: {:?}",
            stats.errors
        );
        assert_eq!(stats.events_acknowledged, stats.events_requested);
        stats
    })
}

fn produce(bootstrap: &str, count: u64, seed: u64) -> ProducerStats {
    produce_in_background(bootstrap, count, seed, 0)
        .join()
        .expect("producer thread")
}

/// Where a message landed (partition, offset), or why it did not.
type Landed = Result<(i32, i64), String>;

/// Delivery reports of the plain producer: message index -> where it landed.
#[derive(Default)]
struct Deliveries(Mutex<BTreeMap<usize, Landed>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        let r = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().unwrap().insert(*index, r);
    }
}

/// One message for the plain producer.
struct Raw {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
}

/// Sends `messages` in order with a plain rdkafka producer and returns
/// where each one landed.
fn produce_raw(bootstrap: &str, messages: &[Raw]) -> Vec<(i32, i64)> {
    let producer: rdkafka::producer::BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create_with_context(Deliveries::default())
        .expect("create a plain producer");
    for (i, m) in messages.iter().enumerate() {
        let mut record = BaseRecord::<[u8], [u8], Box<usize>>::with_opaque_to(TOPIC, Box::new(i));
        if let Some(k) = &m.key {
            record = record.key(k.as_slice());
        }
        if let Some(p) = &m.payload {
            record = record.payload(p.as_slice());
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "send: {e}"
                    );
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush the plain producer");
    let deliveries = std::mem::take(&mut *producer.context().0.lock().unwrap());
    assert_eq!(
        deliveries.len(),
        messages.len(),
        "every message got a delivery report"
    );
    deliveries
        .into_iter()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("message {i} was not delivered: {e}")))
        .collect()
}

// ---------------------------------------------------------------------------
// Reading the database

/// Rows in `events` right now (0 while the file does not exist).
pub fn row_count(db: &Path) -> u64 {
    if !db.exists() {
        return 0;
    }
    let conn = match rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(_) => return 0,
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .unwrap_or(0)
}

/// Waits until `db` holds at least `n` events.
fn wait_for_rows(db: &Path, n: u64, run: &ConsumerRun) -> u64 {
    let deadline = Instant::now() + GENEROUS;
    loop {
        let rows = row_count(db);
        if rows >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} never stored {n} events ({rows} so far); its log:\n{}",
            run.name,
            run.log()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn read_store(db: &Path) -> Store {
    Store::open(db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

/// Every stored event id, in order.
fn stored_ids(db: &Path) -> Vec<u64> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare("SELECT event_id FROM events ORDER BY event_id")
        .expect("prepare");
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .expect("query")
        .map(|r| r.expect("row") as u64)
        .collect()
}

/// Balances of one or more databases, summed per (account, currency).
fn balances_of(dbs: &[&Path]) -> BTreeMap<(u64, String), (i64, u64)> {
    let mut out: BTreeMap<(u64, String), (i64, u64)> = BTreeMap::new();
    for db in dbs {
        for b in read_store(db).balances().expect("read balances") {
            let slot = out.entry((b.account_id, b.currency)).or_default();
            slot.0 += b.balance_minor;
            slot.1 += b.event_count;
        }
    }
    out
}

/// The database holds exactly the expected events: count, distinct ids,
/// the ids themselves, amount sum, checksum, balances, no dead letters.
fn assert_exact(db: &Path, expected: &Expected, produced: Option<&ProducerStats>) -> Summary {
    let s = read_store(db).summary().expect("summary");
    let n = expected.ids.len() as u64;
    assert_eq!(s.events, n, "rows in events");
    assert_eq!(s.distinct_event_ids, n, "distinct event ids");
    assert_eq!(
        s.dead_letters, 0,
        "dead letters (a redelivered event would be one: a duplicate id)"
    );
    assert_eq!(s.amount_minor_sum, expected.amount_minor_sum, "amount sum");
    assert_eq!(s.id_checksum, expected.id_checksum, "id checksum");
    if let Some(p) = produced {
        assert_eq!(
            s.amount_minor_sum, p.amount_minor_sum,
            "producer's amount sum"
        );
        assert_eq!(s.id_checksum.hex(), p.id_checksum, "producer's id checksum");
    }
    let ids: HashSet<u64> = stored_ids(db).into_iter().collect();
    assert!(
        ids == expected.ids,
        "the stored ids are not the produced ones"
    );
    let balances = balances_of(&[db]);
    assert_eq!(
        balances.len(),
        expected.balances.len(),
        "number of balances"
    );
    assert!(
        balances == expected.balances,
        "balances differ from the independently computed ones"
    );
    s
}

/// Per partition: (rows, lowest offset, highest offset) in `events`, and
/// the next offset in `offsets`. Rows must be contiguous from 0 and end
/// right before the stored next offset: no gap, nothing past the offsets.
fn assert_offsets_match_rows(db: &Path) -> BTreeMap<i32, i64> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut rows: BTreeMap<i32, (i64, i64, i64)> = BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT kafka_partition, count(*), min(kafka_offset), max(kafka_offset) \
             FROM events GROUP BY kafka_partition",
        )
        .unwrap();
    for r in stmt
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
    {
        let (p, v) = r.unwrap();
        rows.insert(p, v);
    }
    let stored = read_store(db)
        .stored_offsets(TOPIC)
        .expect("stored offsets");
    for (p, (count, min, max)) in &rows {
        assert_eq!(*min, 0, "partition {p}: first stored offset");
        assert_eq!(*max + 1, *count, "partition {p}: offsets have a gap");
        assert_eq!(
            stored.get(p).copied(),
            Some(max + 1),
            "partition {p}: stored next offset vs rows"
        );
    }
    stored.into_iter().collect()
}

/// The group's committed offsets in Kafka.
fn group_offsets(bootstrap: &str, group: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create an offsets reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range(TOPIC, 0, PARTITIONS - 1);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("read committed offsets");
    committed
        .elements_for_topic(TOPIC)
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The scenarios

/// 50,000 events over 6 partitions: the database holds exactly 50,000 rows,
/// 50,000 distinct ids, the producer's amount sum and checksum, and the
/// independently computed balances.
pub fn full_run(bin: &Path) {
    let kafka = MockKafka::start(TOPIC, PARTITIONS);
    let work = Workdir::new("full-run");
    let produced = produce(&kafka.bootstrap, EVENTS, 11);
    assert_eq!(produced.events_acknowledged, EVENTS);
    let expected = Expected::of(11, ACCOUNTS, EVENTS);

    let db = work.path("c.db");
    let mut run = ConsumerRun::spawn(bin, &work, "run", &kafka.bootstrap, "g", &db, &[]);
    let stats = run.wait_success();
    assert_exact(&db, &expected, Some(&produced));
    assert_eq!(stats.events_committed, EVENTS);
    assert_eq!(stats.dead_letters, 0);
    assert_eq!(stats.exit_reason, ExitReason::Idle);
    assert_eq!(stats.latency_us.count, EVENTS);
    assert!(stats.events_per_second > 0.0);
    assert!(stats.settings.librdkafka.contains_key("fetch.wait.max.ms"));
    assert!(!stats.timeline.is_empty());
    // After a clean exit Kafka has a copy of the final offsets.
    let stored = assert_offsets_match_rows(&db);
    assert_eq!(group_offsets(&kafka.bootstrap, "g"), stored);

    // The database, not Kafka, says where to resume: a run in a new group
    // (no offsets in Kafka, auto.offset.reset=earliest) stores nothing.
    let mut again = ConsumerRun::spawn(bin, &work, "again", &kafka.bootstrap, "fresh", &db, &[]);
    let stats = again.wait_success();
    assert_eq!(stats.events_committed, 0, "events read again");
    assert_eq!(stats.dead_letters, 0);
    assert_exact(&db, &expected, Some(&produced));
}

/// `kill -9` in the middle of the run, then a restart: exactly the produced
/// events, no duplicates, balances exact.
pub fn kill9_then_restart(bin: &Path) {
    let kafka = MockKafka::start(TOPIC, PARTITIONS);
    let work = Workdir::new("kill9");
    let db = work.path("c.db");
    // Produced while the first run consumes: it is killed while events are
    // still arriving, so certainly mid-run.
    let producer = produce_in_background(&kafka.bootstrap, EVENTS, 12, 10_000);
    let small_batches = ["--batch-size", "1000", "--flush-interval-ms", "20"];
    let mut first = ConsumerRun::spawn(
        bin,
        &work,
        "first",
        &kafka.bootstrap,
        "g",
        &db,
        &small_batches,
    );
    wait_for_rows(&db, 1, &first);
    first.kill9();
    let at_kill = row_count(&db);
    let produced = producer.join().expect("producer thread");
    assert!(
        at_kill > 0 && at_kill < EVENTS,
        "killed with {at_kill} rows stored"
    );
    eprintln!("killed with {at_kill} of {EVENTS} events stored");
    // The rows and offsets of the killed run are consistent.
    assert_offsets_match_rows(&db);

    let mut second = ConsumerRun::spawn(
        bin,
        &work,
        "second",
        &kafka.bootstrap,
        "g",
        &db,
        &small_batches,
    );
    let stats = second.wait_success();
    let expected = Expected::of(12, ACCOUNTS, EVENTS);
    assert_exact(&db, &expected, Some(&produced));
    assert_eq!(
        stats.events_committed,
        EVENTS - at_kill,
        "the restart stored exactly what the killed run had not"
    );
    assert_eq!(stats.duplicates, 0);
    assert_offsets_match_rows(&db);
}

/// 1% bad messages (random bytes, truncated protobuf, events failing
/// validation, empty and null values) interleaved with good events: every
/// good event stored, every bad one in `dead_letters` with its partition,
/// offset, key and bytes; the consumer does not stop early.
pub fn bad_messages(bin: &Path) {
    const GOOD: u64 = 20_000;
    const BAD: usize = 200;
    let kafka = MockKafka::start(TOPIC, PARTITIONS);
    let work = Workdir::new("bad");
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut generator = banking_producer::Generator::new(13, ACCOUNTS, 1).expect("generator");
    let now = banking_common::now_us();
    let good: Vec<BankingEvent> = (0..GOOD).map(|_| generator.next_event(now)).collect();
    let expected = Expected::from_events(good.clone());

    // Where the bad ones go among the good ones.
    let mut bad_at: BTreeSet<usize> = BTreeSet::new();
    while bad_at.len() < BAD {
        bad_at.insert(rng.random_range(0..GOOD as usize + BAD));
    }
    let mut messages = Vec::with_capacity(GOOD as usize + BAD);
    let mut good_iter = good.iter();
    let mut bad_index = Vec::new();
    for i in 0..GOOD as usize + BAD {
        if bad_at.contains(&i) {
            bad_index.push(messages.len());
            messages.push(bad_message(bad_index.len() - 1, &mut rng, now));
        } else {
            let e = good_iter.next().expect("enough good events");
            messages.push(Raw {
                key: Some(e.account_id.to_string().into_bytes()),
                payload: Some(e.encode_to_vec()),
            });
        }
    }
    let landed = produce_raw(&kafka.bootstrap, &messages);

    let db = work.path("c.db");
    let mut run = ConsumerRun::spawn(bin, &work, "run", &kafka.bootstrap, "g", &db, &[]);
    let stats = run.wait_success();
    assert_eq!(stats.exit_reason, ExitReason::Idle, "stopped early");
    assert_eq!(stats.events_committed, GOOD);
    assert_eq!(stats.dead_letters, BAD as u64);

    let store = read_store(&db);
    let s = store.summary().expect("summary");
    assert_eq!(s.events, GOOD);
    assert_eq!(s.distinct_event_ids, GOOD);
    assert_eq!(s.amount_minor_sum, expected.amount_minor_sum);
    assert_eq!(s.id_checksum, expected.id_checksum);
    assert!(balances_of(&[&db]) == expected.balances, "balances");
    let dead = store.dead_letters().expect("dead letters");
    assert_eq!(dead.len(), BAD);
    let mut want: BTreeMap<(i32, i64), &Raw> = BTreeMap::new();
    for &i in &bad_index {
        want.insert(landed[i], &messages[i]);
    }
    for d in &dead {
        let raw = want.remove(&(d.partition, d.offset)).unwrap_or_else(|| {
            panic!(
                "dead letter at {}/{} was not a bad message",
                d.partition, d.offset
            )
        });
        assert_eq!(d.topic, TOPIC);
        assert_eq!(
            d.payload, raw.payload,
            "raw bytes of {}/{}",
            d.partition, d.offset
        );
        assert_eq!(d.key, raw.key, "key of {}/{}", d.partition, d.offset);
        assert!(!d.error.is_empty());
    }
    assert!(
        want.is_empty(),
        "bad messages missing from dead_letters: {:?}",
        want.keys()
    );
    assert_offsets_match_rows_with_dead_letters(&db, &landed);
}

/// A message that must not be stored as an event, of the kind `n % 5`.
fn bad_message(n: usize, rng: &mut ChaCha8Rng, now: i64) -> Raw {
    let key = Some(format!("bad-{n}").into_bytes());
    let payload = match n % 5 {
        // random bytes
        0 => loop {
            let len = rng.random_range(1..200);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if decode_event(&bytes).is_err() {
                break Some(bytes);
            }
        },
        // truncated protobuf: a valid event cut short
        1 => {
            let mut g =
                banking_producer::Generator::new(1_000 + n as u64, ACCOUNTS, 9_000_000 + n as u64)
                    .expect("generator");
            let full = g.next_event(now).encode_to_vec();
            let mut cut = full.len() / 2;
            while decode_event(&full[..cut]).is_ok() {
                cut -= 1;
            }
            Some(full[..cut].to_vec())
        }
        // a well-formed event that fails validation
        2 | 3 => {
            let mut g =
                banking_producer::Generator::new(2_000 + n as u64, ACCOUNTS, 8_000_000 + n as u64)
                    .expect("generator");
            let mut e = g.next_event(now);
            match n % 4 {
                0 => e.amount_minor = -e.amount_minor.abs() - 1,
                1 => e.currency = "usd".into(),
                2 => e.event_id = 0,
                _ => e.created_at_us = 0,
            }
            assert!(decode_event(&e.encode_to_vec()).is_err());
            Some(e.encode_to_vec())
        }
        // no value at all
        _ => None,
    };
    Raw { key, payload }
}

/// Offsets cover events and dead letters together, without gaps.
fn assert_offsets_match_rows_with_dead_letters(db: &Path, landed: &[(i32, i64)]) {
    let mut per_partition: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in landed {
        let e = per_partition.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    let stored: BTreeMap<i32, i64> = read_store(db)
        .stored_offsets(TOPIC)
        .expect("stored offsets")
        .into_iter()
        .collect();
    assert_eq!(stored, per_partition, "stored offsets cover every message");
}

/// SIGTERM mid-run: exit 0 within 5 s with the open batch committed (rows
/// and offsets agree, and Kafka holds the same offsets); a restart
/// continues with no gap and no duplicate.
pub fn sigterm_then_restart(bin: &Path) {
    let kafka = MockKafka::start(TOPIC, PARTITIONS);
    let work = Workdir::new("sigterm");
    let db = work.path("c.db");
    // ~10 s of production: the signal comes while events are arriving.
    let producer = produce_in_background(&kafka.bootstrap, EVENTS, 14, 5_000);
    // Batches larger than the topic and a flush interval longer than the
    // test: nothing is committed until the signal, so what the first run
    // stores is exactly its open batch, committed on the way out.
    let args = ["--batch-size", "1000000", "--flush-interval-ms", "600000"];
    let mut first = ConsumerRun::spawn(bin, &work, "first", &kafka.bootstrap, "g", &db, &args);
    wait_for_log(&first, "assigned ");
    thread::sleep(Duration::from_secs(1));
    assert_eq!(row_count(&db), 0, "nothing committed before the signal");
    let signalled = Instant::now();
    first.sigterm();
    let status = first.wait(Duration::from_secs(60));
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}; log:\n{}",
        first.log()
    );
    assert!(
        took <= Duration::from_secs(5),
        "took {took:?} to exit after SIGTERM; log:\n{}",
        first.log()
    );
    let stats = first.stats();
    assert_eq!(stats.exit_reason, ExitReason::Signal);
    let at_signal = row_count(&db);
    assert!(at_signal > 0, "the open batch was not committed on SIGTERM");
    assert!(
        at_signal < EVENTS,
        "the signal came after everything was produced"
    );
    assert_eq!(stats.events_committed, at_signal);
    assert_eq!(stats.batches, 1);
    // The stored offsets are exactly past the rows, and Kafka got the same
    // offsets before the consumer left the group.
    let stored = assert_offsets_match_rows(&db);
    assert_eq!(
        group_offsets(&kafka.bootstrap, "g"),
        stored,
        "Kafka's offsets"
    );

    let produced = producer.join().expect("producer thread");
    let mut second = ConsumerRun::spawn(bin, &work, "second", &kafka.bootstrap, "g", &db, &[]);
    let stats = second.wait_success();
    assert_exact(&db, &Expected::of(14, ACCOUNTS, EVENTS), Some(&produced));
    assert_eq!(stats.events_committed, EVENTS - at_signal);
    assert_offsets_match_rows(&db);
}

/// Waits until the run's log contains `needle`.
fn wait_for_log(run: &ConsumerRun, needle: &str) {
    let deadline = Instant::now() + GENEROUS;
    while !run.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{} never logged {needle:?}; its log:\n{}",
            run.name,
            run.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Another connection holds the write lock for 2 s while events arrive:
/// the consumer waits, then continues; nothing is lost or doubled.
pub fn write_lock_for_two_seconds(bin: &Path) {
    let kafka = MockKafka::start(TOPIC, PARTITIONS);
    let work = Workdir::new("lock");
    let db = work.path("c.db");
    // Phase 1: the first half, consumed completely.
    let first_half = produce(&kafka.bootstrap, EVENTS / 2, 15);
    // Idle longer than it takes to lock and produce the second half, even
    // on a loaded machine.
    let mut run = ConsumerRun::spawn(
        bin,
        &work,
        "run",
        &kafka.bootstrap,
        "g",
        &db,
        &["--exit-when-idle", "8"],
    );
    wait_for_rows(&db, EVENTS / 2, &run);

    // Phase 2: lock the database, then send the second half (ids follow
    // the first half's), so the consumer meets the lock with work to do.
    let conn = rusqlite::Connection::open(&db).expect("open db");
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let locked = Instant::now();
    let second_half = {
        let args = producer_args(
            &kafka.bootstrap,
            TOPIC,
            &[
                "--count",
                &(EVENTS / 2).to_string(),
                "--seed",
                "15",
                "--accounts",
                &ACCOUNTS.to_string(),
                "--first-id",
                &(EVENTS / 2 + 1).to_string(),
            ],
        );
        banking_producer::run(&args, &AtomicBool::new(false)).expect("produce")
    };
    assert_eq!(second_half.events_acknowledged, EVENTS / 2);
    thread::sleep(Duration::from_secs(2).saturating_sub(locked.elapsed()));
    assert_eq!(
        row_count(&db),
        EVENTS / 2,
        "nothing was written under our lock"
    );
    assert!(
        run.child.try_wait().expect("try_wait").is_none(),
        "the consumer exited while the database was locked; log:\n{}",
        run.log()
    );
    conn.execute_batch("COMMIT").expect("release the lock");
    drop(conn);

    let stats = run.wait_success();
    assert_eq!(stats.events_committed, EVENTS);
    let s = assert_exact(&db, &expected_two_halves(15), None);
    assert_eq!(
        s.amount_minor_sum,
        first_half.amount_minor_sum + second_half.amount_minor_sum,
        "the producer runs' amount sums"
    );
    assert_offsets_match_rows(&db);
}

/// The events of two producer runs of `seed` with ids 1.. and
/// EVENTS/2+1.. (each run restarts the generator at its first id).
fn expected_two_halves(seed: u64) -> Expected {
    let now = 0;
    let mut a = banking_producer::Generator::new(seed, ACCOUNTS, 1).expect("generator");
    let mut b =
        banking_producer::Generator::new(seed, ACCOUNTS, EVENTS / 2 + 1).expect("generator");
    let mut events: Vec<BankingEvent> = (0..EVENTS / 2).map(|_| a.next_event(now)).collect();
    events.extend((0..EVENTS / 2).map(|_| b.next_event(now)));
    Expected::from_events(events)
}

/// Two instances in one group, each with its own database, the second
/// joining mid-run: after the rebalance, the union of the two databases
/// holds every event exactly once. Then the second leaves (SIGTERM) and its
/// partitions go back to the first, whose database still has the offsets
/// from before it gave them away: it must resume from the group's newer
/// offsets, not read the second one's events again.
pub fn two_instances_one_group(bin: &Path) {
    let kafka = MockKafka::start(TOPIC, PARTITIONS);
    let work = Workdir::new("two");
    let (db_a, db_b) = (work.path("a.db"), work.path("b.db"));
    // Slow production (~12 s) so that the second instance joins, and the
    // group rebalances, while events are still arriving.
    let producer = produce_in_background(&kafka.bootstrap, EVENTS, 16, 4_000);
    // The mock cluster takes up to session.timeout.ms - 1 s (5 s here) for
    // each round of a rebalance; the newcomer holds no partition between
    // the two rounds of the cooperative protocol, and must not take that
    // for idleness.
    let args = ["--batch-size", "1000", "--exit-when-idle", "8"];
    let mut a = ConsumerRun::spawn(bin, &work, "a", &kafka.bootstrap, "g", &db_a, &args);
    wait_for_rows(&db_a, 1, &a);
    let mut b = ConsumerRun::spawn(bin, &work, "b", &kafka.bootstrap, "g", &db_b, &args);
    let produced = producer.join().expect("producer thread");
    wait_for_rows(&db_b, 1, &b);
    let deadline = Instant::now() + GENEROUS;
    while row_count(&db_a) + row_count(&db_b) < EVENTS {
        assert!(
            Instant::now() < deadline,
            "the two instances never stored everything"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let nb = row_count(&db_b);
    assert!(
        nb > 0,
        "the second instance never got a partition; its log:\n{}",
        b.log()
    );
    b.sigterm();
    let stats_b = b.wait_success();
    assert_eq!(stats_b.exit_reason, ExitReason::Signal);
    let stats_a = a.wait_success();
    assert!(
        a.log().matches("assigned ").count() >= 3,
        "the first instance did not get the partitions back; its log:\n{}",
        a.log()
    );

    let (na, nb) = (row_count(&db_a), row_count(&db_b));
    eprintln!("instance a stored {na}, instance b stored {nb}");
    assert_eq!(na + nb, EVENTS, "union of the two databases");
    assert_eq!(stats_a.events_committed, na);
    assert_eq!(stats_b.events_committed, nb);
    let expected = Expected::of(16, ACCOUNTS, EVENTS);
    let ids_a = stored_ids(&db_a);
    let ids_b: HashSet<u64> = stored_ids(&db_b).into_iter().collect();
    assert!(
        ids_a.iter().all(|id| !ids_b.contains(id)),
        "an event is in both databases"
    );
    let union: HashSet<u64> = ids_a.into_iter().chain(ids_b).collect();
    assert!(union == expected.ids, "the union is not the produced ids");
    let (sa, sb) = (
        read_store(&db_a).summary().unwrap(),
        read_store(&db_b).summary().unwrap(),
    );
    assert_eq!(sa.dead_letters + sb.dead_letters, 0);
    assert_eq!(
        sa.amount_minor_sum + sb.amount_minor_sum,
        produced.amount_minor_sum
    );
    assert!(
        balances_of(&[&db_a, &db_b]) == expected.balances,
        "the two databases' balances do not add up to the expected ones"
    );
}
