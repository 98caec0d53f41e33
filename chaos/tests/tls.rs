//! TLS and SASL end to end (issue #6) on Apache Kafka's own listeners: the
//! real `producer`, `consumer-pull` and `consumer-push`, configured for TLS
//! and SASL with `-X` only.
//!
//! One private broker serves this test process, with two client listeners
//! besides the PLAINTEXT one it uses itself:
//! - `SSL`: TLS with a server certificate for 127.0.0.1 and `localhost`,
//!   signed by a CA made here with rcgen. Kafka reads PEM directly
//!   (`ssl.keystore.type=PEM`: one file with the PKCS#8 key, unencrypted,
//!   and the certificate chain).
//! - `SASL_SSL`: the same TLS, plus SASL/SCRAM-SHA-512. The user
//!   `banking-app` is created by the storage format tool before the broker
//!   starts; its password is [`SECRET`], the `-X sasl.password` every
//!   consumer run of the harness carries, so the check that no log or stats
//!   file shows it covers a real password.
//!
//! Refusals: a client without the CA, a plaintext client on the TLS port,
//! and a wrong password must fail clearly (the producer: one error line
//! naming the broker and the cause, within its `--timeout`; the consumers:
//! a warning saying why, while they keep waiting), and never show a
//! secret.
//!
//! Skipped, with a visible line, when Apache Kafka is not installed
//! (`scripts/setup.sh` installs it).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};
use testkit::ConsumerStats;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use testkit::bins::MODELS;
use testkit::procs::{SECRET, files_showing};
use testkit::{Bins, ConsumerCmd, Expected, Kafka, KafkaOptions, Proc, ProducerCmd, kafka, verify};

const EVENTS: u64 = 20_000;
const SEED: u64 = 42;
const ACCOUNTS: u64 = 2_000;
/// `--timeout` of the producer runs that must fail.
const FAIL_TIMEOUT_SECS: u64 = 5;
/// The SCRAM user.
const USER: &str = "banking-app";
/// A password that is not the user's; must not be shown either.
const WRONG: &str = "wrong-Secret-2b8e41";

/// The TLS and SASL broker of this process, and the CA its clients trust.
struct Secured {
    kafka: &'static Kafka,
    ca: PathBuf,
}

impl Secured {
    /// `-X` arguments of a TLS client that trusts the test CA.
    fn tls(&self) -> Vec<String> {
        x_args(&[
            "security.protocol=ssl".into(),
            format!("ssl.ca.location={}", self.ca.display()),
        ])
    }

    /// `-X` arguments of a SASL_SSL client logging in as [`USER`].
    fn sasl(&self, password: &str) -> Vec<String> {
        x_args(&[
            "security.protocol=sasl_ssl".into(),
            format!("ssl.ca.location={}", self.ca.display()),
            "sasl.mechanism=SCRAM-SHA-512".into(),
            format!("sasl.username={USER}"),
            format!("sasl.password={password}"),
        ])
    }
}

/// The broker, started on first use, or `None` (with `SKIPPED <test>`
/// printed) when Kafka cannot run here.
fn secured(test: &str) -> Option<&'static Secured> {
    static BROKER: OnceLock<Result<Secured, String>> = OnceLock::new();
    if let Err(why) = kafka::available() {
        testkit::skip(test, &format!("{why:#}"));
        return None;
    }
    let started = BROKER.get_or_init(|| start().map_err(|e| format!("{e:#}")));
    Some(started.as_ref().unwrap_or_else(|e| panic!("{e}")))
}

fn start() -> anyhow::Result<Secured> {
    let dir = tempfile::Builder::new()
        .prefix("kafka-certs-")
        .tempdir()?
        .keep();
    kafka::remove_at_exit(&dir);
    let (ca, keystore) = make_certs(&dir);
    let mut properties = Vec::new();
    for listener in ["ssl", "sasl_ssl"] {
        let prefix = format!("listener.name.{listener}");
        properties.push((format!("{prefix}.ssl.keystore.type"), "PEM".into()));
        properties.push((
            format!("{prefix}.ssl.keystore.location"),
            keystore.display().to_string(),
        ));
    }
    properties.push((
        "listener.name.sasl_ssl.sasl.enabled.mechanisms".into(),
        "SCRAM-SHA-512".into(),
    ));
    properties.push((
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config".into(),
        "org.apache.kafka.common.security.scram.ScramLoginModule required;".into(),
    ));
    let options = KafkaOptions {
        listeners: vec![
            ("SSL".into(), "SSL".into()),
            ("SASL_SSL".into(), "SASL_SSL".into()),
        ],
        properties,
        scram: vec![("SCRAM-SHA-512".into(), USER.into(), SECRET.into())],
        ..KafkaOptions::default()
    };
    let kafka = Kafka::start_for_process(options, None)?;
    Ok(Secured { kafka, ca })
}

