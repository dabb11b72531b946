//! An in-memory transport: connections are `tokio::io::DuplexStream` pairs handed from a
//! connector to a listener.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// Bytes buffered in each direction of an in-memory connection.
const BUFFER: usize = 256 * 1024;

/// A listener and a connector joined in memory: every [`MemoryConnector::connect`] yields a new
/// connection from the [`MemoryListener`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use futures::StreamExt;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let (mut listener, connector) = micro_core::transport::memory();
/// let mut client_side = connector.connect()?;
/// let mut server_side = listener.next().await.unwrap()?;
/// client_side.write_all(b"hi").await?;
/// let mut buf = [0; 2];
/// server_side.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"hi");
/// # Ok(())
/// # }
/// ```
pub fn memory() -> (MemoryListener, MemoryConnector) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MemoryListener { rx }, MemoryConnector { tx })
}

/// The server side of [`memory`]: a stream of incoming connections, for
/// [`ServerBuilder::serve_incoming`](crate::ServerBuilder::serve_incoming).
#[derive(Debug)]
pub struct MemoryListener {
    rx: mpsc::UnboundedReceiver<DuplexStream>,
}

impl Stream for MemoryListener {
    type Item = io::Result<DuplexStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|io| io.map(Ok))
    }
}

/// The client side of [`memory`]; clones connect to the same listener.
#[derive(Clone, Debug)]
pub struct MemoryConnector {
    tx: mpsc::UnboundedSender<DuplexStream>,
}

impl MemoryConnector {
    /// Opens a new connection to the listener.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` once the listener is dropped.
    pub fn connect(&self) -> io::Result<DuplexStream> {
        let (client, server) = tokio::io::duplex(BUFFER);
        self.tx.send(server).map_err(|_| {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the memory listener is gone",
            )
        })?;
        Ok(client)
    }
}
