//! The reader task: cuts frames from the socket and routes each to its stream.
//!
//! It never waits for an application to consume anything: flow control bounds what a peer may
//! send, so buffering whatever arrives is always within limits.

use std::io;
use std::sync::Arc;

use futures::StreamExt;
use tokio::io::AsyncRead;
use tokio_util::codec::FramedRead;

use super::Shared;
use crate::Status;
use crate::frame::{Frame, FrameCodec, FrameError};

/// Initial read buffer per connection; it grows only with bytes that actually arrive.
const READ_BUFFER: usize = 8 * 1024;

/// Reads frames until the connection ends, then closes it.
pub(crate) async fn run<R: AsyncRead + Unpin>(conn: Arc<Shared>, read: R) {
    let codec = FrameCodec::new(conn.config.max_frame_size as usize);
    let read = Counted {
        inner: read,
        conn: &conn,
    };
    let mut frames = FramedRead::with_capacity(read, codec, READ_BUFFER);
    let max_metadata = conn.config.max_metadata_size as usize;
    loop {
        let next = tokio::select! {
            biased;
            _ = conn.closed.cancelled() => return,
            next = frames.next() => next,
        };
        let raw = match next {
            Some(Ok(raw)) => raw,
            Some(Err(err)) if err.kind() == io::ErrorKind::InvalidData => {
                conn.protocol_error(&err.to_string());
                return;
            }
            Some(Err(err)) => {
                conn.close(&Status::unavailable(format!("connection lost: {err}")));
                return;
            }
            None => {
                conn.close(&conn.peer_closed("connection lost: the peer closed the connection"));
                return;
            }
        };
        let result = match Frame::decode(raw, max_metadata) {
            Ok(frame) => conn.on_frame(frame),
            Err(FrameError::Protocol(reason)) => Err(reason),
            Err(FrameError::Refuse {
                id,
                status,
                data_len,
            }) => crate::server::dispatch::refuse(&conn, id, status, data_len),
        };
        if let Err(reason) = result {
            conn.protocol_error(&reason);
            return;
        }
    }
}

/// Counts the bytes read, for keepalive: a peer slowly delivering one large frame is alive.
struct Counted<'a, R> {
    inner: R,
    conn: &'a Shared,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<'_, R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.conn
                .bytes_received
                .fetch_add(read as u64, std::sync::atomic::Ordering::Release);
        }
        polled
    }
}
