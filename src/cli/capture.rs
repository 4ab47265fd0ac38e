//! `reqresp capture`: arguments and dispatch.

use std::process::ExitCode;

/// Arguments of `reqresp capture`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `reqresp capture`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reqresp capture` is not built yet")
}