/// A CA, and a server certificate it signed for 127.0.0.1 and `localhost`.
/// Returns the CA's PEM file and the keystore: one PEM file holding the
/// server's PKCS#8 key (unencrypted, owner-only) and its certificate chain.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "chaos test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");

    let server_key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");

    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write ca.pem");
    let keystore = dir.join("server-keystore.pem");
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&keystore)
        .and_then(|mut f| {
            f.write_all(server_key.serialize_pem().as_bytes())?;
            f.write_all(server.pem().as_bytes())?;
            f.write_all(ca.pem().as_bytes())
        })
        .expect("write the keystore");
    (ca_path, keystore)
}

/// `-X p` for every property `p`.
fn x_args(properties: &[String]) -> Vec<String> {
    properties
        .iter()
        .flat_map(|p| ["-X".to_string(), p.clone()])
        .collect()
}

/// A work directory, the address of `listener` and both consumers started
/// with `x` on a new topic there, running until stopped: a refusal's set-up.
fn refused_consumers(
    broker: &'static Secured,
    listener: &str,
    name: &str,
    x: &[String],
) -> (tempfile::TempDir, &'static str, Vec<Proc>) {
    let work = work_dir(name);
    let address = broker.kafka.listener(listener);
    let topic = kafka::unique(name);
    broker
        .kafka
        .create_topic(&topic, 1)
        .expect("create the topic");
    let bins = Bins::of_this_build();
    let spawn = |m| {
        let mut cmd = consumer(m, address, &topic, work.path(), x);
        cmd.idle_secs = None;
        cmd.spawn(&bins, 0, &[]).expect("spawn a consumer")
    };
    let consumers = MODELS.into_iter().map(spawn).collect();
    (work, address, consumers)
}

fn work_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("chaos-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// Consumer `model` on `address` with `client` arguments, its files in
/// `dir`, in a group of its own.
fn consumer(
    model: testkit::Model,
    address: &str,
    topic: &str,
    dir: &Path,
    client: &[String],
) -> ConsumerCmd {
    let group = kafka::unique(&format!("tls-{}", model.name()));
    let mut cmd = ConsumerCmd::new(model, address, topic, &group, dir);
    cmd.extra = client.to_vec();
    cmd
}

/// The producer, then both consumers at once, over `client` settings to
/// the listener at `address`: every event stored once, no secret shown.
fn end_to_end(address: &str, client: &[String]) {
    let work = work_dir("secured");
    let dir = work.path();
    let bins = Bins::of_this_build();
    let topic = kafka::unique("secured");
    // The producer creates the topic (admin client) and sends, all over
    // the secured listener.
    let mut produce = ProducerCmd::new(address, &topic, EVENTS, SEED, ACCOUNTS);
    produce.extra = ["--partitions", "3", "-X"]
        .map(String::from)
        .into_iter()
        .chain([format!("sasl.password={SECRET}")])
        .chain(client.iter().cloned())
        .collect();
    produce.timeout_secs = 60;
    let stats = produce
        .run(&bins, dir, "producer")
        .unwrap_or_else(|e| panic!("producer: {e:#}"));
    assert_eq!(stats.events_failed, 0, "{:?}", stats.errors);

    let expected = Expected::of(SEED, ACCOUNTS, EVENTS);
    let mut runs: Vec<(ConsumerCmd, Proc)> = MODELS
        .iter()
        .map(|&m| {
            let cmd = consumer(m, address, &topic, dir, client);
            let p = cmd.spawn(&bins, 0, &[]).expect("spawn a consumer");
            (cmd, p)
        })
        .collect();
    for (cmd, p) in &mut runs {
        p.wait_success::<ConsumerStats>()
            .unwrap_or_else(|e| panic!("{}: {e:#}", cmd.model.binary()));
        let f = verify(&cmd.db, &expected, 0).expect("verify");
        assert!(
            f.exact() && f.events == EVENTS,
            "{}: {} events of {EVENTS}, {}",
            cmd.model.binary(),
            f.events,
            f.brief()
        );
    }
    let leaks = files_showing(dir, SECRET);
    assert!(leaks.is_empty(), "the secret is shown in {leaks:?}");
}

/// The error lines of `text`: logged at level ERROR, or the binary's final
/// `name: error: ...` line. (librdkafka's own words, logged as warnings
/// while it retries, may say "error" too: "SSL routines ... error:0A...".)
fn error_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            l.contains(" ERROR ")
                || l.split_once(": error")
                    .is_some_and(|(head, _)| !head.contains(' '))
        })
        .collect()
}

