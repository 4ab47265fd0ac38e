//! The interactive client: a prompt with line editing and history; each
//! response is printed with its round-trip time.
//!
//! ```text
//! connected to 127.0.0.1:2222 (line framing, timeout 5 s)
//! type a message and press Enter; `quit`, `exit` or Ctrl-D to leave
//! > hi
//! Echo: hi   (0.210 ms)
//! ```
//!
//! Leaving (`quit`, `exit`, Ctrl-D, or Ctrl-C twice at the prompt) closes the
//! connection with a FIN, so a capture shows an orderly teardown. Ctrl-C while
//! waiting for a response gives up on it and leaves, since a late answer
//! would otherwise be taken for the answer to the next request.

use std::io::{self, Write};

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};
use tokio::signal::unix::{SignalKind, signal};

use super::{Client, ClientError};

/// The prompt shown before each request.
pub(crate) const PROMPT: &str = "> ";

/// Why an interactive session ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum InteractiveError {
    /// The connection failed; the session cannot go on.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The terminal could not be set up or read.
    #[error(
        "cannot read from the terminal: {0} (pipe the requests instead: `... | reqresp client`)"
    )]
    Terminal(ReadlineError),
    /// Ctrl-C (SIGINT) could not be listened for.
    #[error("cannot listen for Ctrl-C")]
    Signal(#[source] io::Error),
    /// Writing to the terminal failed.
    #[error("cannot write to the terminal")]
    Output(#[source] io::Error),
}

/// What the user typed, once interpreted.
#[derive(Debug, PartialEq, Eq)]
enum Input<'a> {
    /// Leave the session.
    Quit,
    /// Nothing to send.
    Blank,
    /// Send this request.
    Request(&'a str),
}

fn interpret(line: &str) -> Input<'_> {
    match line.trim() {
        "quit" | "exit" => Input::Quit,
        "" => Input::Blank,
        _ => Input::Request(line),
    }
}

/// True when the connection can still be used after `err`: only requests
/// refused before anything was sent.
fn recoverable(err: &ClientError) -> bool {
    matches!(err, ClientError::Request(_) | ClientError::EmptyRaw)
}

/// Runs the prompt until the user leaves, then closes the connection.
///
/// The terminal is read on a blocking thread (rustyline is synchronous), so
/// the runtime stays free to notice Ctrl-C while a request is in flight.
pub async fn run(mut client: Client) -> Result<(), InteractiveError> {
    let config = Config::builder().auto_add_history(false).build();
    let mut editor: Editor<(), DefaultHistory> =
        Editor::with_config(config).map_err(InteractiveError::Terminal)?;
    // Listen for SIGINT from the start, not only once a request is in flight:
    // a Ctrl-C pressed right after Enter must not find the default handler,
    // which would kill the client without closing the connection.
    let mut sigint = signal(SignalKind::interrupt()).map_err(InteractiveError::Signal)?;
    let mut stdout = io::stdout();
    writeln!(
        stdout,
        "connected to {} ({} framing, timeout {} s)\n\
         type a message and press Enter; `quit`, `exit` or Ctrl-D to leave",
        client.peer(),
        client.framing(),
        client.timeout().as_secs_f64(),
    )
    .map_err(InteractiveError::Output)?;

    let mut interrupted = false;
    loop {
        let (back, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline(PROMPT);
            (editor, line)
        })
        .await
        .expect("the terminal reader does not panic");
        editor = back;
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Eof) => break,
            // Ctrl-C clears the line; a second one in a row leaves.
            Err(ReadlineError::Interrupted) if interrupted => break,
            Err(ReadlineError::Interrupted) => {
                interrupted = true;
                writeln!(stdout, "(Ctrl-C again, Ctrl-D or `quit` to leave)")
                    .map_err(InteractiveError::Output)?;
                continue;
            }
            Err(e) => return Err(InteractiveError::Terminal(e)),
        };
        interrupted = false;
        let request = match interpret(&line) {
            Input::Quit => break,
            Input::Blank => continue,
            Input::Request(request) => request,
        };
        let _ = editor.add_history_entry(request);
        // A server closes connections left idle (10 s before the first
        // request, 5 min between requests by default): open a new one.
        if client.reconnect_if_closed().await? {
            writeln!(
                stdout,
                "(the server had closed the idle connection; reconnected to {})",
                client.peer()
            )
            .map_err(InteractiveError::Output)?;
        }
        tokio::select! {
            result = client.request(request.as_bytes()) => match result {
                Ok(response) => writeln!(stdout, "{response}").map_err(InteractiveError::Output)?,
                Err(err) if recoverable(&err) => {
                    writeln!(stdout, "{err}").map_err(InteractiveError::Output)?
                }
                Err(err) => return Err(err.into()),
            },
            _ = sigint.recv() => {
                writeln!(stdout, "\ninterrupted: no longer waiting for the response")
                    .map_err(InteractiveError::Output)?;
                break;
            }
        }
    }
    client.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FrameError;

    #[test]
    fn quit_and_exit_leave_blank_lines_are_skipped_the_rest_is_sent() {
        assert_eq!(interpret("quit"), Input::Quit);
        assert_eq!(interpret("  exit "), Input::Quit);
        assert_eq!(interpret("   "), Input::Blank);
        assert_eq!(interpret(" book ticket "), Input::Request(" book ticket "));
        assert_eq!(interpret("quit now"), Input::Request("quit now"));
    }

    #[test]
    fn only_requests_refused_before_sending_keep_the_session() {
        assert!(recoverable(&ClientError::EmptyRaw));
        assert!(recoverable(&ClientError::Request(
            FrameError::NewlineInLine
        )));
        let peer = "127.0.0.1:1".parse().unwrap();
        assert!(!recoverable(&ClientError::Closed { peer, partial: 0 }));
    }
}
