//! Item 6: bad command lines and files (chaos/README.md, `bad-input`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use testkit::bins::PRODUCER;
use testkit::procs::{Proc, SECRET};

use super::fresh_dir;
use crate::{Config, Outcome, Scenario};

/// A file a case needs in its working directory.
#[derive(Clone, Copy)]
enum Setup {
    None,
    /// `text.db`: a text file, not SQLite.
    TextFile,
    /// `newer.db`: a banking store of a newer schema version.
    NewerSchema,
    /// `file`: a plain file, used as if it were a directory.
    FileAsDir,
}

struct Case {
    what: &'static str,
    args: Vec<String>,
    /// Text the error line must contain (case-insensitive).
    needle: &'static str,
    setup: Setup,
}

#[rustfmt::skip]
const COMMON: [(&str, &[&str], &str); 4] = [
    ("unparsable broker list", &["--brokers", "::bad::,"], "brokers"),
    ("broker port out of range", &["--brokers", "localhost:99999"], "99999"),
    ("unknown -X property", &["-X", "no.such.property=1"], "no.such.property"),
    ("-X without =", &["-X", "linger.ms"], "key=value"),
];

#[rustfmt::skip]
const PRODUCER_ONLY: [(&str, &[&str], &str); 6] = [
    ("negative count", &["--count", "-5"], "-5"),
    ("absurd count", &["--count", "99999999999999999999999"], "--count"),
    ("negative rate", &["--rate", "-1"], "-1"),
    ("absurd rate", &["--rate", "18446744073709551615"], "--rate"),
    ("too few accounts", &["--accounts", "0"], "--accounts"),
    ("negative partitions", &["--partitions", "-3"], "-3"),
];

#[rustfmt::skip]
const CONSUMER_ONLY: [(&str, &[&str], &str, Setup); 9] = [
    ("database in a missing directory", &["--db", "/nonexistent-chaos-dir/c.db"], "/nonexistent-chaos-dir", Setup::None),
    ("database under a plain file", &["--db", "file/c.db"], "file/c.db", Setup::FileAsDir),
    ("unwritable database path (procfs)", &["--db", "/proc/chaos.db"], "/proc/chaos.db", Setup::None),
    ("a file that is not SQLite", &["--db", "text.db"], "not a SQLite", Setup::TextFile),
    ("a database from a newer schema version", &["--db", "newer.db"], "version", Setup::NewerSchema),
    ("zero batch size", &["--batch-size", "0"], "--batch-size", Setup::None),
    ("negative batch size", &["--batch-size", "-1"], "-1", Setup::None),
    ("absurd flush interval", &["--flush-interval-ms", "99999999999999999999999"], "--flush-interval-ms", Setup::None),
    ("negative max events", &["--max-events", "-3"], "-3", Setup::None),
];

/// The common cases (two with a secret that must not be echoed), then the
/// binary's own.
fn cases(producer: bool) -> Vec<Case> {
    let case = |what, args: &[&str], needle, setup| Case {
        what,
        args: args.iter().map(|a| a.to_string()).collect(),
        needle,
        setup,
    };
    let mut v: Vec<Case> = COMMON
        .iter()
        .map(|(w, a, n)| case(w, a, n, Setup::None))
        .collect();
    v.push(case(
        "mistyped secret -X property (value must not be echoed)",
        &["-X", &format!("sasl.pasword={SECRET}")],
        "sasl.pasword",
        Setup::None,
    ));
    v.push(case(
        "secret -X property on a build without its feature, or a bad value",
        &[
            "-X",
            &format!("ssl.key.password={SECRET}"),
            "-X",
            "no.such.property=1",
        ],
        "no.such.property",
        Setup::None,
    ));
    if producer {
        v.extend(
            PRODUCER_ONLY
                .iter()
                .map(|(w, a, n)| case(w, a, n, Setup::None)),
        );
    } else {
        v.extend(CONSUMER_ONLY.iter().map(|(w, a, n, s)| case(w, a, n, *s)));
    }
    v
}

