//! The `auditchain` binary.

use clap::Parser;

/// mimalloc instead of glibc malloc: ingest allocates and frees many large buffers (request
/// bodies, blocks, sled pages); with glibc, page zeroing and malloc were a third of the CPU.
/// Built with `no_thp`: otherwise mimalloc v3 advises transparent huge pages on its arenas
/// and the kernel zeroes 2 MiB at each first touch, 8–11 % of `bench cluster` CPU in
/// profiles (its system time fell from 5.4–5.7 s to 3.2–3.7 s without). Hosts whose THP mode
/// is `always` (not `madvise`) give huge pages unasked: set `MIMALLOC_ALLOW_THP=0` there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    auditchain_node::logging::init();
    match auditchain_node::cli::Cli::parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
