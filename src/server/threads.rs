//! Serving on one single-threaded tokio runtime per CPU, each accepting on
//! its own `SO_REUSEPORT` listener of the same address.
//!
//! On tokio's multi-threaded runtime every wake-up goes through the
//! work-stealing scheduler: its queues, its wake-ups of idle workers and its
//! busy-time statistics (a clock read and a `pow` per scheduling round).
//! A connection that stays on one single-threaded runtime is woken, read,
//! answered and written on one thread with none of that; the kernel spreads
//! new connections over the listeners by their address hash, and each
//! connection stays on the runtime that accepted it.
//!
//! Everything a server decides is still decided once for all runtimes: one
//! registry of slots (the connection cap, the per-address cap, the reclaim,
//! the drain) and one service (the ticket stock). The first runtime runs on
//! the calling thread; it also keeps the once-a-second summary in the log
//! and tells the others when to stop.
//!
//! A service whose answer may wait ([`crate::server::Service::blocks`], the
//! tickets ledger waiting for its commit) would stall every connection of
//! its runtime: `reqresp server` serves it with [`crate::server::run`] on
//! tokio's multi-threaded runtime instead.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::{EnterGuard, Runtime};
use tokio::sync::{mpsc, watch};
use tracing::error;

use super::{Config, Report, ServerError, Shared, accept_loop, bind_error, drain, listen};

/// How long a runtime waits, once its connections have ended, for tasks
/// that do not stop by themselves (the signal handlers, idle timers).
const RUNTIME_EXIT: Duration = Duration::from_millis(100);

/// Attempts at claiming a free port for every listener when port 0 is asked
/// for (another program may take the port in between).
const PORT_TRIES: usize = 8;

/// The CPUs this process may run on (its affinity mask, its cgroup quota).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Single-threaded runtimes, one per thread of the server.
pub struct PerCore {
    runtimes: Vec<Runtime>,
}

/// The listeners of a [`PerCore`] server, one per runtime, all on one address.
pub struct Listeners {
    listeners: Vec<TcpListener>,
    local: SocketAddr,
}

