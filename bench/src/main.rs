//! `bench`: see `bench --help`, `scripts/bench.sh --help`, or the crate
//! docs of `banking_bench`.

fn main() -> std::process::ExitCode {
    banking_bench::cli::main()
}
