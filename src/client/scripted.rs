//! The scripted client: send each message in order, write each response on
//! its own line, and nothing else.
//!
//! Used by `reqresp client ADDR msg1 msg2 ...` and by `... | reqresp client`
//! (every stdin line is a request), so its output can be piped, diffed and
//! asserted on. Errors are returned, never printed here: the caller puts the
//! one-line reason on stderr.

use std::io::{self, BufRead, Write};
use std::time::Duration;

use super::{Client, ClientError};

/// Why a scripted run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The connection or a request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading the next request failed (e.g. from stdin).
    #[error("cannot read request {number} from the input")]
    Input {
        /// 1-based number of the request being read.
        number: usize,
        /// The underlying error.
        #[source]
        error: io::Error,
    },
    /// Writing a response failed (e.g. stdout closed: `| head`).
    #[error("cannot write the response to the output")]
    Output(#[source] io::Error),
}

/// How response bytes reach the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// As received, byte for byte (for a pipe or a file).
    #[default]
    Raw,
    /// Control characters escaped (`\u{1b}`), invalid UTF-8 replaced, as
    /// the interactive client shows them: for a terminal, which the
    /// server's bytes must not drive (set its title, clear the screen).
    Escaped,
}

/// What a completed run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The round-trip time of each request, in order.
    pub rtts: Vec<Duration>,
}

/// Sends every message in order, each after the previous response arrived,
/// and writes each response to `out` followed by a newline (unless it already
/// ends with one), flushing after each so a pipe sees it at once. With
/// [`Output::Raw`] the bytes are written as received: a binary response
/// (length framing) stays byte-exact; with [`Output::Escaped`] they are made
/// safe for a terminal. Closes the connection cleanly (FIN) at the end.
///
/// `messages` may block while producing the next item (lines typed into a
/// pipe): the client is idle between requests, so there is nothing else for
/// the runtime to do meanwhile. On the first error the run stops; responses
/// already written stay written.
pub async fn run<I, M, W>(
    mut client: Client,
    messages: I,
    out: &mut W,
    output: Output,
) -> Result<Summary, ScriptError>
where
    I: IntoIterator<Item = io::Result<M>>,
    M: AsRef<[u8]>,
    W: Write + ?Sized,
{
    let mut summary = Summary::default();
    for (i, message) in messages.into_iter().enumerate() {
        let message = message.map_err(|error| ScriptError::Input {
            number: i + 1,
            error,
        })?;
        // Requests read from a slow pipe may come after the server closed
        // the idle connection: reopen it (nothing was sent on it since).
        client.reconnect_if_closed().await?;
        let response = client.request(message.as_ref()).await?;
        match output {
            Output::Raw => write_line(out, &response.bytes),
            Output::Escaped => write_escaped(out, &response.bytes),
        }
        .map_err(ScriptError::Output)?;
        summary.rtts.push(response.rtt);
    }
    client.close().await?;
    Ok(summary)
}

fn write_line<W: Write + ?Sized>(out: &mut W, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    if !bytes.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// One response made safe for a terminal, then a newline.
fn write_escaped<W: Write + ?Sized>(out: &mut W, bytes: &[u8]) -> io::Result<()> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    writeln!(out, "{}", super::printable(bytes))?;
    out.flush()
}

/// The lines of `input` as requests: split at `\n`, a trailing `\r` dropped
/// (so CRLF files work), a last line without newline kept. Bytes are passed
/// through as they are; no UTF-8 is required.
pub fn lines<R: BufRead>(input: R) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    input.split(b'\n').map(|line| {
        line.map(|mut line| {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            line
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Framing;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A line-framed echo server for one connection; returns its address
    /// and a handle yielding how the client closed (true for a clean FIN).
    async fn echo() -> (String, tokio::task::JoinHandle<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (rd, mut wr) = sock.into_split();
            let mut rd = BufReader::new(rd);
            let mut line = Vec::new();
            loop {
                line.clear();
                match rd.read_until(b'\n', &mut line).await {
                    Ok(0) => return true,
                    Ok(_) => {
                        let mut reply = b"Echo: ".to_vec();
                        reply.extend_from_slice(&line);
                        wr.write_all(&reply).await.unwrap();
                    }
                    Err(_) => return false,
                }
            }
        });
        (addr, handle)
    }

    #[tokio::test]
    async fn writes_one_line_per_response_and_closes_cleanly() {
        let (addr, server) = echo().await;
        let client = Client::connect(&addr, Framing::Line, Duration::from_secs(5))
            .await
            .unwrap();
        let mut out = Vec::new();
        let messages = ["hello", "", "book ticket"].map(Ok::<_, io::Error>);
        let summary = run(client, messages, &mut out, Output::Raw).await.unwrap();
        assert_eq!(out, b"Echo: hello\nEcho: \nEcho: book ticket\n");
        assert_eq!(summary.rtts.len(), 3);
        assert!(server.await.unwrap(), "the client did not close with a FIN");
    }

    #[tokio::test]
    async fn an_input_error_stops_the_run_and_names_the_request() {
        let (addr, _server) = echo().await;
        let client = Client::connect(&addr, Framing::Line, Duration::from_secs(5))
            .await
            .unwrap();
        let mut out = Vec::new();
        let messages = vec![
            Ok(b"a".to_vec()),
            Err(io::Error::new(io::ErrorKind::InvalidData, "boom")),
            Ok(b"never".to_vec()),
        ];
        let err = run(client, messages, &mut out, Output::Raw)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ScriptError::Input { number: 2, .. }),
            "{err:?}"
        );
        assert_eq!(out, b"Echo: a\n");
    }

    #[test]
    fn lines_handle_crlf_blank_lines_and_a_missing_final_newline() {
        let input: &[u8] = b"one\r\ntwo\n\nthree";
        let got: Vec<Vec<u8>> = lines(input).collect::<io::Result<_>>().unwrap();
        assert_eq!(
            got,
            vec![
                b"one".to_vec(),
                b"two".to_vec(),
                b"".to_vec(),
                b"three".to_vec()
            ]
        );
    }

    #[test]
    fn escaped_output_cannot_drive_a_terminal() {
        let mut out = Vec::new();
        write_escaped(&mut out, b"\x1b]0;pwned\x07title \x1b[2Jcleared\n").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "\\u{1b}]0;pwned\\u{7}title \\u{1b}[2Jcleared\n");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn responses_keep_their_bytes_and_get_exactly_one_newline() {
        let mut out = Vec::new();
        write_line(&mut out, &[0, 0xff, b'x']).unwrap();
        write_line(&mut out, b"has newline\n").unwrap();
        assert_eq!(out, b"\x00\xffx\nhas newline\n");
    }
}
