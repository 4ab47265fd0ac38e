//! The server: accept loop, connection limits and graceful shutdown.
//!
//! [`run`] takes a bound listener, a [`Config`] and a shutdown future, so the
//! binary, the tests and `reqresp lab` all embed the same server:
//!
//! - every accepted connection runs in its own task and holds one of
//!   [`Config::max_connections`] slots; its own timers (first byte, request,
//!   idle) bound how long it may hold it (see `handler`);
//! - when every slot is taken, a new connection reclaims the slot of the
//!   waiting connection that has gone longest without a request (see
//!   `registry`); when none can be reclaimed, or the client's address is at
//!   [`Config::max_connections_per_ip`], it is refused;
//! - every refused connection is sent the one-line reason at once, from the
//!   accept loop itself, without waiting on the client; the loop never waits
//!   on a refused client, and the log sums refusals up once a second, with
//!   any overflow of the kernel's listen queue;
//! - when `shutdown` completes, the listener is closed and every connection
//!   stops taking requests, delivers the answers it has made, and closes,
//!   all within [`Config::drain_timeout`]; answers the deadline kept from
//!   their clients are counted in the log.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

pub mod config;
mod deferred;
mod handler;
pub mod os;
mod registry;
pub mod service;
pub mod threads;

pub use config::{Config, ConfigError};
pub use service::{Service, ServiceKind, ServiceOptions};

use registry::{Admission, Refusal, Registry};

/// Pause after a failed `accept` (for example out of file descriptors),
/// so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Length of the kernel's queue of connections not yet accepted (capped by
/// `net.core.somaxconn`). Larger than tokio's 1024, so a burst of clients
/// waits for the accept loop instead of being dropped by the kernel.
const LISTEN_BACKLOG: u32 = 4096;

/// Refused connections that may wait at once for their client to close
/// after reading the refusal (so that the close sends no reset). Beyond
/// this, a refused connection is closed right after its message.
const MAX_REFUSALS_LINGERING: usize = 1024;

/// How often refusals, reclaims and listen-queue overflows are summed up
/// in the log.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How long after the drain deadline `run` waits for connection tasks
/// (which stop themselves at the deadline) before cutting them.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address is taken by another socket.
    #[error(
        "address {addr} is in use: stop the other server or pick another port with --listen 127.0.0.1:0"
    )]
    AddrInUse {
        /// The address asked for.
        addr: String,
    },
    /// Not allowed to listen there (ports below 1024 need privileges).
    #[error(
        "no permission to listen on {addr}: ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a port above 1023, e.g. --listen 0.0.0.0:2222"
    )]
    PermissionDenied {
        /// The address asked for.
        addr: String,
    },
    /// The address is not one of this machine's.
    #[error(
        "cannot listen on {addr}: it is not an address of this machine; use 0.0.0.0 (every interface) or 127.0.0.1 (this machine only)"
    )]
    AddrNotAvailable {
        /// The address asked for.
        addr: String,
    },
    /// Any other failure to bind (bad host name, ...).
    #[error("cannot listen on {addr} (expected HOST:PORT, e.g. 0.0.0.0:2222)")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the system said.
        source: io::Error,
    },
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listener's own address could not be read.
    #[error("cannot read the listening address: {0}")]
    LocalAddr(io::Error),
    /// A thread of the server could not be started.
    #[error("cannot start a server thread: {0} (is the system out of threads or memory?)")]
    Thread(io::Error),
}

/// Binds a listener on `addr` (`HOST:PORT`; port 0 picks a free port), with
/// errors that say what to do.
pub async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    let candidates = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| bind_error(addr, e))?;
    bind_first(addr, candidates, |candidate| listen(candidate, false))
}

/// The first of `candidates` (the addresses `addr` names) that `bind`
/// succeeds on, or the error of the last one tried.
fn bind_first<T>(
    addr: &str,
    candidates: impl Iterator<Item = SocketAddr>,
    mut bind: impl FnMut(SocketAddr) -> io::Result<T>,
) -> Result<T, ServerError> {
    let mut last = None;
    for candidate in candidates {
        match bind(candidate) {
            Ok(bound) => return Ok(bound),
            Err(e) => last = Some(e),
        }
    }
    Err(bind_error(
        addr,
        last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the name has no address")
        }),
    ))
}

