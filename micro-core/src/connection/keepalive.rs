//! Keepalive: a connection that goes quiet is asked for a sign of life, and closed if none
//! comes. A peer that vanishes without closing (power loss, a cut network) would otherwise hold
//! its calls, and their handlers, for ever.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use crate::Status;
use crate::frame::Frame;

/// Watches `conn` until it closes: after `interval` without a byte from the peer, sends a PING;
/// if not one byte arrives within `timeout` after it, closes the connection, failing its calls
/// with `Unavailable`.
pub(crate) async fn keepalive(conn: Arc<Shared>, interval: Duration, timeout: Duration) {
    let received = || conn.bytes_received.load(Ordering::Acquire);
    let mut seen = received();
    let mut pings = 0u64;
    loop {
        tokio::select! {
            _ = conn.closed.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if received() != seen {
            seen = received();
            continue;
        }
        pings += 1;
        conn.push(Frame::Ping {
            ack: false,
            payload: pings,
        });
        tokio::select! {
            _ = conn.closed.cancelled() => return,
            _ = tokio::time::sleep(timeout) => {}
        }
        if received() == seen {
            tracing::info!(peer = ?conn.peer_addr, "closing connection: no answer to a keepalive ping");
            conn.close(&Status::unavailable(format!(
                "connection lost: the peer did not answer a keepalive ping within {timeout:?}"
            )));
            return;
        }
        seen = received();
    }
}
