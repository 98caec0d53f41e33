//! Where the broker's jars are and how the JVM is started on them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

use super::version;
use crate::repo_root;

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

pub(super) fn java(libs: &Path, dir: &Path, heap: &str) -> Command {
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
