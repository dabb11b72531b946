//! [`ServerStats`]: counters over every connection a server is serving.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use crate::ConnectionStats;
use crate::connection::Shared;

/// A handle on a server's counters, taken from [`ServerBuilder::stats`](crate::ServerBuilder::stats)
/// before serving; clones share them.
///
/// ```
/// let builder = micro_core::Server::builder();
/// let stats = builder.stats();
/// assert_eq!(stats.snapshot().connections, 0);
/// ```
#[derive(Clone, Default)]
pub struct ServerStats {
    connections: Arc<Mutex<Vec<Weak<Shared>>>>,
}

/// The counters of a server at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerSnapshot {
    /// Connections past their handshake and not yet closed.
    pub connections: usize,
    /// The sum of every connection's counters.
    pub totals: ConnectionStats,
}

impl ServerStats {
    /// Counts a connection in, for as long as it lives.
    pub(crate) fn register(&self, conn: &Arc<Shared>) {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.retain(|c| c.strong_count() > 0);
        connections.push(Arc::downgrade(conn));
    }

    /// The counters now.
    pub fn snapshot(&self) -> ServerSnapshot {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.retain(|c| c.strong_count() > 0);
        let mut snapshot = ServerSnapshot::default();
        for conn in connections.iter().filter_map(Weak::upgrade) {
            if conn.closed_status().is_some() && conn.is_idle() {
                continue;
            }
            let stats = conn.stats();
            snapshot.connections += 1;
            snapshot.totals.open_streams += stats.open_streams;
            snapshot.totals.running_handlers += stats.running_handlers;
            snapshot.totals.buffered_bytes += stats.buffered_bytes;
        }
        snapshot
    }
}

impl fmt::Debug for ServerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerStats")
            .field(&self.snapshot())
            .finish()
    }
}