/// Runs every case for the producer and each consumer.
pub fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let dir = fresh_dir(cfg, "bad-input")?;
    let mut bins: Vec<(&str, Vec<Case>)> = vec![(PRODUCER, cases(true))];
    bins.extend(cfg.consumers.iter().map(|c| (c.binary(), cases(false))));
    let mut outcomes = Vec::new();
    for (bin, cases) in bins {
        let mut problems = Vec::new();
        let mut clear = 0;
        let mut changed = 0;
        let mut leaks = 0;
        for (i, c) in cases.iter().enumerate() {
            let cwd = dir.join(format!("{bin}-{i}"));
            std::fs::create_dir_all(&cwd)?;
            prepare(&cwd, c.setup)?;
            let before = snapshot(&cwd);
            let verdict = run_case(cfg, bin, &cwd, c)?;
            let after = snapshot(&cwd);
            if before != after {
                changed += 1;
                problems.push(format!(
                    "{}: files changed in the working directory: {:?} -> {:?}",
                    c.what,
                    before.keys().collect::<Vec<_>>(),
                    after.keys().collect::<Vec<_>>()
                ));
            }
            if verdict.leaked {
                leaks += 1;
                problems.push(format!("{}: the secret value was printed", c.what));
            }
            match verdict.problem {
                None => clear += 1,
                Some(p) => problems.push(format!("{}: {p}", c.what)),
            }
        }
        // --help with a secret on the command line.
        let help_leak = help_shows_secret(cfg, bin, &dir)?;
        if help_leak {
            leaks += 1;
            problems.push("--help printed the secret given with -X".into());
        }
        outcomes.push(Outcome::new(
            Scenario::BadInput,
            bin,
            format!(
                "cases {} clear_errors {clear} files_changed {changed} secret_leaks {leaks}",
                cases.len()
            ),
            problems,
        ));
    }
    Ok(outcomes)
}

fn prepare(cwd: &Path, setup: Setup) -> Result<()> {
    match setup {
        Setup::None => {}
        Setup::TextFile => std::fs::write(cwd.join("text.db"), "account,amount\n1,100\n")?,
        Setup::FileAsDir => std::fs::write(cwd.join("file"), "plain file\n")?,
        Setup::NewerSchema => {
            let path = cwd.join("newer.db");
            drop(store::Store::open(&path)?);
            let conn = rusqlite::Connection::open(&path)?;
            conn.pragma_update(None, "user_version", store::SCHEMA_VERSION + 1)?;
            conn.pragma_update(None, "journal_mode", "DELETE")?;
            drop(conn);
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(cwd.join(format!("newer.db{suffix}")));
            }
        }
    }
    Ok(())
}

/// File name -> contents of every file in `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".out") {
                continue;
            }
            out.insert(name, std::fs::read(e.path()).unwrap_or_default());
        }
    }
    out
}

struct Verdict {
    problem: Option<String>,
    leaked: bool,
}

fn run_case(cfg: &Config, bin: &str, cwd: &Path, c: &Case) -> Result<Verdict> {
    // A port nothing listens on: a case that got past its checks would try
    // to connect and time out instead of failing fast.
    let mut args: Vec<OsString> = Vec::new();
    if !c.args.iter().any(|a| a == "--brokers") {
        args.extend(["--brokers".into(), "127.0.0.1:1".into()]);
    }
    if bin == PRODUCER {
        args.extend([
            "--timeout".into(),
            "5".into(),
            "--count".into(),
            "10".into(),
        ]);
        // The case's own --count comes later and wins... clap refuses a
        // repeated flag, so drop ours when the case has one.
        if c.args.iter().any(|a| a == "--count") {
            args.truncate(args.len() - 2);
        }
    }
    args.extend(c.args.iter().map(OsString::from));
    let log = cwd.join("run.out");
    let started = Instant::now();
    let mut p = Proc::spawn(&cfg.bins.dir().join(bin), &args, &log, Some(cwd), bin)?;
    let status = match p.wait(Duration::from_secs(20)) {
        Ok(s) => s,
        Err(_) => {
            return Ok(Verdict {
                problem: Some("still running after 20 s (killed)".into()),
                leaked: false,
            });
        }
    };
    let took = started.elapsed();
    let text = p.log_text();
    let leaked = text.contains(SECRET);
    let error_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    let problem = if status.success() || status.code().is_none() {
        Some(format!(
            "exit status {status}, expected a non-zero exit code"
        ))
    } else if text.contains("panicked") {
        Some(format!("panicked: {}", first_line(&text)))
    } else if error_lines.len() != 1 {
        Some(format!(
            "expected one error line, got {}: {:?}",
            error_lines.len(),
            error_lines
        ))
    } else if !error_lines[0]
        .to_ascii_lowercase()
        .contains(&c.needle.to_ascii_lowercase())
    {
        Some(format!(
            "the error does not name {:?}: {}",
            c.needle, error_lines[0]
        ))
    } else if took > Duration::from_secs(15) {
        Some(format!("took {took:?} to fail"))
    } else {
        None
    };
    Ok(Verdict { problem, leaked })
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

fn help_shows_secret(cfg: &Config, bin: &str, dir: &Path) -> Result<bool> {
    let cwd = dir.join(format!("{bin}-help"));
    std::fs::create_dir_all(&cwd)?;
    let args: Vec<OsString> = vec![
        "-X".into(),
        format!("sasl.password={SECRET}").into(),
        "--help".into(),
    ];
    let mut p = Proc::spawn(
        &cfg.bins.dir().join(bin),
        &args,
        &cwd.join("help.out"),
        Some(&cwd),
        bin,
    )?;
    p.wait(Duration::from_secs(20))?;
    Ok(p.log_text().contains(SECRET))
}
