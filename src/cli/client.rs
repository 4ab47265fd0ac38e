//! `reqresp client`: arguments and dispatch.
//!
//! With messages: scripted. Without, and stdin a terminal: interactive.
//! Without, and stdin a pipe or file: every stdin line is a request.

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;

use reqresp::client::{self, Client, interactive, scripted};
use reqresp::protocol::Framing;

/// Arguments of `reqresp client`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  reqresp client                                  prompt, connected to 127.0.0.1:2222
  reqresp client 127.0.0.1:2222 hello 'book ticket'
  printf 'a\\nb\\n' | reqresp client reqresp-server:2222
  reqresp client --framing raw 127.0.0.1:2222 hi  talk to the lab's Python server
  reqresp client ADDR -- -starts-with-dash        messages after -- may start with -

Exit status: 0 when every request got its response; 1 with a one-line reason
on stderr otherwise (unreachable, closed early, no answer within --timeout).")]
pub struct Args {
    /// Server address as host:port; a host name works (reqresp-server:2222),
    /// a missing port means 2222.
    #[arg(value_name = "ADDR", default_value_t = client::default_addr())]
    addr: String,
    /// Messages to send, one request each, responses printed one per line.
    /// Without any: a prompt when stdin is a terminal, else one request per
    /// stdin line.
    #[arg(value_name = "MSG")]
    messages: Vec<OsString>,
    /// How messages are delimited: line (up to \n), length (4-byte big-endian
    /// prefix) or raw (one read is one message, like the original lab; unreliable).
    #[arg(long, value_enum, default_value_t = Framing::Line)]
    framing: Framing,
    /// Largest response accepted, in bytes; a larger one is an error.
    #[arg(long, value_name = "BYTES", default_value_t = client::DEFAULT_MAX_RESPONSE)]
    max_response: usize,
    /// Seconds to wait for the connection and for each response.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_timeout)]
    timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if secs <= 0.0 {
        return Err("the timeout must be more than 0 seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` seconds is too long"))
}

/// Runs `reqresp client`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // One thread is plenty for one connection, and lets the scripted client
    // read stdin between requests without holding up anything else.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = Client::connect(&args.addr, args.framing, args.timeout)
            .await?
            .with_max_response(args.max_response);
        let stdin = io::stdin();
        let mut stdout = io::stdout().lock();
        // A terminal must not be driven by the server's bytes (escape
        // sequences); a pipe gets them exactly.
        let output = if stdout.is_terminal() {
            scripted::Output::Escaped
        } else {
            scripted::Output::Raw
        };
        if !args.messages.is_empty() {
            let messages = args
                .messages
                .into_iter()
                .map(|m| Ok::<_, io::Error>(m.into_encoded_bytes()));
            scripted::run(client, messages, &mut stdout, output).await?;
        } else if stdin.is_terminal() {
            drop(stdout);
            interactive::run(client).await?;
        } else {
            scripted::run(client, scripted::lines(stdin.lock()), &mut stdout, output).await?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
