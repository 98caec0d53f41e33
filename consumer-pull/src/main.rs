//! consumer-pull: the PULL model (see the library, `consumer_pull`).
//! The binary parses the command line, starts logging (`--log-format`) and runs.

use std::process::ExitCode;

use consumer_core::{Model, parse_cli};
use consumer_pull::Cli;

fn main() -> ExitCode {
    let cli: Cli = parse_cli(Model::Pull);
    common::init_logging(cli.consumer.telemetry.log_format);
    match consumer_pull::run(cli.consumer).map_err(anyhow::Error::from) {
        Ok(_report) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consumer-pull: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
