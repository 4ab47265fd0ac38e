//! The steps of each scenario that is more than a paced client: the crash,
//! the `recv(1024)` bug, the one-client server, the tickets race and the
//! slow reader. Each is a method of the runner's [`Ctx`].

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::*;

impl Ctx<'_> {
    pub(super) fn crash(&mut self, out: &mut dyn Write) -> Result<(), ScenarioError> {
        let mut server = self.server(DEFAULT_PORT, LabService::Echo, 0, &[], out)?;
        let requests = [
            "before the crash".to_string(),
            "after the crash".to_string(),
        ];
        let mut killed = None;
        let record = self.paced(
            DEFAULT_PORT,
            "client",
            &requests,
            Duration::from_millis(300),
            Duration::from_secs(5),
            out,
            |i, out| {
                if i == 0 {
                    let pid = server.pid();
                    killed = server.stop(libc::SIGKILL, Duration::from_secs(2));
                    let _ = writeln!(out, "server killed (SIGKILL, pid {pid})");
                }
                Ok(())
            },
        )?;
        if let Some(status) = killed {
            self.record.notes.push(format!("server ended: {status}"));
        }
        self.record.clients.push(record);
        let (client, record) = self.once(
            "new client",
            DEFAULT_PORT,
            &["--timeout", "3"],
            &["hello?".to_string()],
            &[],
        )?;
        let _ = writeln!(out, "new client: {}", record.command);
        let record = Self::finish(client, record, Duration::from_secs(8), &[]);
        if let Some(e) = &record.error {
            let _ = writeln!(out, "  new client error: {e}");
        }
        self.record.clients.push(record);
        Ok(())
    }

    pub(super) fn recv_bug(&mut self, out: &mut dyn Write) -> Result<(), ScenarioError> {
        self.start_clock();
        // 3,000 bytes of readable text, numbered every 10 bytes.
        let message: String = (0..300)
            .map(|i| format!("{:>9}.", i * 10))
            .collect::<String>()
            .replace(' ', "-");
        let expected = format!("Echo: {message}");
        for (label, framing, port) in [
            ("raw framing (recv(1024))", "raw", DEFAULT_PORT),
            ("line framing", "line", DEFAULT_PORT + 1),
        ] {
            let extra = vec!["--framing".to_string(), framing.to_string()];
            let mut server = self.server(port, LabService::Echo, 0, &extra, out)?;
            let (client, record) = self.once(
                label,
                port,
                &["--framing", framing, "--timeout", "3"],
                std::slice::from_ref(&message),
                std::slice::from_ref(&expected),
            )?;
            let _ = writeln!(out, "{label}: {}", record.command);
            let record = Self::finish(
                client,
                record,
                Duration::from_secs(8),
                std::slice::from_ref(&expected),
            );
            let _ = writeln!(
                out,
                "  answer: {} bytes, {}",
                record.responses.first().map_or(0, |r| r.len()),
                if record.ok { "right" } else { "WRONG" }
            );
            self.record.clients.push(record);
            server.stop(libc::SIGTERM, Duration::from_secs(5));
        }
        Ok(())
    }

    pub(super) fn one_client_server(&mut self, out: &mut dyn Write) -> Result<(), ScenarioError> {
        self.start_clock();
        let script = self.out.join(PYTHON_SERVER_FILE);
        std::fs::write(&script, PYTHON_SERVER).map_err(|source| ScenarioError::Output {
            path: script.clone(),
            source,
        })?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names.server.netns, "python3"])
            .arg(&script)
            .args([DEFAULT_PORT.to_string(), self.names.server.ip.to_string()]);
        let _ = writeln!(
            out,
            "server (the original lab's): {}",
            process::display(&cmd)
        );
        let mut python = Process::spawn("python server", cmd).map_err(|e| {
            ScenarioError::Missing(format!(
                "{e}; one-client-server needs python3 (apt-get install python3)"
            ))
        })?;
        python
            .wait_for_line("Server listening on ", SERVER_START)
            .map_err(|e| ScenarioError::Missing(format!("{e}; one-client-server needs python3")))?;
        self.three_clients("python server", DEFAULT_PORT, out)?;
        python.stop(libc::SIGTERM, Duration::from_secs(2));
        let extra = vec!["--framing".to_string(), "raw".to_string()];
        let mut server = self.server(DEFAULT_PORT + 1, LabService::Echo, 0, &extra, out)?;
        self.three_clients("reqresp server", DEFAULT_PORT + 1, out)?;
        server.stop(libc::SIGTERM, Duration::from_secs(5));
        Ok(())
    }

    fn three_clients(
        &mut self,
        server: &str,
        port: u16,
        out: &mut dyn Write,
    ) -> Result<(), ScenarioError> {
        let mut running = Vec::new();
        for i in 1..=3 {
            let message = format!("hello from client {i}");
            let expected = format!("Echo: {message}");
            running.push(self.once(
                &format!("{server}, client {i}"),
                port,
                &["--framing", "raw", "--timeout", "3"],
                &[message],
                &[expected],
            )?);
        }
        for (client, record) in running {
            let expected = record.expected.clone();
            let record = Self::finish(client, record, Duration::from_secs(8), &expected);
            let _ = writeln!(
                out,
                "  {}: {}",
                record.label,
                record
                    .error
                    .as_deref()
                    .unwrap_or(record.responses.first().map_or("", String::as_str))
            );
            self.record.clients.push(record);
        }
        Ok(())
    }

    pub(super) fn slow_reader(&mut self, out: &mut dyn Write) -> Result<(), ScenarioError> {
        let extra = vec![
            "--idle-timeout".to_string(),
            format!("{}", SLOW_READER_IDLE.as_secs()),
        ];
        let mut server = self.server(DEFAULT_PORT, LabService::Echo, 0, &extra, out)?;
        self.start_clock();
        let netns = self.names.client.netns.clone();
        let addr = self.addr(DEFAULT_PORT);
        let _ = writeln!(
            out,
            "slow reader: a client in {netns} that sends 16 KiB lines to {addr} and never reads"
        );
        let hold = SLOW_READER_IDLE + Duration::from_secs(2);
        let sent = std::thread::spawn(move || slow_reader_client(&netns, addr, hold))
            .join()
            .map_err(|_| ScenarioError::Missing("the slow reader thread panicked".into()))?;
        let (sent, note) = match sent {
            Ok(sent) => (
                sent,
                format!("the slow reader sent {sent} bytes and read none"),
            ),
            Err(e) => (0, format!("the slow reader failed: {e}")),
        };
        let _ = writeln!(out, "  {note}");
        self.record.notes.push(note);
        self.record.clients.push(ClientRecord {
            label: "slow reader".into(),
            command: "(a socket in the client host that never reads)".into(),
            requests: vec![format!("{sent} bytes of 16 KiB lines")],
            ok: sent > 0,
            ..ClientRecord::default()
        });
        server.stop(libc::SIGTERM, Duration::from_secs(5));
        Ok(())
    }
}

/// The slow reader: in the client host, sends lines until the server's
/// window and its own buffer are full, holds the socket without reading
/// for `hold`, then closes it. Returns the bytes sent.
fn slow_reader_client(netns: &str, addr: SocketAddr, hold: Duration) -> std::io::Result<usize> {
    super::faults::netns::enter(netns)?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    // A small receive buffer fills sooner; the kernel doubles the value.
    let size: libc::c_int = 16 * 1024;
    // SAFETY: setsockopt on our own socket with a valid int.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    stream.set_nonblocking(true)?;
    let mut line = vec![b'x'; 16 * 1024];
    *line.last_mut().expect("not empty") = b'\n';
    let started = Instant::now();
    let mut sent = 0usize;
    let mut stalled_since: Option<Instant> = None;
    let mut offset = 0;
    while sent < SLOW_READER_MAX && started.elapsed() < hold {
        match stream.write(&line[offset..]) {
            Ok(n) => {
                sent += n;
                offset = (offset + n) % line.len();
                stalled_since = None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    // Hold the connection, reading nothing, while the server probes and times out.
    while started.elapsed() < hold {
        if signals::interrupted().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(sent)
}
