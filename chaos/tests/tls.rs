//! TLS and SASL end to end (issue #6): the real `producer`,
//! `consumer-pull` and `consumer-push`, configured for TLS and SASL with
//! `-X` only, against a private Tansu.
//!
//! Tansu 0.6.0 cannot serve TLS itself (`--cert` and `--key` are in one
//! clap group, so they cannot be given together, and the broker builds a
//! TLS acceptor it never uses), so stunnel terminates TLS in front of a
//! plaintext Tansu on loopback, and Tansu advertises stunnel's address:
//! every connection a client makes, bootstrap and group coordinator alike,
//! is TLS, verified against a CA made for the test with rcgen.
//!
//! SASL: Tansu 0.6.0 speaks SCRAM-SHA-256/512 with librdkafka (PLAIN is
//! not built in), but its in-memory engine keeps no SCRAM credentials, so
//! it refuses every login as `unknown-user`. That makes a successful SASL
//! login impossible to test here; the refusal is tested: it must fail
//! clearly, and the password must never be shown.
//!
//! Skipped, with a visible line, when tansu or stunnel is not installed
//! (`scripts/setup.sh` installs both).

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use banking_chaos::procs::{ConsumerArgs, Proc, SECRET};
use banking_chaos::verify::verify;
use banking_chaos::{Consumer, TOPIC, free_port};
use banking_testkit::Expected;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

const EVENTS: u64 = 20_000;
const SEED: u64 = 42;
const ACCOUNTS: u64 = 2_000;
/// `--timeout` of the producer runs that must fail.
const FAIL_TIMEOUT_SECS: u64 = 5;

/// The first of `candidates` that runs with `arg` and exits 0.
fn runnable(candidates: Vec<PathBuf>, arg: &str) -> Option<PathBuf> {
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Tansu: `$TANSU`, PATH, then cargo's bin directory (as scripts/broker.sh).
fn tansu_binary() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("TANSU")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push("tansu".into());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    candidates.extend(cargo_home.map(|h| h.join("bin/tansu")));
    runnable(candidates, "--version")
}

/// stunnel (Debian package stunnel4, which installs both names).
fn stunnel_binary() -> Option<PathBuf> {
    runnable(vec!["stunnel".into(), "stunnel4".into()], "-version")
}

/// PEM files: a CA, and a server certificate it signed for `localhost` and
/// 127.0.0.1 with its key.
struct Certs {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn make_certs(dir: &Path) -> Certs {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "banking-chaos test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");

    let server_key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");

    let certs = Certs {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    std::fs::write(&certs.ca, ca.pem()).expect("write ca.pem");
    std::fs::write(&certs.server_cert, server.pem()).expect("write server.pem");
    // Owner-only, or stunnel warns about it.
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&certs.server_key)
        .and_then(|mut f| f.write_all(server_key.serialize_pem().as_bytes()))
        .expect("write server.key");
    certs
}

/// A private Tansu (in-memory, plaintext, on a loopback port) behind stunnel,
/// which terminates TLS on another port. Tansu advertises stunnel's
/// `localhost:port`, so clients only ever talk TLS. Both are killed on drop.
struct TlsBroker {
    /// `localhost:<TLS port>`.
    bootstrap: String,
    /// The CA that signed the server certificate.
    ca: PathBuf,
    tansu: Child,
    stunnel: Child,
    tansu_log: PathBuf,
}

