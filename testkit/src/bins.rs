//! Where the binaries under test are.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

pub use consumer_core::Model;

pub const MODELS: [Model; 2] = [Model::Pull, Model::Push];

pub const PRODUCER: &str = "producer";

/// A directory holding `producer`, `consumer-pull` and `consumer-push`.
#[derive(Debug, Clone)]
pub struct Bins {
    dir: PathBuf,
}

impl Bins {
    /// The binaries in `dir`; fails naming the first one missing.
    pub fn in_dir(dir: &Path) -> Result<Bins> {
        let bins = Bins {
            dir: dir.to_path_buf(),
        };
        for name in bins.names() {
            if !dir.join(name).is_file() {
                bail!(
                    "{} is missing; build with: cargo build --release -p producer -p consumer-pull -p consumer-push (or set BIN_DIR)",
                    dir.join(name).display()
                );
            }
        }
        Ok(bins)
    }

    /// For tests: the binaries of this build, built first when missing or
    /// older than the test (`cargo test -p X` builds only X's).
    pub fn of_this_build() -> Bins {
        static BUILD: Once = Once::new();
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>")
            .to_path_buf();
        let bins = Bins { dir };
        BUILD.call_once(|| bins.build_if_stale(&exe));
        bins
    }

    fn names(&self) -> [&'static str; 3] {
        [PRODUCER, Model::Pull.binary(), Model::Push.binary()]
    }

    fn build_if_stale(&self, exe: &Path) {
        let built = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let test_built = built(exe);
        let older = |b: &&str| {
            built(&self.dir.join(b)).is_none_or(|bin| test_built.is_some_and(|test| bin < test))
        };
        if !self.names().iter().any(older) {
            return;
        }
        let target = self.dir.parent().expect("target/<profile>");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "producer", "-p", "consumer-pull"])
            .args(["-p", "consumer-push", "--target-dir"])
            .arg(target);
        if self.dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(crate::repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn producer(&self) -> PathBuf {
        self.dir.join(PRODUCER)
    }

    pub fn consumer(&self, model: Model) -> PathBuf {
        self.dir.join(model.binary())
    }
}
