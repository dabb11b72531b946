//! The writer task: the only place that writes to the socket.
//!
//! It takes every frame already queued, encodes them into one buffer and writes that buffer at
//! once, so many small frames from many streams cost one system call and flush.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Out, Shared};
use crate::Status;

/// Stop gathering frames into one write past this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// A buffer grown past this by a large frame is given back afterwards.
const KEEP_CAPACITY: usize = 1024 * 1024;
/// How long the last write before closing may take.
const LAST_WRITE: std::time::Duration = std::time::Duration::from_secs(5);

/// Writes queued frames until the connection closes or a shutdown is asked for.
pub(crate) async fn run<W: AsyncWrite + Unpin>(
    conn: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    mut write: W,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let first = tokio::select! {
            biased;
            first = rx.recv() => first,
            _ = conn.closed.cancelled() => None,
        };
        let mut shutdown = match first {
            None => true,
            Some(out) => encode(&conn, out, &mut buf),
        };
        while !shutdown && buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(out) => shutdown = encode(&conn, out, &mut buf),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            let io = async {
                write.write_all(&buf).await?;
                write.flush().await
            };
            let written = if shutdown {
                // Last words (GOAWAY, final CLOSEs): a peer that does not read gets no more time.
                match tokio::time::timeout(LAST_WRITE, io).await {
                    Ok(result) => result,
                    Err(_) => return,
                }
            } else {
                tokio::select! {
                    result = io => result,
                    // Closed while the socket was full: nothing more to say.
                    _ = conn.closed.cancelled() => return,
                }
            };
            if let Err(err) = written {
                conn.close(&Status::unavailable(format!("connection lost: {err}")));
                return;
            }
            buf.clear();
            if buf.capacity() > KEEP_CAPACITY {
                buf = BytesMut::with_capacity(64 * 1024);
            }
        }
        if shutdown {
            let _ = write.shutdown().await;
            return;
        }
    }
}

/// Encodes one queued item into `buf`; `true` if it asks for the shutdown.
fn encode(conn: &Shared, out: Out, buf: &mut BytesMut) -> bool {
    match out {
        Out::Frame(frame) => frame.encode(buf),
        Out::Reply(frame) => {
            frame.encode(buf);
            conn.queued_replies.fetch_sub(1, Ordering::AcqRel);
        }
        Out::Shutdown => return true,
    }
    false
}
