//! consumer-pull: the PULL model (see the library, `consumer_pull`).
//! The binary parses the command line, starts logging and runs.

use std::process::ExitCode;

use consumer_core::{Model, parse_cli};
use consumer_pull::Cli;

fn main() -> ExitCode {
    common::init_tracing();
    let cli: Cli = parse_cli(Model::Pull);
    match consumer_pull::run(cli.consumer).map_err(anyhow::Error::from) {
        Ok(_report) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consumer-pull: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
