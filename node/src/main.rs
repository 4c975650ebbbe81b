//! The `auditchain` binary.

use clap::Parser;

/// mimalloc instead of glibc malloc: ingest allocates and frees many large buffers (request
/// bodies, blocks, sled pages); with glibc, page zeroing and malloc were a third of the CPU.
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
