//! `reqresp server`: arguments and dispatch.

use std::process::ExitCode;

/// Arguments of `reqresp server`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `reqresp server`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reqresp server` is not built yet")
}