/// A producer run that must fail: non-zero exit within its `--timeout`
/// plus a margin, no panic, exactly one error line, naming the broker and
/// saying why (`cause`, e.g. librdkafka's "certificate verify failed").
fn assert_producer_fails_clearly(
    dir: &Path,
    name: &str,
    address: &str,
    client: &[String],
    cause: &str,
) {
    let bins = Bins::of_this_build();
    let mut produce = ProducerCmd::new(address, &kafka::unique("refused"), 100, SEED, ACCOUNTS);
    produce.timeout_secs = FAIL_TIMEOUT_SECS;
    produce.extra = ["-X".to_string(), format!("sasl.password={SECRET}")]
        .into_iter()
        .chain(client.iter().cloned())
        .collect();
    let started = Instant::now();
    let mut p = produce.spawn(&bins, dir, name).expect("spawn the producer");
    let status = p
        .wait(Duration::from_secs(120))
        .expect("the producer exits");
    let took = started.elapsed();
    let text = p.log_text();
    assert!(
        !status.success() && status.code().is_some(),
        "{name}: expected a non-zero exit code, got {status}:\n{text}"
    );
    assert!(
        took < Duration::from_secs(FAIL_TIMEOUT_SECS + 10),
        "{name}: gave up after {took:?} with --timeout {FAIL_TIMEOUT_SECS}"
    );
    assert!(!text.contains("panicked"), "{name} panicked:\n{text}");
    let errors = error_lines(&text);
    assert_eq!(errors.len(), 1, "{name}: expected one error line:\n{text}");
    assert!(
        errors[0].contains(address),
        "{name}: the error line does not name the broker: {}",
        errors[0]
    );
    assert!(
        errors[0].contains(cause),
        "{name}: the error line does not say why ({cause:?}): {}",
        errors[0]
    );
}

/// Waits until consumer `p`'s log has a warning or error line containing
/// every one of `needles` (it keeps retrying: it must stay up and say why
/// it gets nothing), then stops it with SIGTERM; it must write its stats
/// file on the way out.
fn assert_consumer_logs_and_waits(p: &mut Proc, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let text = p.log_text();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            break line.to_string();
        }
        if let Some(status) = p.try_status() {
            panic!(
                "{} exited ({status}) instead of waiting:\n{}",
                p.name,
                p.log_tail(20)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} logged no line with {needles:?} in 60 s:\n{}",
            p.name,
            p.log_tail(20)
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert!(
        found.contains("ERROR") || found.contains("WARN"),
        "{}: the line is not a warning or an error: {found}",
        p.name
    );
    p.sigterm();
    p.wait(Duration::from_secs(60))
        .expect("consumer stops on SIGTERM");
    p.read_stats::<ConsumerStats>()
        .unwrap_or_else(|e| panic!("{} wrote no stats file on SIGTERM: {e:#}", p.name));
}

#[test]
fn tls_producer_then_both_consumers_store_every_event_once() {
    let Some(broker) = secured("tls_producer_then_both_consumers_store_every_event_once") else {
        return;
    };
    end_to_end(broker.kafka.listener("SSL"), &broker.tls());
}

#[test]
fn sasl_scram_over_tls_producer_then_both_consumers_store_every_event_once() {
    let test = "sasl_scram_over_tls_producer_then_both_consumers_store_every_event_once";
    let Some(broker) = secured(test) else {
        return;
    };
    end_to_end(broker.kafka.listener("SASL_SSL"), &broker.sasl(SECRET));
}

#[test]
fn tls_without_the_ca_or_in_plaintext_fails_clearly() {
    let Some(broker) = secured("tls_without_the_ca_or_in_plaintext_fails_clearly") else {
        return;
    };
    let no_ca = x_args(&["security.protocol=ssl".into()]);
    // The consumers start first: they keep retrying while the producers
    // run their course.
    let (work, address, mut consumers) = refused_consumers(broker, "SSL", "tls-refused", &no_ca);
    let dir = work.path();
    thread::scope(|s| {
        s.spawn(|| {
            assert_producer_fails_clearly(
                dir,
                "producer-no-ca",
                address,
                &no_ca,
                "certificate verify failed",
            )
        });
        s.spawn(|| assert_producer_fails_clearly(dir, "producer-plaintext", address, &[], ""));
    });
    for p in &mut consumers {
        assert_consumer_logs_and_waits(p, &["SSL handshake failed", "certificate verify failed"]);
    }
    let leaks = files_showing(dir, SECRET);
    assert!(leaks.is_empty(), "the -X secret is shown in {leaks:?}");
}

#[test]
fn sasl_with_a_wrong_password_fails_clearly_and_never_shows_it() {
    let test = "sasl_with_a_wrong_password_fails_clearly_and_never_shows_it";
    let Some(broker) = secured(test) else {
        return;
    };
    let wrong = broker.sasl(WRONG);
    let (work, address, mut consumers) =
        refused_consumers(broker, "SASL_SSL", "sasl-refused", &wrong);
    let dir = work.path();
    assert_producer_fails_clearly(
        dir,
        "producer-sasl",
        address,
        &wrong,
        "Authentication failed",
    );
    for p in &mut consumers {
        // The SCRAM exchange ran over TLS and the broker refused it.
        assert_consumer_logs_and_waits(p, &["Authentication failed"]);
    }
    for secret in [SECRET, WRONG] {
        let leaks = files_showing(dir, secret);
        assert!(leaks.is_empty(), "a password is shown in {leaks:?}");
    }
}
