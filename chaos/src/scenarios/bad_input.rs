//! `bad-input` (chaos/README.md).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use testkit::bins::PRODUCER;
use testkit::procs::{Proc, SECRET};

use super::{fresh_dir, sub};
use crate::{Config, Outcome, Scenario};

const SC: Scenario = Scenario::BadInput;

/// Which binaries a case is for.
#[derive(Clone, Copy, PartialEq)]
enum For {
    All,
    Producer,
    Consumers,
}
use For::*;

/// `(for, case, arguments, what the error line names, the file it needs)`;
/// `SECRET` in an argument is [`SECRET`], which must never be echoed.
#[rustfmt::skip]
const CASES: [(For, &str, &[&str], &str, &str); 21] = [
    (All, "unparsable broker list", &["--brokers", "::bad::,"], "brokers", ""),
    (All, "broker port out of range", &["--brokers", "localhost:99999"], "99999", ""),
    (All, "unknown -X property", &["-X", "no.such.property=1"], "no.such.property", ""),
    (All, "-X without =", &["-X", "linger.ms"], "key=value", ""),
    (All, "mistyped secret -X property (value must not be echoed)", &["-X", "sasl.pasword=SECRET"], "sasl.pasword", ""),
    (All, "secret -X property on a build without its feature, or a bad value", &["-X", "ssl.key.password=SECRET", "-X", "no.such.property=1"], "no.such.property", ""),
    (Producer, "negative count", &["--count", "-5"], "-5", ""),
    (Producer, "absurd count", &["--count", "99999999999999999999999"], "--count", ""),
    (Producer, "negative rate", &["--rate", "-1"], "-1", ""),
    (Producer, "absurd rate", &["--rate", "18446744073709551615"], "--rate", ""),
    (Producer, "too few accounts", &["--accounts", "0"], "--accounts", ""),
    (Producer, "negative partitions", &["--partitions", "-3"], "-3", ""),
    (Consumers, "database in a missing directory", &["--db", "/nonexistent-chaos-dir/c.db"], "/nonexistent-chaos-dir", ""),
    (Consumers, "database under a plain file", &["--db", "file/c.db"], "file/c.db", "file"),
    (Consumers, "unwritable database path (procfs)", &["--db", "/proc/chaos.db"], "/proc/chaos.db", ""),
    (Consumers, "a file that is not SQLite", &["--db", "text.db"], "not a SQLite", "text.db"),
    (Consumers, "a database from a newer schema version", &["--db", "newer.db"], "version", "newer.db"),
    (Consumers, "zero batch size", &["--batch-size", "0"], "--batch-size", ""),
    (Consumers, "negative batch size", &["--batch-size", "-1"], "-1", ""),
    (Consumers, "absurd flush interval", &["--flush-interval-ms", "99999999999999999999999"], "--flush-interval-ms", ""),
    (Consumers, "negative max events", &["--max-events", "-3"], "-3", ""),
];

pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "bad-input")?;
    let mut bins = vec![(PRODUCER, Producer)];
    bins.extend(cfg.consumers.iter().map(|c| (c.binary(), Consumers)));
    let mut outcomes = Vec::new();
    for (bin, kind) in bins {
        let (mut problems, mut clear, mut changed, mut leaks) = (Vec::new(), 0, 0, 0);
        let cases = CASES.iter().filter(|c| [All, kind].contains(&c.0));
        let cases: Vec<_> = cases.collect();
        for (i, &&(_, what, args, needle, file)) in cases.iter().enumerate() {
            let cwd = sub(&dir, &format!("{bin}-{i}"))?;
            prepare(&cwd, file)?;
            let before = snapshot(&cwd);
            let args: Vec<String> = args.iter().map(|a| a.replace("SECRET", SECRET)).collect();
            let (problem, leaked) = run_case(cfg, bin, &cwd, &args, needle)?;
            let after = snapshot(&cwd);
            if before != after {
                changed += 1;
                let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
                let (before, after) = (names(&before), names(&after));
                problems.push(format!(
                    "{what}: files changed in the working directory: {before:?} -> {after:?}"
                ));
            }
            if leaked {
                leaks += 1;
                problems.push(format!("{what}: the secret value was printed"));
            }
            match problem {
                None => clear += 1,
                Some(p) => problems.push(format!("{what}: {p}")),
            }
        }
        let cwd = sub(&dir, &format!("{bin}-help"))?;
        let help = [
            "-X".into(),
            format!("sasl.password={SECRET}"),
            "--help".into(),
        ];
        let mut p = spawn(cfg, bin, &cwd, &help)?;
        p.wait(Duration::from_secs(20))?;
        if p.log_text().contains(SECRET) {
            leaks += 1;
            problems.push("--help printed the secret given with -X".into());
        }
        let figures = format!(
            "cases {} clear_errors {clear} files_changed {changed} secret_leaks {leaks}",
            cases.len()
        );
        outcomes.push(Outcome::new(SC, bin, figures, problems));
    }
    Ok(outcomes)
}

