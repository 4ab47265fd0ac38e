//! The server: accept loop, connection limit and graceful shutdown.
//!
//! [`run`] takes a bound listener, a [`Config`] and a shutdown future, so the
//! binary, the tests and `reqresp lab` all embed the same server:
//!
//! - every accepted connection runs in its own task, holding one permit of a
//!   semaphore sized by [`Config::max_connections`]; when none is left, the
//!   new connection gets an error message and is closed, and the server takes
//!   connections again as soon as one ends;
//! - when `shutdown` completes, the listener is closed, a broadcast tells
//!   every connection to stop after answering what it has already read, and
//!   `run` waits for them for at most [`Config::drain_timeout`].

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

pub mod config;
mod handler;
pub mod service;

pub use config::{Config, ConfigError};
pub use service::{Service, ServiceKind, ServiceOptions};

/// Refused connections being told "busy" at the same time; beyond this they
/// are closed without a message, so refusing never costs unbounded resources.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// Pause after a failed `accept` (for example out of file descriptors),
/// so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
}

/// Binds a listener on `addr` (`HOST:PORT`; port 0 picks a free port), with
/// errors that say what to do.
pub async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| {
        let addr = addr.to_owned();
        match source.kind() {
            io::ErrorKind::AddrInUse => ServerError::AddrInUse { addr },
            io::ErrorKind::PermissionDenied => ServerError::PermissionDenied { addr },
            io::ErrorKind::AddrNotAvailable => ServerError::AddrNotAvailable { addr },
            _ => ServerError::Bind { addr, source },
        }
    })
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
    info!(
        addr = %local,
        framing = %config.framing,
        service = config.service.name(),
        max_connections = config.max_connections,
        max_request = config.max_request,
        idle_timeout_s = config.idle_timeout.as_secs_f64(),
        "listening"
    );
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let (stop, _) = broadcast::channel::<()>(1);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(done),
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        warn!(error = %e, "accept failed; retrying");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                // Responses are batched by the connection; Nagle would only delay them.
                let _ = stream.set_nodelay(true);
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let config = config.clone();
                        let mut stop = stop.subscribe();
                        tasks.spawn(async move {
                            handler::serve(stream, peer, &config, &mut stop).await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        warn!(%peer, max_connections = config.max_connections,
                            "connection refused: at the connection limit");
                        if let Ok(permit) = refusals.clone().try_acquire_owned() {
                            let (framing, limit) = (config.framing, config.max_connections);
                            tasks.spawn(async move {
                                handler::refuse_busy(stream, peer, framing, limit).await;
                                drop(permit);
                            });
                        }
                    }
                }
            }
        }
    }

    drop(listener);
    info!(
        open = tasks.len(),
        drain_timeout_s = config.drain_timeout.as_secs_f64(),
        "shutting down: not accepting; letting open connections finish"
    );
    let _ = stop.send(());
    let drained = tokio::time::timeout(config.drain_timeout, async {
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
    info!("server stopped");
    Ok(())
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
