//! `reqresp lab`: arguments and dispatch.

use std::process::ExitCode;

/// Arguments of `reqresp lab`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `reqresp lab`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reqresp lab` is not built yet")
}
