//! Server settings: framing, service and the limits that keep every
//! connection bounded.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::Framing;
use crate::protocol::connection::DEFAULT_RAW_READ_SIZE;

use super::service::{Echo, Service};

/// Connections served at once unless `--max-connections` says otherwise.
/// Below the common default of 1024 open files per process.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Largest request payload unless `--max-request` says otherwise (64 KiB).
pub const DEFAULT_MAX_REQUEST: usize = 64 * 1024;
/// Silence after which a connection is closed (`--idle-timeout`).
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Time open connections get to finish after a shutdown signal (`--drain-timeout`).
pub(crate) const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Time one request may take to arrive whole, from its first byte
/// (`--request-timeout`), like nginx's `client_header_timeout`: a client
/// that trickles a request byte by byte cannot hold a connection longer.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a new connection may stay silent before its first byte
/// (`--first-byte-timeout`): far shorter than the idle timeout, so
/// connections opened and never used do not hold slots.
pub(crate) const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything [`super::run`] needs besides the listener.
#[derive(Clone)]
pub struct Config {
    /// How requests and responses are delimited.
    pub framing: Framing,
    /// What answers the requests; one instance shared by all connections.
    pub service: Arc<dyn Service>,
    /// Connections served at once; more are refused with an error message.
    pub max_connections: usize,
    /// Largest request payload in bytes; a larger one gets an error and its
    /// connection is closed.
    pub max_request: usize,
    /// A connection that sends nothing (or reads nothing) for this long is closed.
    pub idle_timeout: Duration,
    /// A request must arrive whole within this time from its first byte,
    /// however slowly its bytes trickle in.
    pub request_timeout: Duration,
    /// A new connection that sends nothing for this long is closed.
    pub first_byte_timeout: Duration,
    /// Connections served at once from one IP address; `None` for no cap.
    pub max_connections_per_ip: Option<usize>,
    /// After a shutdown signal, how long open connections may take to finish
    /// before they are cut.
    pub drain_timeout: Duration,
    /// Bytes asked for per read with raw framing (one read is one request).
    pub raw_read_size: usize,
    /// Time the server waits before sending each answer (`--delay`), so a
    /// slow server can be told from a slow network in a capture; zero by default.
    pub delay: Duration,
}

impl Default for Config {
    /// The echo service with line framing and the default limits.
    fn default() -> Self {
        Config {
            framing: Framing::Line,
            service: Arc::new(Echo::default()),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_request: DEFAULT_MAX_REQUEST,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            max_connections_per_ip: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            raw_read_size: DEFAULT_RAW_READ_SIZE,
            delay: Duration::ZERO,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("framing", &self.framing)
            .field("service", &self.service.name())
            .field("max_connections", &self.max_connections)
            .field("max_request", &self.max_request)
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("drain_timeout", &self.drain_timeout)
            .field("raw_read_size", &self.raw_read_size)
            .field("delay", &self.delay)
            .finish()
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A count or size that must be at least 1 is 0.
    #[error("{setting} must be at least 1 (got 0)")]
    Zero {
        /// The flag concerned, e.g. `--max-connections`.
        setting: &'static str,
    },
    /// A timeout that must be positive is zero.
    #[error("{setting} must be longer than 0 seconds")]
    ZeroTimeout {
        /// The flag concerned, e.g. `--idle-timeout`.
        setting: &'static str,
    },
}

impl Config {
    /// Checks that every limit can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, value) in [
            ("--max-connections", self.max_connections),
            ("--max-request", self.max_request),
            ("--raw-read-size", self.raw_read_size),
            (
                "--max-connections-per-ip",
                self.max_connections_per_ip.unwrap_or(1),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { setting });
            }
        }
        for (setting, value) in [
            ("--idle-timeout", self.idle_timeout),
            ("--request-timeout", self.request_timeout),
            ("--first-byte-timeout", self.first_byte_timeout),
            ("--drain-timeout", self.drain_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroTimeout { setting });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn zero_limits_are_refused_naming_the_flag() {
        let config = Config {
            max_connections: 0,
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("--max-connections"), "{err}");
        let config = Config {
            idle_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--idle-timeout")
        );
        let config = Config {
            max_connections_per_ip: Some(0),
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string().contains("--max-connections-per-ip"),
            "{err}"
        );
    }
}
