//! What the analyzer hands out as a capture goes: a connection opened, an
//! exchange settled, a connection over. See [`super::pipeline`] for when
//! each comes and in what order.

use std::net::SocketAddr;

use super::model::{Connection, Exchange, Timestamp};

/// One step of an analysis as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// A connection's first packet was seen (only with exchange events on).
    Opened {
        /// The connection's id, as in [`Connection::id`].
        id: u32,
        /// Client address (the end that sent the SYN, or was judged to).
        client: SocketAddr,
        /// Server address.
        server: SocketAddr,
        /// Time of the first packet.
        time: Timestamp,
    },
    /// An exchange is settled while its connection is still open: its
    /// response is complete (or it is a server message without request) and
    /// nothing later changes it (only with exchange events on).
    Exchange {
        /// Id of its connection.
        connection: u32,
        /// Its index in the connection's [`Connection::exchanges`].
        index: usize,
        /// The exchange, as it will be in the connection.
        exchange: Exchange,
    },
    /// A connection is over (or the capture ended): the whole record, every
    /// exchange included, also those already handed out one by one.
    Closed(Connection),
}
