//! Apache Kafka for tests: a local JVM in KRaft combined mode, from the
//! jars in [`home`], on free loopback ports, with the compose file's
//! settings. [`Kafka::shared`] is one per process (tests keep apart with
//! [`unique`] names). A broker dies with the thread that started it
//! (`PR_SET_PDEATHSIG`): the process-wide ones run in a thread that never
//! ends, and are killed at exit.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::brokerproc::{BrokerProc, Lifetime, broker_guard, created};
use crate::settings::CLUSTER_ID;
use crate::{free_port, repo_root};

/// Tests hold little data, and several brokers may run at once.
const TEST_HEAP: &str = "-Xmx512m";
/// Kafka's own start script's JVM options (`bin/kafka-run-class.sh`).
const JVM_OPTS: &[&str] = &[
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
];

pub use crate::settings::version;

/// A name no other test of this process uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// What a private broker needs beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct KafkaOptions {
    /// The PLAINTEXT listener's port (default: a free one).
    pub port: Option<u16>,
    /// Extra listeners, `(name, security protocol)`, each on a free port
    /// ([`Kafka::listener`]), their settings in `properties`.
    pub listeners: Vec<(String, String)>,
    /// Extra `server.properties` lines.
    pub properties: Vec<(String, String)>,
    /// `(mechanism, user, password)` written by the storage format tool.
    pub scram: Vec<(String, String, String)>,
    /// Default `127.0.0.1`.
    pub host: Option<String>,
    /// Default `-Xmx512m`.
    pub heap: Option<String>,
}

/// A local Apache Kafka broker; killed on drop.
pub struct Kafka {
    proc: BrokerProc,
    listeners: Vec<(String, String)>,
    libs: PathBuf,
    heap: String,
}

broker_guard!(Kafka);

