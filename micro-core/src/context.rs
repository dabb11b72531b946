//! [`Context`]: what a handler may know about the call it serves.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::Metadata;

/// The call a handler is serving: its method, metadata, deadline and peer.
///
/// Declare `ctx: &micro::Context` as a method's first parameter after `&self` to receive it; the
/// client never sends it as an argument.
#[derive(Clone, Debug)]
pub struct Context {
    method: &'static str,
    metadata: Metadata,
    deadline: Option<Instant>,
    peer_addr: Option<SocketAddr>,
}

impl Context {
    pub(crate) fn new(
        method: &'static str,
        metadata: Metadata,
        deadline: Option<Instant>,
        peer_addr: Option<SocketAddr>,
    ) -> Context {
        Context {
            method,
            metadata,
            deadline,
            peer_addr,
        }
    }

    /// `"Service.method"`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The metadata the client sent with the call.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// When the call's deadline passes, if the client set a timeout. The server stops the
    /// handler at that instant.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (zero once it passed), if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The client's address, when the transport has one (TCP).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }
}