impl TlsBroker {
    /// Starts both, or prints why `test` is skipped and returns `None` when
    /// tansu or stunnel is not installed. `authentication`: Tansu requires
    /// SASL (`--authentication`).
    fn start_or_skip(test: &str, dir: &Path, authentication: bool) -> Option<TlsBroker> {
        let Some(tansu) = tansu_binary() else {
            eprintln!(
                "SKIPPED {test}: tansu is not installed \
                 (scripts/setup.sh installs it: cargo install tansu --locked --features dynostore)"
            );
            return None;
        };
        let Some(stunnel) = stunnel_binary() else {
            eprintln!(
                "SKIPPED {test}: stunnel is not installed \
                 (scripts/setup.sh installs it: apt-get install stunnel4)"
            );
            return None;
        };
        let certs = make_certs(dir);
        let plain = free_port();
        let tls = loop {
            let p = free_port();
            if p != plain {
                break p;
            }
        };
        let bootstrap = format!("localhost:{tls}");

        let tansu_log = dir.join("tansu.log");
        let mut cmd = Command::new(&tansu);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{plain}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{bootstrap}"))
            .args(["--storage-engine", "memory://tansu/"]);
        if authentication {
            cmd.arg("--authentication");
        }
        // In `dir`: Tansu reads a .env from its working directory.
        let mut tansu = spawn_logged(cmd.current_dir(dir), &tansu_log)
            .unwrap_or_else(|e| panic!("spawn {}: {e}", tansu.display()));

        let conf = dir.join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\nsyslog = no\ndebug = notice\n\
                 [kafka]\naccept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\n\
                 cert = {}\nkey = {}\n",
                certs.server_cert.display(),
                certs.server_key.display()
            ),
        )
        .expect("write stunnel.conf");
        let stunnel = match spawn_logged(
            Command::new(&stunnel).arg(&conf).current_dir(dir),
            &dir.join("stunnel.log"),
        ) {
            Ok(child) => child,
            Err(e) => {
                let _ = tansu.kill();
                let _ = tansu.wait();
                panic!("spawn {}: {e}", stunnel.display());
            }
        };
        let mut broker = TlsBroker {
            bootstrap,
            ca: certs.ca,
            tansu,
            stunnel,
            tansu_log,
        };
        wait_listening(&mut broker.tansu, plain, "tansu", &dir.join("tansu.log"));
        wait_listening(
            &mut broker.stunnel,
            tls,
            "stunnel",
            &dir.join("stunnel.log"),
        );
        Some(broker)
    }

    /// `-X` arguments of a TLS client that trusts the test CA.
    fn tls_args(&self) -> Vec<String> {
        x_args([
            "security.protocol=ssl".into(),
            format!("ssl.ca.location={}", self.ca.display()),
        ])
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        for child in [&mut self.stunnel, &mut self.tansu] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `port` on 127.0.0.1 accepts connections; panics with the
/// end of `log` when `child` exits first or after 30 s.
fn wait_listening(child: &mut Child, port: u16, what: &str, log: &Path) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status}:\n{}", tail(log, 20));
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {addr} after 30 s:\n{}",
            tail(log, 20)
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Spawns `cmd` with stdout and stderr in `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> std::io::Result<Child> {
    let out = File::create(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn work_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("chaos-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// `-X p` for every property `p`.
fn x_args<const N: usize>(properties: [String; N]) -> Vec<String> {
    properties
        .into_iter()
        .flat_map(|p| ["-X".to_string(), p])
        .collect()
}

fn os_args(args: &[String]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Runs the producer binary with `args` (plus `--stats-json <name>.json`),
/// output in `<name>.log`; waits at most `limit`.
fn run_producer(dir: &Path, name: &str, args: &[String], limit: Duration) -> (ExitStatus, Proc) {
    let mut all = os_args(args);
    all.extend([
        "--stats-json".into(),
        dir.join(format!("{name}.json")).into(),
    ]);
    let mut p = Proc::spawn(
        &banking_chaos::test_bin_dir().join("producer"),
        &all,
        &dir.join(format!("{name}.log")),
        None,
        name,
    )
    .expect("spawn producer");
    let status = p.wait(limit).expect("producer exits");
    (status, p)
}

/// Spawns consumer `c` on `bootstrap` with its database, stats and log in
/// `dir`, `-X sasl.password=SECRET` (ConsumerArgs adds it) and `extra`.
fn spawn_consumer(
    c: Consumer,
    dir: &Path,
    bootstrap: &str,
    idle_secs: u64,
    extra: &[String],
) -> Proc {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let db = dir.join(format!("{}.db", c.name()));
    let stats = dir.join(format!("{}.json", c.name()));
    let group = format!("tls-{}", c.name());
    let args = ConsumerArgs {
        brokers: bootstrap,
        topic: TOPIC,
        group: &group,
        db: &db,
        stats: &stats,
        idle_secs,
        extra: &extra,
    };
    Proc::spawn(
        &banking_chaos::test_bin_dir().join(c.binary()),
        &args.to_vec(),
        &dir.join(format!("{}.log", c.name())),
        None,
        c.name(),
    )
    .expect("spawn consumer")
}

/// The `.log` and `.json` files of `dir` that contain the secret.
fn files_showing_secret(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        let text_file = matches!(p.extension().and_then(|x| x.to_str()), Some("log" | "json"));
        if text_file
            && String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).contains(SECRET)
        {
            out.push(p);
        }
    }
    out
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
    bootstrap: &str,
    extra: &[String],
    cause: &str,
) {
    let mut args: Vec<String> = [
        "--brokers",
        bootstrap,
        "--topic",
        TOPIC,
        "--count",
        "100",
        "--timeout",
        &FAIL_TIMEOUT_SECS.to_string(),
        "-X",
        &format!("sasl.password={SECRET}"),
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(extra);
    let started = Instant::now();
    let (status, p) = run_producer(dir, name, &args, Duration::from_secs(120));
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
        errors[0].contains(bootstrap),
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
/// file (`dir/<name>.json`) on the way out.
fn assert_consumer_logs_and_waits(p: &mut Proc, dir: &Path, needles: &[&str]) {
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
    p.signal(libc::SIGTERM);
    p.wait(Duration::from_secs(60))
        .expect("consumer stops on SIGTERM");
    assert!(
        dir.join(format!("{}.json", p.name)).is_file(),
        "{} wrote no stats file on SIGTERM",
        p.name
    );
}

#[test]
fn tls_producer_then_both_consumers_store_every_event_once() {
    let test = "tls_producer_then_both_consumers_store_every_event_once";
    let work = work_dir("tls");
    let dir = work.path();
    let Some(broker) = TlsBroker::start_or_skip(test, dir, false) else {
        return;
    };
    let tls = broker.tls_args();

    // The producer creates the topic (admin client) and sends over TLS.
    let mut args: Vec<String> = [
        "--brokers",
        &broker.bootstrap,
        "--topic",
        TOPIC,
        "--partitions",
        "3",
        "--count",
        &EVENTS.to_string(),
        "--seed",
        &SEED.to_string(),
        "--accounts",
        &ACCOUNTS.to_string(),
        "--timeout",
        "60",
        "-X",
        &format!("sasl.password={SECRET}"),
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(&tls);
    let (status, p) = run_producer(dir, "producer", &args, Duration::from_secs(300));
    assert!(
        status.success(),
        "producer over TLS exited with {status}:\n{}\ntansu:\n{}",
        p.log_tail(20),
        tail(&broker.tansu_log, 20)
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("producer.json")).expect("stats"))
            .expect("stats JSON");
    assert_eq!(
        stats["events_acknowledged"].as_u64(),
        Some(EVENTS),
        "{stats}"
    );
    assert_eq!(stats["events_failed"].as_u64(), Some(0), "{stats}");

    // Both consumers at once, each in its own group, over TLS.
    let mut runs: Vec<(Consumer, Proc)> = [Consumer::Pull, Consumer::Push]
        .into_iter()
        .map(|c| (c, spawn_consumer(c, dir, &broker.bootstrap, 5, &tls)))
        .collect();
    let expected = Expected::of(SEED, ACCOUNTS, EVENTS);
    for (c, p) in &mut runs {
        let status = p.wait(Duration::from_secs(300)).expect("consumer exits");
        assert!(
            status.success(),
            "{} over TLS exited with {status}:\n{}",
            c.name(),
            p.log_tail(20)
        );
        let f = verify(&dir.join(format!("{}.db", c.name())), &expected, 0).expect("verify");
        assert!(
            f.exact() && f.events == EVENTS && f.duplicated == 0,
            "{} over TLS: {} events of {EVENTS}, {}",
            c.name(),
            f.events,
            f.brief()
        );
    }
    let leaks = files_showing_secret(dir);
    assert!(leaks.is_empty(), "the -X secret is shown in {leaks:?}");
}

#[test]
fn tls_without_the_ca_or_in_plaintext_fails_clearly() {
    let test = "tls_without_the_ca_or_in_plaintext_fails_clearly";
    let work = work_dir("tls-refused");
    let dir = work.path();
    let Some(broker) = TlsBroker::start_or_skip(test, dir, false) else {
        return;
    };
    // Control: a client that trusts the CA gets its events in (and creates
    // the topic), so the failures below come from the clients' settings.
    let mut args: Vec<String> = [
        "--brokers",
        &broker.bootstrap,
        "--topic",
        TOPIC,
        "--partitions",
        "1",
        "--count",
        "100",
        "--timeout",
        "60",
    ]
    .map(String::from)
    .to_vec();
    args.extend(broker.tls_args());
    let (status, p) = run_producer(dir, "producer-control", &args, Duration::from_secs(300));
    assert!(
        status.success(),
        "control run exited with {status}:\n{}",
        p.log_tail(20)
    );

    let no_ca = x_args(["security.protocol=ssl".into()]);
    // The consumers start first: they keep retrying while the producers
    // run their course.
    let mut consumers: Vec<Proc> = [Consumer::Pull, Consumer::Push]
        .into_iter()
        .map(|c| spawn_consumer(c, dir, &broker.bootstrap, 5, &no_ca))
        .collect();
    thread::scope(|s| {
        s.spawn(|| {
            assert_producer_fails_clearly(
                dir,
                "producer-no-ca",
                &broker.bootstrap,
                &no_ca,
                "certificate verify failed",
            )
        });
        s.spawn(|| {
            assert_producer_fails_clearly(dir, "producer-plaintext", &broker.bootstrap, &[], "")
        });
    });
    for p in &mut consumers {
        assert_consumer_logs_and_waits(
            p,
            dir,
            &["SSL handshake failed", "certificate verify failed"],
        );
    }
    let leaks = files_showing_secret(dir);
    assert!(leaks.is_empty(), "the -X secret is shown in {leaks:?}");
}

#[test]
fn sasl_scram_over_tls_refused_fails_clearly_and_never_shows_the_password() {
    let test = "sasl_scram_over_tls_refused_fails_clearly_and_never_shows_the_password";
    let work = work_dir("sasl");
    let dir = work.path();
    let Some(broker) = TlsBroker::start_or_skip(test, dir, true) else {
        return;
    };
    let sasl = x_args([
        "security.protocol=sasl_ssl".into(),
        format!("ssl.ca.location={}", broker.ca.display()),
        "sasl.mechanism=SCRAM-SHA-512".into(),
        "sasl.username=banking-app".into(),
        format!("sasl.password={SECRET}"),
    ]);
    let mut consumers: Vec<Proc> = [Consumer::Pull, Consumer::Push]
        .into_iter()
        .map(|c| spawn_consumer(c, dir, &broker.bootstrap, 5, &sasl))
        .collect();
    assert_producer_fails_clearly(
        dir,
        "producer-sasl",
        &broker.bootstrap,
        &sasl,
        "SASL SCRAM authentication failed",
    );
    for p in &mut consumers {
        // librdkafka: "SASL authentication error: SASL SCRAM authentication
        // failed: broker responded with unknown-user": the SCRAM exchange
        // ran over TLS and the broker refused it.
        assert_consumer_logs_and_waits(p, dir, &["SASL SCRAM authentication failed"]);
    }
    let leaks = files_showing_secret(dir);
    assert!(leaks.is_empty(), "the SASL password is shown in {leaks:?}");
}
