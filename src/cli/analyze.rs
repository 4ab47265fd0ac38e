//! `reqresp analyze`: arguments and dispatch.

use std::process::ExitCode;

/// Arguments of `reqresp analyze`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `reqresp analyze`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reqresp analyze` is not built yet")
}
