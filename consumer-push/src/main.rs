//! consumer-push: the PUSH model (see the library, `consumer_push`).
//! The binary parses the command line, starts logging (`--log-format`) and runs.

use std::process::ExitCode;

use consumer_core::{Model, parse_cli};
use consumer_push::Cli;

/// mimalloc instead of glibc's malloc: the decoded events are allocated on
/// one thread and freed on another (the SQLite writer's), which glibc
/// serves through its arena locks (docs/store.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = parse_cli(Model::Push);
    common::init_logging(cli.consumer.telemetry.log_format);
    let result = consumer_push::run(cli.consumer).await;
    match result.map_err(anyhow::Error::from) {
        Ok(_report) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consumer-push: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
