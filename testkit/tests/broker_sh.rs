//! `scripts/broker.sh` on a machine whose Docker engine answers but cannot
//! pull the Kafka image (a fake `docker` on PATH): in auto mode it says why
//! in one line and starts the local Apache Kafka instead, with the output
//! contract intact (last stdout line = the address; kind, version, address
//! and pid files); `BROKER_KIND=docker` fails on it. Skipped, visibly,
//! without Java or Kafka's jars (scripts/setup.sh installs them).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use testkit::free_port;

const PULL_ERROR: &str = "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": \
                          dial tcp: lookup registry-1.docker.io: no such host";

/// A `docker` whose `info` and `compose version` answer and whose
/// `compose up` fails as an offline pull does.
fn fake_docker(dir: &Path) {
    let script = format!(
        "#!/bin/sh\n\
         case \"$1\" in\n\
           info) exit 0 ;;\n\
           compose) shift\n\
             [ \"$1\" = version ] && {{ echo 'Docker Compose version v2.0.0'; exit 0; }}\n\
             shift 2\n\
             case \"$1\" in\n\
               ps) exit 0 ;;\n\
               up) echo ' kafka Pulling ' >&2; echo '{PULL_ERROR}' >&2; exit 1 ;;\n\
             esac ;;\n\
         esac\n\
         exit 1\n"
    );
    let path = dir.join("docker");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn broker_sh(bin: &Path, run_dir: &Path, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(testkit::repo_root().join("scripts/broker.sh"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.args(args)
        .env("PATH", path)
        .env("BROKER_BIN", env!("CARGO_BIN_EXE_broker"))
        .env("BROKER_PORT", port.to_string())
        .env("DOCKER_PORT", port.to_string())
        .env("KAFKA_CONTROLLER_PORT", free_port().to_string())
        .env("KAFKA_HEAP", "-Xmx512m")
        .env("RUN_DIR", run_dir)
        .env_remove("BROKER_KIND")
        .env_remove("KAFKA_BROKERS");
    c
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_docker_that_cannot_pull_falls_back_to_the_local_kafka() {
    if let Err(why) = testkit::kafka::available() {
        testkit::skip(
            "a_docker_that_cannot_pull_falls_back_to_the_local_kafka",
            &format!("{why:#}"),
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    fake_docker(&bin);
    let run_dir = tmp.path().join("run");
    let port = free_port();

    let o = broker_sh(&bin, &run_dir, port, &["start"])
        .env("BROKER_KIND", "docker")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(PULL_ERROR),
        "{}",
        show(&o)
    );

    // Stops the broker however the test ends.
    struct Stop<'a>(&'a Path, &'a Path, u16);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = broker_sh(self.0, self.1, self.2, &["stop"]).output();
        }
    }
    let _stop = Stop(&bin, &run_dir, port);
    let o = broker_sh(&bin, &run_dir, port, &["start", "--partitions", "2"])
        .output()
        .unwrap();
    let log = show(&o);
    assert!(o.status.success(), "{log}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let why: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Docker could not start Kafka"))
        .collect();
    assert_eq!(
        why,
        [format!(
            "broker.sh: Docker could not start Kafka: {PULL_ERROR}"
        )],
        "{log}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some(format!("127.0.0.1:{port}").as_str()),
        "{log}"
    );
    let read = |f: &str| std::fs::read_to_string(run_dir.join(f)).unwrap_or_default();
    assert_eq!(read("kind").trim(), "kafka", "{log}");
    assert!(read("version").starts_with("Apache Kafka "), "{log}");
    assert!(read("pid").trim().parse::<u32>().is_ok(), "{log}");
    assert!(stderr.contains("topic banking.events ready"), "{log}");

    let status = broker_sh(&bin, &run_dir, port, &["status"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", show(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("answers:  yes"));

    let o = broker_sh(&bin, &run_dir, port, &["stop"]).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert!(!run_dir.join("pid").exists(), "{}", show(&o));
    let status = broker_sh(&bin, &run_dir, port, &["status"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
}
