//! `bench`: see `bench --help`, `scripts/bench.sh --help`, or the crate
//! docs of `bench`.

/// The consumers' allocator, so that the ceilings measured here (the
/// store's, bare SQLite's) run on the same one as the consumers they bound.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    bench::cli::main()
}
