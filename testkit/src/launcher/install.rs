//! `broker install` (and every `start`), each step skipped when done:
//! Apache Kafka's jars from Maven Central (`scripts/kafka/pom.xml`) on
//! OpenJDK 17, installed with Debian's packages when missing; where that
//! cannot be done, Nisshi, built with `cargo install`.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Kind;
use crate::{kafka, nisshi, on_path, repo_root};

/// Installs `kind` when missing; returns the kind installed and its jars'
/// directory or binary.
pub fn install(kind: Kind) -> Result<(Kind, PathBuf)> {
    match kind {
        Kind::Kafka => Ok((Kind::Kafka, install_kafka()?)),
        Kind::Nisshi => Ok((Kind::Nisshi, install_nisshi()?)),
        Kind::Auto => install_kafka()
            .map(|libs| (Kind::Kafka, libs))
            .or_else(|e| {
                say!(
                    "Apache Kafka cannot run here ({e:#}): using the embedded Rust broker, Nisshi"
                );
                Ok((Kind::Nisshi, install_nisshi()?))
            }),
    }
}

/// Runs `program args`, its output on stderr (stdout is the answer's).
fn run(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("run {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn install_kafka() -> Result<PathBuf> {
    let (version, home) = (kafka::version()?, kafka::home()?);
    if let Ok(libs) = kafka::available() {
        say!("Apache Kafka {version} present in {}", home.display());
        return Ok(libs);
    }
    let need: Vec<&str> = [("java", "openjdk-17-jre-headless"), ("mvn", "maven")]
        .into_iter()
        .filter(|(cmd, _)| on_path(cmd).is_none())
        .map(|(_, package)| package)
        .collect();
    if !need.is_empty() {
        if on_path("apt-get").is_none() {
            bail!(
                "java or mvn is missing and this is not a Debian-like system; install OpenJDK 17 and Maven"
            );
        }
        say!(
            "installing from Debian's packages for Apache Kafka: {}",
            need.join(" ")
        );
        // SAFETY: geteuid(2) has no preconditions.
        let (apt, pre): (&str, &[&str]) = match unsafe { libc::geteuid() } {
            0 => ("apt-get", &[]),
            _ => ("sudo", &["apt-get"]),
        };
        run(apt, &[pre, &["update"]].concat())?;
        run(
            apt,
            &[pre, &["install", "-y", "--no-install-recommends"], &need].concat(),
        )?;
    }
    let libs = home.join("libs");
    say!(
        "installing Apache Kafka {version} from Maven Central into {}",
        libs.display()
    );
    let started = std::time::Instant::now();
    let _ = fs::remove_dir_all(&libs);
    fs::create_dir_all(&home)?;
    let log = home.join("install.log");
    let out = File::create(&log)?;
    let pom = repo_root().join("scripts/kafka/pom.xml");
    let ok = Command::new("mvn")
        .args(["-B", "-q", "-Dstyle.color=never", "-f"])
        .arg(pom)
        .arg(format!("-Dkafka.version={version}"))
        .args(["dependency:copy-dependencies", "-DincludeScope=runtime"])
        .arg(format!("-DoutputDirectory={}", libs.display()))
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !libs.join(format!("kafka_2.13-{version}.jar")).is_file() {
        bail!(
            "mvn could not fetch Apache Kafka {version} from Maven Central (log: {})",
            log.display()
        );
    }
    fs::write(home.join(".complete"), format!("{version}\n"))?;
    say!(
        "Apache Kafka {version} installed in {} s",
        started.elapsed().as_secs()
    );
    kafka::available()
}

fn install_nisshi() -> Result<PathBuf> {
    let install = nisshi::INSTALL.join(" ");
    if let Some(bin) = nisshi::binary() {
        match nisshi::version_of(&bin) {
            Some(v) if v == nisshi::VERSION => {
                say!("Nisshi {v} present at {}", bin.display())
            }
            v => say!(
                "warning: {} is Nisshi {}, not the pinned {}; using it (for the pinned one: cargo {install} --force)",
                bin.display(),
                v.as_deref().unwrap_or("of an unknown version"),
                nisshi::VERSION
            ),
        }
        return Ok(bin);
    }
    say!("installing the embedded broker: cargo {install}");
    say!(
        "this builds Nisshi from source once: ~20-45 minutes on 2 cores; later runs reuse ~/.cargo/bin/nisshi"
    );
    run("cargo", nisshi::INSTALL)?;
    nisshi::binary().context("cargo install finished but no nisshi binary was found")
}
