//! Transports besides TCP. Any `AsyncRead + AsyncWrite` works with
//! [`ServerBuilder::serve_connection`](crate::ServerBuilder::serve_connection) and
//! [`ClientBuilder::connect_io`](crate::ClientBuilder::connect_io); this module adds an
//! in-memory listener/connector pair so servers and reconnecting clients can run without sockets.

mod memory;
mod split;

pub use memory::{MemoryConnector, MemoryListener, memory};
pub(crate) use split::split;
