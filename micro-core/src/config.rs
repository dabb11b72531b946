//! Limits and windows shared by client and server connections.

use std::time::Duration;

/// The settings of one side of a connection. Defaults are documented on each builder method
/// ([`ServerBuilder`](crate::ServerBuilder), [`ClientBuilder`](crate::ClientBuilder)) and in
/// `docs/PROTOCOL.md`.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Largest frame payload this side accepts.
    pub(crate) max_frame_size: u32,
    /// Largest message this side accepts.
    pub(crate) max_message_size: u32,
    /// Largest metadata block of an OPEN frame this side accepts.
    pub(crate) max_metadata_size: u32,
    /// Calls the server runs at once on one connection.
    pub(crate) max_concurrent_streams: u32,
    /// Running calls a client may cancel beyond those it lets finish, and per second
    /// (`None`: twice `max_concurrent_streams`).
    pub(crate) cancel_budget: Option<u32>,
    /// Bytes a peer may send on one stream before this side grants more.
    pub(crate) stream_window: u32,
    /// Bytes a peer may send on all streams together before this side grants more.
    pub(crate) connection_window: u32,
    /// How long the server waits for a new connection's handshake.
    pub(crate) handshake_timeout: Duration,
    /// After this long without a frame from the peer, send a PING (`None`: never).
    pub(crate) keepalive_interval: Option<Duration>,
    /// How long a keepalive PING may go unanswered before the connection counts as lost.
    pub(crate) keepalive_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_size: 2 << 20,
            max_message_size: 4 << 20,
            max_metadata_size: 16 << 10,
            max_concurrent_streams: 1024,
            cancel_budget: None,
            stream_window: 2 << 20,
            connection_window: 16 << 20,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Some(Duration::from_secs(60)),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

impl Config {
    /// The cancel budget in effect: set, or twice the concurrency limit, so that a client may
    /// cancel every call it can have running, twice over, before it has to finish any.
    pub(crate) fn cancel_budget(&self) -> u32 {
        self.cancel_budget
            .unwrap_or_else(|| self.max_concurrent_streams.saturating_mul(2))
            .max(1)
    }

    /// Checks settings that would make a connection unusable.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_frame_size < 1024 {
            return Err(format!(
                "max_frame_size {} is below 1024",
                self.max_frame_size
            ));
        }
        if self.stream_window < 1024 || self.connection_window < self.stream_window {
            return Err(format!(
                "windows must be at least 1024 bytes and the connection window ({}) at least the stream window ({})",
                self.connection_window, self.stream_window
            ));
        }
        if self
            .keepalive_interval
            .is_some_and(|i| i < Duration::from_millis(10))
            || self.keepalive_timeout < Duration::from_millis(10)
        {
            return Err("keepalive interval and timeout must be at least 10 ms".into());
        }
        if self.stream_window > i32::MAX as u32 || self.connection_window > i32::MAX as u32 {
            return Err("windows must be below 2 GiB".into());
        }
        Ok(())
    }
}