/// Makes `file` (a text file, a newer schema's database, a plain file).
fn prepare(cwd: &Path, file: &str) -> Result<()> {
    match file {
        "text.db" => std::fs::write(cwd.join(file), "account,amount\n1,100\n")?,
        "file" => std::fs::write(cwd.join(file), "plain file\n")?,
        "newer.db" => {
            let path = cwd.join(file);
            drop(store::Store::open(&path)?);
            let conn = rusqlite::Connection::open(&path)?;
            conn.pragma_update(None, "user_version", store::SCHEMA_VERSION + 1)?;
            conn.pragma_update(None, "journal_mode", "DELETE")?;
            drop(conn);
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(cwd.join(format!("{file}{suffix}")));
            }
        }
        _ => {}
    }
    Ok(())
}

/// File name -> contents of every file in `dir` but the output.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let files = entries.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()));
    let files = files.filter(|(name, _)| !name.ends_with(".out"));
    files
        .map(|(name, path)| (name, std::fs::read(path).unwrap_or_default()))
        .collect()
}

fn spawn(cfg: &Config, bin: &str, cwd: &Path, args: &[String]) -> Result<Proc> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let (path, log) = (cfg.bins.dir().join(bin), cwd.join("run.out"));
    Proc::spawn(&path, &args, &log, Some(cwd), bin)
}

/// Runs one case: what is wrong with its refusal, and whether it leaked.
fn run_case(
    cfg: &Config,
    bin: &str,
    cwd: &Path,
    case: &[String],
    needle: &str,
) -> Result<(Option<String>, bool)> {
    let has = |flag: &str| case.iter().any(|a| a == flag);
    let mut args: Vec<String> = Vec::new();
    // A port nothing listens on: a case that got past its checks would try
    // to connect and time out instead of failing fast.
    if !has("--brokers") {
        args.extend(["--brokers".into(), "127.0.0.1:1".into()]);
    }
    if bin == PRODUCER {
        args.extend(["--timeout".into(), "5".into()]);
        // clap refuses a repeated flag: not ours when the case has one.
        if !has("--count") {
            args.extend(["--count".into(), "10".into()]);
        }
    }
    args.extend(case.iter().cloned());
    let started = Instant::now();
    let mut p = spawn(cfg, bin, cwd, &args)?;
    let Ok(status) = p.wait(Duration::from_secs(20)) else {
        return Ok((Some("still running after 20 s (killed)".into()), false));
    };
    let took = started.elapsed();
    let text = p.log_text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let problem = if status.success() || status.code().is_none() {
        Some(format!(
            "exit status {status}, expected a non-zero exit code"
        ))
    } else if text.contains("panicked") {
        Some(format!("panicked: {first_line}"))
    } else if errors.len() != 1 {
        Some(format!(
            "expected one error line, got {}: {errors:?}",
            errors.len()
        ))
    } else if !errors[0]
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
    {
        Some(format!("the error does not name {needle:?}: {}", errors[0]))
    } else if took > Duration::from_secs(15) {
        Some(format!("took {took:?} to fail"))
    } else {
        None
    };
    Ok((problem, text.contains(SECRET)))
}
