//! The `reqresp` command: parses arguments and hands over to the library.

mod cli;

/// mimalloc instead of glibc's allocator: `reqresp analyze` allocates on
/// one thread (connections, exchanges) and frees on another (the report
/// writer), which glibc serializes on its arena locks; on the
/// 2.4-million-packet benchmark mimalloc took 0.42 s where glibc took 0.74 s
/// (docs/benchmark.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