/// The error for a failed bind on `addr`, by what the system said.
fn bind_error(addr: &str, source: io::Error) -> ServerError {
    let addr = addr.to_owned();
    match source.kind() {
        io::ErrorKind::AddrInUse => ServerError::AddrInUse { addr },
        io::ErrorKind::PermissionDenied => ServerError::PermissionDenied { addr },
        io::ErrorKind::AddrNotAvailable => ServerError::AddrNotAvailable { addr },
        _ => ServerError::Bind { addr, source },
    }
}

/// A TCP socket of `addr`'s family.
fn socket_for(addr: SocketAddr) -> io::Result<TcpSocket> {
    match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
}

/// Listens on one address with [`LISTEN_BACKLOG`]; `reuseport` lets the
/// listeners of one [`threads::PerCore`] server share it.
fn listen(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let socket = socket_for(addr)?;
    // As std and tokio do: a restarted server can bind while old
    // connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    if reuseport {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The refusal lines, framed once for the server's framing.
struct Refusals {
    busy: Vec<u8>,
    per_ip: Vec<u8>,
    shutting_down: Vec<u8>,
}

impl Refusals {
    fn new(config: &Config) -> Self {
        let frame = |text: String| {
            let mut out = Vec::new();
            // Short single-line texts: every framing can carry them.
            let _ = config.framing.encode(text.as_bytes(), &mut out);
            out
        };
        Refusals {
            busy: frame(format!(
                "error: server busy ({} connections, its --max-connections limit); try again later",
                config.max_connections
            )),
            per_ip: frame(format!(
                "error: too many connections from your address ({}, the server's --max-connections-per-ip limit); close one and try again",
                config.max_connections_per_ip.unwrap_or(0)
            )),
            shutting_down: frame("error: server shutting down; try again later".to_owned()),
        }
    }

    fn message(&self, why: Refusal) -> &[u8] {
        match why {
            Refusal::Busy => &self.busy,
            Refusal::PerIp => &self.per_ip,
            Refusal::ShuttingDown => &self.shutting_down,
        }
    }
}

/// What every accept loop of one server shares: the settings, the slots,
/// the refusal lines, and the refusals counted for the log.
struct Shared {
    config: Arc<Config>,
    registry: Arc<Registry>,
    refusals: Arc<Refusals>,
    lingering: Arc<Semaphore>,
    refused_busy: AtomicU64,
    refused_per_ip: AtomicU64,
}

impl Shared {
    fn new(config: Config) -> Arc<Shared> {
        let registry = Registry::new(config.max_connections, config.max_connections_per_ip);
        Arc::new(Shared {
            refusals: Arc::new(Refusals::new(&config)),
            config: Arc::new(config),
            registry,
            lingering: Arc::new(Semaphore::new(MAX_REFUSALS_LINGERING)),
            refused_busy: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
        })
    }

    fn count(&self, why: Refusal) {
        let counter = match why {
            Refusal::Busy | Refusal::ShuttingDown => &self.refused_busy,
            Refusal::PerIp => &self.refused_per_ip,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops taking connections everywhere: logs the last summary and
    /// starts the drain. Returns the drain deadline.
    fn begin_shutdown(&self, report: &mut Report) -> Instant {
        report.log(self);
        self.registry
            .start_drain(Instant::now() + self.config.drain_timeout);
        info!(
            open = self.registry.connections(),
            drain_timeout_s = self.config.drain_timeout.as_secs_f64(),
            "shutting down: not accepting; connections take no new request, deliver the answers they owe, and close"
        );
        self.drain_deadline()
    }

    fn drain_deadline(&self) -> Instant {
        self.registry
            .drain_deadline()
            .unwrap_or_else(|| Instant::now() + self.config.drain_timeout)
    }

    /// The last log lines, once every connection has ended.
    fn log_stopped(&self) {
        let (unsent, unacked) = self.registry.dropped();
        if unsent > 0 || unacked > 0 {
            warn!(
                answers_not_sent = unsent,
                unacked_bytes = unacked,
                "drain timeout reached before some clients read their answers: {unsent} answers already made were never sent, \
                 and {unacked} bytes of answers sent were not yet acknowledged (they are lost if the client sends more); \
                 a longer --drain-timeout lets slow readers finish"
            );
        }
        info!("server stopped");
    }
}

/// The once-a-second summary in the log, kept by one accept loop.
#[derive(Debug, Default)]
struct Report {
    reclaims_seen: u64,
    overflows: Option<u64>,
}

impl Report {
    fn new() -> Self {
        Report {
            overflows: os::listen_overflows(),
            ..Report::default()
        }
    }

    /// Logs what happened since the last call.
    fn log(&mut self, shared: &Shared) {
        let busy = shared.refused_busy.swap(0, Ordering::Relaxed);
        let per_ip = shared.refused_per_ip.swap(0, Ordering::Relaxed);
        if busy + per_ip > 0 {
            warn!(
                at_limit = busy,
                over_per_ip_limit = per_ip,
                max_connections = shared.config.max_connections,
                "refused {} connections in the last {} s (each was told why)",
                busy + per_ip,
                REPORT_EVERY.as_secs()
            );
        }
        let reclaims = shared.registry.reclaims();
        if reclaims > self.reclaims_seen {
            info!(
                reclaimed = reclaims - self.reclaims_seen,
                "every slot was taken: closed the connections waiting longest without a request to serve new clients"
            );
            self.reclaims_seen = reclaims;
        }
        let now = os::listen_overflows();
        if let (Some(before), Some(now)) = (self.overflows, now)
            && now > before
        {
            warn!(
                dropped = now - before,
                "the kernel's listen queue overflowed: {} connection attempts were dropped before the server could accept them \
                 (system-wide count; the clients retry after a second or more). Raise net.core.somaxconn and net.ipv4.tcp_max_syn_backlog",
                now - before
            );
        }
        self.overflows = now.or(self.overflows);
    }
}

/// Tells a refused connection why, at once and without waiting on it: the
/// line goes into the empty socket buffer, then FIN; what the client
/// already sent is read and dropped so the close sends no reset. Returns
/// the stream for an optional wait for the client's close.
fn refuse(stream: TcpStream, peer: SocketAddr, message: &[u8]) -> TcpStream {
    if let Err(e) = stream.try_write(message) {
        debug!(%peer, error = %e, "could not send the refusal");
    }
    shutdown_write(&stream);
    discard_ready(&stream);
    stream
}

/// `shutdown(SHUT_WR)`: sends FIN after what is queued; never blocks.
fn shutdown_write(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor.
    unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_WR) };
}

/// Reads and drops whatever has already arrived, without waiting.
fn discard_ready(stream: &TcpStream) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.try_read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// Waits (at most [`handler::LINGER`]) for a refused client to close,
/// discarding what it sends.
async fn linger(stream: TcpStream) {
    let _ = tokio::time::timeout(handler::LINGER, async {
        let mut sink = [0u8; 1024];
        loop {
            if stream.readable().await.is_err() {
                break;
            }
            match stream.try_read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    })
    .await;
}

/// Serves connections from `listener` until `shutdown` completes, then
/// drains open connections (bounded by [`Config::drain_timeout`]) and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future,
) -> Result<(), ServerError> {
    config.validate()?;
    let local = listener.local_addr().map_err(ServerError::LocalAddr)?;
    log_listening(local, &config, None);
    let shared = Shared::new(config);
    let mut report = Report::new();
    let tasks = accept_loop(listener, &shared, shutdown, Some(&mut report)).await;
    let deadline = shared.begin_shutdown(&mut report);
    drain(tasks, deadline).await;
    shared.log_stopped();
    Ok(())
}

/// The start-up log line; `threads` is the number of single-threaded
/// runtimes (none for one multi-threaded runtime).
fn log_listening(local: SocketAddr, config: &Config, threads: Option<usize>) {
    info!(
        addr = %local,
        framing = %config.framing,
        service = config.service.name(),
        max_connections = config.max_connections,
        max_connections_per_ip = config.max_connections_per_ip,
        max_request = config.max_request,
        first_byte_timeout_s = config.first_byte_timeout.as_secs_f64(),
        request_timeout_s = config.request_timeout.as_secs_f64(),
        idle_timeout_s = config.idle_timeout.as_secs_f64(),
        threads,
        "listening"
    );
}

/// Accepts from `listener` until `shutdown` completes (the listener is
/// closed on return) and returns the tasks of the connections still open.
/// The loop given `report` also writes the once-a-second summary.
async fn accept_loop(
    listener: TcpListener,
    shared: &Arc<Shared>,
    shutdown: impl Future,
    mut report: Option<&mut Report>,
) -> JoinSet<()> {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return tasks,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(done),
            _ = tick.tick(), if report.is_some() => {
                if let Some(report) = report.as_deref_mut() {
                    report.log(shared);
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => admit(stream, peer, shared, &mut tasks),
                Err(e) => {
                    warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}

/// Serves, queues or refuses one accepted connection.
fn admit(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    // Responses are batched by the connection; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    match shared.registry.admit(peer.ip()) {
        Admission::Now(ticket) => {
            let config = shared.config.clone();
            tasks.spawn(async move {
                handler::serve(stream, peer, &config, ticket).await;
            });
        }
        Admission::AfterReclaim(pending) => {
            let shared = shared.clone();
            tasks.spawn(async move {
                match pending.wait().await {
                    Some(ticket) => {
                        handler::serve(stream, peer, &shared.config, ticket).await;
                    }
                    None => {
                        debug!(%peer, "connection refused: no slot came free");
                        let why = if shared.registry.draining() {
                            Refusal::ShuttingDown
                        } else {
                            Refusal::Busy
                        };
                        linger(refuse(stream, peer, shared.refusals.message(why))).await;
                    }
                }
            });
        }
        Admission::Refused(why) => {
            shared.count(why);
            debug!(%peer, ?why, "connection refused");
            let stream = refuse(stream, peer, shared.refusals.message(why));
            if let Ok(permit) = shared.lingering.clone().try_acquire_owned() {
                tasks.spawn(async move {
                    linger(stream).await;
                    drop(permit);
                });
            }
        }
    }
}

/// Waits for the connection tasks of one accept loop, which deliver what
/// they owe and close by `deadline`; cuts those still running a grace
/// period later.
async fn drain(mut tasks: JoinSet<()>, deadline: Instant) {
    let drained = tokio::time::timeout_at(deadline + DRAIN_GRACE, async {
        while let Some(done) = tasks.join_next().await {
            log_task_end(done);
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            cut = tasks.len(),
            "drain timeout reached: closing the remaining connections"
        );
        tasks.shutdown().await;
    }
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        error!(error = %e, "a connection task panicked; the server goes on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn embedded_server_serves_then_stops_on_its_shutdown_future() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(run(listener, Config::default(), stopped));

        let mut client = BufReader::new(TcpStream::connect(addr).await.unwrap());
        client.get_mut().write_all(b"embedded\n").await.unwrap();
        let mut line = String::new();
        client.read_line(&mut line).await.unwrap();
        assert_eq!(line, "Echo: embedded\n");

        stop.send(()).unwrap();
        // The open connection is told to close; then run returns.
        line.clear();
        assert_eq!(client.read_line(&mut line).await.unwrap(), 0);
        drop(client);
        server.await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn invalid_config_is_refused_before_serving() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let config = Config {
            max_request: 0,
            ..Config::default()
        };
        let err = run(listener, config, std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--max-request"), "{err}");
    }

    #[tokio::test]
    async fn binding_a_taken_port_says_what_to_do() {
        let taken = bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let err = bind(&addr).await.unwrap_err();
        assert!(matches!(err, ServerError::AddrInUse { .. }));
        assert!(err.to_string().contains("--listen 127.0.0.1:0"), "{err}");
    }
}
