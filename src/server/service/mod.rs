//! Services: what the server answers to a request.
//!
//! A service is a [`Service`] implementation in its own file; it sees one
//! request payload at a time (the framing is already removed) and appends its
//! response to a buffer the connection reuses. One instance is shared by every
//! connection, so shared state (like the ticket stock) lives inside it.
//!
//! To add a service: write `foo.rs` with a type implementing [`Service`], and
//! add a [`ServiceKind`] variant that builds it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod echo;
mod group_commit;
pub(crate) mod ledger;
mod tickets;

pub use echo::{DEFAULT_PREFIX, Echo};
pub(crate) use ledger::LedgerError;
pub use tickets::{BookingError, DEFAULT_DB, DEFAULT_STOCK, MEMORY_DB, Tickets, TicketsDb};

/// Turns requests into responses; shared by all connections.
pub trait Service: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Appends the response to `request` to `response`.
    ///
    /// `response` may already hold earlier responses of the same batch:
    /// append only, never clear. With line framing the response must not
    /// contain `\n` (the connection refuses to send it).
    fn respond(&self, request: &[u8], response: &mut Vec<u8>);

    /// True when [`Service::respond`] may wait (for example for a disk
    /// write). `reqresp server` then serves on tokio's multi-threaded
    /// runtime, which hands the waiting thread's other connections to another
    /// thread; otherwise on one single-threaded runtime per CPU, which costs
    /// less per request.
    fn blocks(&self) -> bool {
        false
    }

    /// Whether [`Service::defer`] may return an answer to wait for. A
    /// connection of a service that never defers answers its buffered
    /// requests with [`Service::respond`] alone.
    fn defers(&self) -> bool {
        false
    }

    /// Starts answering `request` when its answer must wait for something
    /// (a booking waits until it is on disk): the connection goes on with
    /// the requests its client pipelined after it, and sends every answer
    /// in order once it has come. `None` (the default): answer with
    /// [`Service::respond`] at once.
    fn defer(&self, request: &[u8]) -> Option<Deferred> {
        let _ = request;
        None
    }
}

/// An answer that comes later (see [`Service::defer`]): the response payload.
pub type Deferred = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

/// The services `reqresp server --service` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ServiceKind {
    /// Answers `<prefix><request>` (`Echo: hello`), as the original lab does.
    #[default]
    Echo,
    /// Books tickets from one stock shared by all clients (`book ticket`).
    Tickets,
}

/// Settings the services read; each uses the ones that concern it.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Prefix of every echo response.
    pub prefix: String,
    /// Ticket stock (`--tickets`): of a new ledger, or checked against an
    /// existing one; `None` takes the ledger's, or [`DEFAULT_STOCK`].
    pub tickets: Option<u64>,
    /// Where the ticket stock is kept (`--tickets-db`).
    pub tickets_db: TicketsDb,
    /// Delete the ledger's bookings and start a fresh stock (`--reset-tickets`).
    pub reset_tickets: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            tickets: None,
            tickets_db: TicketsDb::default(),
            reset_tickets: false,
        }
    }
}

impl ServiceKind {
    /// Builds the service; the tickets service opens its ledger here, so a
    /// ledger that cannot be used stops the server before it listens.
    pub fn build(self, options: &ServiceOptions) -> Result<Arc<dyn Service>, LedgerError> {
        Ok(match self {
            ServiceKind::Echo => Arc::new(Echo::new(options.prefix.as_bytes())),
            ServiceKind::Tickets => Arc::new(Tickets::open(
                &options.tickets_db,
                options.tickets,
                options.reset_tickets,
            )?),
        })
    }
}