impl Kafka {
    pub fn shared() -> Result<&'static Kafka> {
        static SHARED: OnceLock<Result<&'static Kafka, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let dir = SHARED_DIR.get().map(PathBuf::as_path);
                Kafka::start_for_process(KafkaOptions::default(), dir).map_err(|e| format!("{e:#}"))
            })
            .clone()
            .map_err(|e| anyhow!("the shared Apache Kafka did not start: {e}"))
    }

    /// [`Kafka::shared`], or `None` ([`crate::skip`]) where it cannot run.
    pub fn shared_or_skip(test: &str) -> Option<&'static Kafka> {
        if let Err(why) = available() {
            crate::skip(test, &format!("{why:#}"));
            return None;
        }
        Some(Kafka::shared().unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// A broker that lives as long as the process, in `dir` (kept) or a
    /// temporary directory (removed at exit).
    pub fn start_for_process(options: KafkaOptions, dir: Option<&Path>) -> Result<&'static Kafka> {
        let dir = dir.map(Path::to_path_buf);
        let (tx, rx) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name("kafka-for-process".into())
            .spawn(move || {
                let started = match dir {
                    Some(dir) => Kafka::start_in_dir(&dir, options),
                    None => Kafka::start(options),
                };
                let started = started.map(|k| -> &'static Kafka { Box::leak(Box::new(k)) });
                let serving = started.as_ref().map(|kafka| stop_at_exit(kafka)).is_ok();
                let _ = tx.send(started);
                // A process-wide broker lives as long as this thread.
                if serving {
                    loop {
                        thread::park();
                    }
                }
            })
            .context("spawn a thread for Apache Kafka")?;
        rx.recv().context("the Kafka thread answers")?
    }

    pub fn start(options: KafkaOptions) -> Result<Kafka> {
        let temp = tempfile::Builder::new().prefix("kafka-").tempdir()?;
        let mut kafka = Kafka::start_in_dir(temp.path(), options)?;
        kafka.proc.temp = Some(temp);
        Ok(kafka)
    }

    pub fn start_in_dir(dir: &Path, options: KafkaOptions) -> Result<Kafka> {
        let (dir, controller) = (created(dir)?, free_port());
        let place = |_: u32| (dir.clone(), options.clone(), controller);
        let mut started = start_nodes(1, &[1], "127.0.0.1", Lifetime::Thread, place)?;
        Ok(started.remove(0))
    }

    /// Writes the configuration of node `id` of the quorum of `voters`
    /// (`id@host:port`) in `dir` and formats its log directory.
    fn prepare(
        dir: &Path,
        options: KafkaOptions,
        id: u32,
        controller: u16,
        voters: &[String],
    ) -> Result<Kafka> {
        let libs = available()?;
        let host = options.host.as_deref().unwrap_or("127.0.0.1");
        let port = options.port.unwrap_or_else(free_port);
        let mut listeners = vec![("PLAINTEXT".to_string(), format!("{host}:{port}"))];
        let mut protocols = vec![
            "CONTROLLER:PLAINTEXT".to_string(),
            "PLAINTEXT:PLAINTEXT".into(),
        ];
        for (name, protocol) in &options.listeners {
            listeners.push((name.clone(), format!("{host}:{}", free_port())));
            protocols.push(format!("{name}:{protocol}"));
        }
        let advertised: Vec<String> = listeners
            .iter()
            .map(|(n, a)| format!("{n}://{a}"))
            .collect();
        let advertised = advertised.join(",");
        let mut props = vec![
            ("node.id".to_string(), id.to_string()),
            ("controller.quorum.voters".into(), voters.join(",")),
            (
                "listeners".into(),
                format!("{advertised},CONTROLLER://{host}:{controller}"),
            ),
            ("advertised.listeners".into(), advertised),
            ("listener.security.protocol.map".into(), protocols.join(",")),
            ("log.dirs".into(), dir.join("data").display().to_string()),
        ];
        props.extend(crate::settings::settings(voters.len()));
        props.extend(options.properties.iter().cloned());
        let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        fs::create_dir_all(dir.join("logs"))?;
        fs::write(dir.join("server.properties"), text)?;

        // Formatted once: a node started again keeps its log.
        if !dir.join("data/meta.properties").is_file() {
            let mut format = java(&libs, dir, "-Xmx256m");
            format.args(["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c"]);
            format.arg(dir.join("server.properties"));
            for (mechanism, user, password) in &options.scram {
                format
                    .arg("--add-scram")
                    .arg(format!("{mechanism}=[name={user},password={password}]"));
            }
            let out = format.output().context("run Kafka's storage format tool")?;
            if !out.status.success() {
                bail!(
                    "kafka-storage format failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }

        let times = (Duration::from_secs(60), Duration::from_secs(120));
        Ok(Kafka {
            proc: BrokerProc::new("Apache Kafka", format!("{host}:{port}"), dir, times),
            listeners,
            libs,
            heap: options.heap.unwrap_or_else(|| TEST_HEAP.to_string()),
        })
    }

    /// Starts the JVM without waiting: none serves before a quorum runs.
    pub(crate) fn launch_as(&mut self, lifetime: Lifetime) -> Result<()> {
        let (dir, libs, heap) = (self.proc.dir.clone(), &self.libs, &self.heap);
        self.proc.launch(lifetime, || {
            let _ = fs::remove_file(dir.join("logs/server.log"));
            let stdout = File::create(dir.join("logs/stdout.log"))?;
            let mut cmd = java(libs, &dir, heap);
            cmd.args(JVM_OPTS)
                .arg("kafka.Kafka")
                .arg(dir.join("server.properties"))
                .stdin(Stdio::null())
                .stdout(stdout.try_clone()?)
                .stderr(stdout);
            Ok(cmd)
        })
    }

    pub(crate) fn wait_serving(&mut self) -> Result<()> {
        let logs = ["logs/server.log", "logs/stdout.log"].map(|f| self.dir.join(f));
        self.proc.wait_serving(
            || fs::read_to_string(&logs[0]).is_ok_and(|t| t.contains("Kafka Server started")),
            &logs,
        )
    }

    /// The address of a listener given in [`KafkaOptions::listeners`].
    pub fn listener(&self, name: &str) -> &str {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("no listener {name}"))
    }

    /// Same ports and data.
    pub fn restart(&mut self) -> Result<()> {
        self.launch_as(Lifetime::Thread)?;
        self.wait_serving()
    }
}

/// Starts nodes `ids` of a quorum of `count` on `host` together and waits
/// for each; `place(i)` is node `i`'s directory, options, controller port.
pub(crate) fn start_nodes(
    count: u32,
    ids: &[u32],
    host: &str,
    lifetime: Lifetime,
    place: impl Fn(u32) -> (PathBuf, KafkaOptions, u16),
) -> Result<Vec<Kafka>> {
    let voters: Vec<String> = (1..=count)
        .map(|i| format!("{i}@{host}:{}", place(i).2))
        .collect();
    let mut started = Vec::new();
    for &id in ids {
        let (dir, options, controller) = place(id);
        fs::create_dir_all(&dir)?;
        let mut kafka = Kafka::prepare(&dir, options, id, controller, &voters)?;
        kafka.launch_as(lifetime)?;
        started.push(kafka);
    }
    for (kafka, id) in started.iter_mut().zip(ids) {
        kafka
            .wait_serving()
            .with_context(|| format!("Apache Kafka node {id}"))?;
    }
    Ok(started)
}

pub use crate::clients::{Existing, create_new_topic, create_topic};

static SHARED_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Makes [`Kafka::shared`] keep its files in `dir`; before its first use.
pub fn set_shared_dir(dir: &Path) {
    let _ = SHARED_DIR.set(dir.to_path_buf());
}

static HOME: OnceLock<PathBuf> = OnceLock::new();

/// Makes `dir` the installation (`chaos --kafka-home`); before any start.
pub fn set_home(dir: &Path) {
    let _ = HOME.set(dir.to_path_buf());
}

/// Where `broker install` puts the jars: [`set_home`]'s directory,
/// `$KAFKA_HOME_DIR`, or `~/.cache/banking-pipeline/kafka-<version>`.
pub fn home() -> Result<PathBuf> {
    if let Some(dir) = HOME.get() {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("KAFKA_HOME_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(cache
        .join("banking-pipeline")
        .join(format!("kafka-{}", version()?)))
}

/// `Ok` when a broker can be started here, else why not.
pub fn available() -> Result<PathBuf> {
    let home = home()?;
    if !home.join(".complete").is_file() {
        bail!(
            "Apache Kafka is not installed in {} (scripts/setup.sh installs it; CI runs it)",
            home.display()
        );
    }
    let java = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !java.is_ok_and(|s| s.success()) {
        bail!("java is not on PATH (scripts/setup.sh installs OpenJDK 17)");
    }
    Ok(home.join("libs"))
}

fn java(libs: &Path, dir: &Path, heap: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(heap.split_whitespace())
        .arg(format!("-Dkafka.logs.dir={}", dir.join("logs").display()))
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            repo_root()
                .join("scripts/kafka/log4j2.properties")
                .display()
        ))
        .arg("-Djava.awt.headless=true")
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .current_dir(dir);
    cmd
}

/// At exit: the process-wide brokers' pids killed, then directories removed.
static AT_EXIT: Mutex<(Vec<u32>, Vec<PathBuf>)> = Mutex::new((Vec::new(), Vec::new()));

fn at_exit(add: impl FnOnce(&mut (Vec<u32>, Vec<PathBuf>))) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers a plain function with the C runtime.
    REGISTER.call_once(|| unsafe {
        libc::atexit(run);
    });
    add(&mut AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
}

fn stop_at_exit(kafka: &Kafka) {
    at_exit(|(pids, dirs)| {
        pids.extend(kafka.pid());
        dirs.extend(kafka.temp.is_some().then(|| kafka.dir.clone()));
    });
}

pub fn remove_at_exit(dir: &Path) {
    at_exit(|(_, dirs)| dirs.push(dir.to_path_buf()));
}

extern "C" fn run() {
    let (pids, dirs) = std::mem::take(&mut *AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
    for pid in pids {
        // SAFETY: kill(2) and waitpid(2) on a broker this process started
        // and has not reaped.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
    }
    for dir in dirs {
        let _ = fs::remove_dir_all(dir);
    }
}
