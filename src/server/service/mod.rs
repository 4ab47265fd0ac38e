//! Services: what the server answers to a request.
//!
//! A service is a [`Service`] implementation in its own file; it sees one
//! request payload at a time (the framing is already removed) and appends its
//! response to a buffer the connection reuses. One instance is shared by every
//! connection, so shared state (like the ticket stock) lives inside it.
//!
//! To add a service: write `foo.rs` with a type implementing [`Service`], and
//! add a [`ServiceKind`] variant that builds it.

use std::sync::Arc;

mod echo;
mod tickets;

pub use echo::{DEFAULT_PREFIX, Echo};
pub use tickets::{DEFAULT_STOCK, Tickets};

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
}

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
    /// Initial ticket stock.
    pub tickets: u64,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            tickets: DEFAULT_STOCK,
        }
    }
}

impl ServiceKind {
    /// Builds the service.
    pub fn build(self, options: &ServiceOptions) -> Arc<dyn Service> {
        match self {
            ServiceKind::Echo => Arc::new(Echo::new(options.prefix.as_bytes())),
            ServiceKind::Tickets => Arc::new(Tickets::new(options.tickets)),
        }
    }
}
