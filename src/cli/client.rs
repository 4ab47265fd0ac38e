//! `reqresp client`: arguments and dispatch.

use std::process::ExitCode;

/// Arguments of `reqresp client`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `reqresp client`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reqresp client` is not built yet")
}
