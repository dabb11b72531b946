//! Splits a connection's byte stream into the halves its reader and writer tasks own.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The read half of a connection.
#[derive(Debug)]
pub(crate) enum ReadHalf<IO> {
    /// TCP splits into independent halves, with no lock between them.
    Tcp(OwnedReadHalf),
    /// Any other stream is shared behind tokio's lock.
    Other(tokio::io::ReadHalf<IO>),
}

/// The write half of a connection.
#[derive(Debug)]
pub(crate) enum WriteHalf<IO> {
    Tcp(OwnedWriteHalf),
    Other(tokio::io::WriteHalf<IO>),
}

/// Splits `io`, without a lock when it is a `TcpStream`.
pub(crate) fn split<IO>(io: IO) -> (ReadHalf<IO>, WriteHalf<IO>)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut slot = Some(io);
    if let Some(tcp) = (&mut slot as &mut dyn Any).downcast_mut::<Option<TcpStream>>() {
        let (read, write) = tcp.take().expect("just filled").into_split();
        return (ReadHalf::Tcp(read), WriteHalf::Tcp(write));
    }
    let (read, write) = tokio::io::split(slot.expect("not taken"));
    (ReadHalf::Other(read), WriteHalf::Other(write))
}

impl<IO: AsyncRead + Unpin> AsyncRead for ReadHalf<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(half) => Pin::new(half).poll_read(cx, buf),
            ReadHalf::Other(half) => Pin::new(half).poll_read(cx, buf),
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteHalf<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(half) => Pin::new(half).poll_write(cx, buf),
            WriteHalf::Other(half) => Pin::new(half).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(half) => Pin::new(half).poll_write_vectored(cx, bufs),
            WriteHalf::Other(half) => Pin::new(half).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WriteHalf::Tcp(half) => half.is_write_vectored(),
            WriteHalf::Other(half) => half.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(half) => Pin::new(half).poll_flush(cx),
            WriteHalf::Other(half) => Pin::new(half).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(half) => Pin::new(half).poll_shutdown(cx),
            WriteHalf::Other(half) => Pin::new(half).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tcp_splits_without_a_lock_and_other_streams_with_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(matches!(split(tcp), (ReadHalf::Tcp(_), WriteHalf::Tcp(_))));
        let (memory, _other) = tokio::io::duplex(64);
        assert!(matches!(
            split(memory),
            (ReadHalf::Other(_), WriteHalf::Other(_))
        ));
    }
}
