//! consumer-push: the PUSH model (see the library, `consumer_push`).
//! The binary parses the command line, starts logging and runs.

use std::process::ExitCode;

use consumer_core::{Model, parse_cli};
use consumer_push::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    common::init_tracing();
    let cli: Cli = parse_cli(Model::Push);
    let result = consumer_push::run(cli.consumer).await;
    match result.map_err(anyhow::Error::from) {
        Ok(_report) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consumer-push: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
