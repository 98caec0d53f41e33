//! `bench`: see `bench --help`, `scripts/bench.sh --help`, or the crate
//! docs of `bench`.

fn main() -> std::process::ExitCode {
    bench::cli::main()
}