impl Listeners {
    /// The address the listeners are bound to (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl PerCore {
    /// Builds `threads` single-threaded runtimes (at least one).
    pub fn new(threads: usize) -> io::Result<PerCore> {
        let runtimes = (0..threads.max(1))
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            })
            .collect::<io::Result<_>>()?;
        Ok(PerCore { runtimes })
    }

    /// Enters the calling thread's runtime, for what must be made inside
    /// one (signal handlers, the shutdown future).
    pub fn enter(&self) -> EnterGuard<'_> {
        self.runtimes[0].enter()
    }

    /// Binds one listener per runtime on `addr` (`HOST:PORT`, port 0 picks
    /// a free port). The address must be free: a port held by another
    /// socket, even one with `SO_REUSEPORT`, is refused as "in use" rather
    /// than shared.
    pub fn bind(&self, addr: &str) -> Result<Listeners, ServerError> {
        let candidates = self.runtimes[0]
            .block_on(tokio::net::lookup_host(addr))
            .map_err(|e| bind_error(addr, e))?;
        super::bind_first(addr, candidates, |candidate| self.bind_group(candidate))
    }

    fn bind_group(&self, addr: SocketAddr) -> io::Result<Listeners> {
        if self.runtimes.len() == 1 {
            let _runtime = self.enter();
            let listener = listen(addr, false)?;
            let local = listener.local_addr()?;
            return Ok(Listeners {
                listeners: vec![listener],
                local,
            });
        }
        let mut tries = 0;
        loop {
            // A socket without SO_REUSEPORT cannot bind where any socket
            // listens: this claims the address for this server alone, and
            // resolves port 0 for the others.
            let local = {
                let probe = super::socket_for(addr)?;
                probe.set_reuseaddr(true)?;
                probe.bind(addr)?;
                probe.local_addr()?
            };
            let listeners = self
                .runtimes
                .iter()
                .map(|runtime| {
                    let _runtime = runtime.enter();
                    listen(local, true)
                })
                .collect::<io::Result<Vec<_>>>();
            match listeners {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && addr.port() == 0 => {
                    tries += 1;
                    if tries == PORT_TRIES {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
                Ok(listeners) => return Ok(Listeners { listeners, local }),
            }
        }
    }

    /// Serves on every runtime until `shutdown` completes, then drains every
    /// connection (bounded by [`Config::drain_timeout`]) and returns. The
    /// calling thread runs the first runtime; the others get a thread each.
    pub fn run(
        self,
        listeners: Listeners,
        config: Config,
        shutdown: impl Future,
    ) -> Result<(), ServerError> {
        config.validate()?;
        super::log_listening(listeners.local, &config, Some(self.runtimes.len()));
        let shared = Shared::new(config);
        let (stop, stopped) = watch::channel(false);
        // Each runtime holds a sender until its listener is closed.
        let (listening, mut all_closed) = mpsc::channel::<()>(1);
        let mut runtimes = self.runtimes.into_iter();
        let mut listeners = listeners.listeners.into_iter();
        let (Some(main), Some(first)) = (runtimes.next(), listeners.next()) else {
            return Ok(());
        };
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        for (n, (runtime, listener)) in runtimes.zip(listeners).enumerate() {
            let shared = shared.clone();
            let mut stopped = stopped.clone();
            let listening = listening.clone();
            let worker = std::thread::Builder::new()
                .name(format!("reqresp-server-{}", n + 1))
                .spawn(move || {
                    runtime.block_on(async {
                        let tasks =
                            accept_loop(listener, &shared, stopped.wait_for(|s| *s), None).await;
                        drop(listening);
                        drain(tasks, shared.drain_deadline()).await;
                    });
                    runtime.shutdown_timeout(RUNTIME_EXIT);
                });
            match worker {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    // Stop the threads already serving before reporting.
                    let _ = stop.send(true);
                    workers.into_iter().for_each(|w| drop(w.join()));
                    return Err(ServerError::Thread(e));
                }
            }
        }
        let mut report = Report::new();
        main.block_on(async {
            let tasks = accept_loop(first, &shared, shutdown, Some(&mut report)).await;
            let _ = stop.send(true);
            // The log says "not accepting": true once every listener is closed.
            drop(listening);
            while all_closed.recv().await.is_some() {}
            let deadline = shared.begin_shutdown(&mut report);
            drain(tasks, deadline).await;
        });
        for worker in workers {
            if worker.join().is_err() {
                error!("a server thread panicked; its connections were cut");
            }
        }
        main.shutdown_timeout(RUNTIME_EXIT);
        shared.log_stopped();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use tokio::sync::oneshot;

    #[test]
    fn every_listener_shares_one_port_and_a_port_in_use_is_refused() {
        let server = PerCore::new(2).unwrap();
        let listeners = server.bind("127.0.0.1:0").unwrap();
        assert_eq!(listeners.listeners.len(), 2);
        for listener in &listeners.listeners {
            assert_eq!(listener.local_addr().unwrap(), listeners.local_addr());
        }
        // Another server, which would set SO_REUSEPORT too, must not join.
        let addr = listeners.local_addr().to_string();
        let other = PerCore::new(2).unwrap();
        let err = other.bind(&addr).err().expect("the port is in use");
        assert!(matches!(err, ServerError::AddrInUse { .. }), "{err}");
    }

    #[test]
    fn serves_on_every_runtime_and_stops_on_its_shutdown_future() {
        let server = PerCore::new(2).unwrap();
        let listeners = server.bind("127.0.0.1:0").unwrap();
        let addr = listeners.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let running = std::thread::spawn(move || server.run(listeners, Config::default(), stopped));
        // Sixteen connections from as many ports: the kernel spreads them
        // over both listeners; every one is answered.
        let mut clients: Vec<_> = (0..16)
            .map(|_| {
                let stream = std::net::TcpStream::connect(addr).unwrap();
                // A runtime that missed the stop fails the test, not hangs it.
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                BufReader::new(stream)
            })
            .collect();
        for (i, client) in clients.iter_mut().enumerate() {
            client
                .get_mut()
                .write_all(format!("{i}\n").as_bytes())
                .unwrap();
            let mut line = String::new();
            client.read_line(&mut line).unwrap();
            assert_eq!(line, format!("Echo: {i}\n"));
        }
        stop.send(()).unwrap();
        // Every connection, on either runtime, is closed by the drain.
        for client in &mut clients {
            let mut line = String::new();
            assert_eq!(client.read_line(&mut line).unwrap(), 0);
        }
        running.join().unwrap().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
