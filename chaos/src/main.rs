//! `chaos`: the fault suite's command line. See `chaos --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chaos::{Config, Options, run};
use clap::Parser;
use testkit::{Bins, kafka};

fn main() -> ExitCode {
    match real_main(Options::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(options: Options) -> Result<bool> {
    let bin_dir = match &options.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    if let Some(home) = &options.kafka_home {
        kafka::set_home(home);
    }
    let shared = options.out.join("kafka");
    if shared.exists() {
        std::fs::remove_dir_all(&shared)?;
    }
    kafka::set_shared_dir(&shared);
    let cfg = Config {
        bins: Bins::in_dir(&bin_dir)?,
        options,
    };
    let names = |v: Vec<String>| v.join(",");
    println!(
        "chaos: {} events per scenario, broker {}, consumers {}, scenarios {}, out {}",
        cfg.events,
        format!("{:?}", cfg.broker).to_lowercase(),
        names(cfg.consumers.iter().map(|c| c.name().to_string()).collect()),
        names(cfg.scenarios.iter().map(|s| s.name()).collect()),
        cfg.out.display()
    );
    let outcomes = run(&cfg)?;
    let failed = outcomes.iter().filter(|o| o.failed()).count();
    let skipped = outcomes.iter().filter(|o| o.skipped.is_some()).count();
    let passed = outcomes.len() - failed - skipped;
    println!("chaos: {passed} passed, {failed} failed, {skipped} skipped");
    Ok(failed == 0)
}
