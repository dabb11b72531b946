//! The reader task: cuts frames from the socket and routes each to its stream.
//!
//! It never waits for an application to consume anything: flow control bounds what a peer may
//! send, so buffering whatever arrives is always within limits. The answers it queues (a call
//! a server handler finished at once, a PING's) it writes itself when its poll ends (see
//! [`outbox`](super::outbox)).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::StreamExt;
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_util::codec::FramedRead;

use std::sync::atomic::Ordering;

use super::outbox::Outbox;
use super::writer::Writing;
use super::{MAX_QUEUED_REPLIES, Shared, Task, Violation};
use crate::Status;
use crate::frame::{Frame, FrameCodec, FrameError};

/// Initial read buffer per connection; it grows only with bytes that actually arrive.
const READ_BUFFER: usize = 8 * 1024;

/// The reader task: reads frames until the connection ends, then closes it. What each poll
/// queued goes to `writing` at its end.
pub(crate) fn run<R, W>(
    conn: Arc<Shared>,
    read: R,
    writing: Arc<Writing<W>>,
) -> impl Future<Output = ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    Answering {
        frames: read_frames(conn.clone(), read),
        conn,
        writing,
    }
}

pin_project! {
    /// The future of [`run`]: each poll of `frames` under the outbox's hold, then the answers
    /// it queued written.
    struct Answering<F, W> {
        #[pin]
        frames: F,
        conn: Arc<Shared>,
        writing: Arc<Writing<W>>,
    }
}

impl<F: Future<Output = ()>, W: AsyncWrite + Unpin> Future for Answering<F, W> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let hold = Hold::new(&this.conn.outbox);
        let polled = this.frames.poll(cx);
        if hold.release() {
            this.writing.write_now(this.conn);
        }
        polled
    }
}

/// The outbox's hold for one poll of the reader; should the poll panic, dropping it hands
/// whatever was queued to the writer.
struct Hold<'a>(Option<&'a Outbox>);

impl<'a> Hold<'a> {
    fn new(outbox: &'a Outbox) -> Hold<'a> {
        outbox.hold();
        Hold(Some(outbox))
    }

    /// Ends the hold: `true` if answers are queued, for the reader to write.
    fn release(mut self) -> bool {
        self.0.take().is_some_and(Outbox::release)
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if let Some(outbox) = self.0.take()
            && outbox.release()
        {
            outbox.kick();
        }
    }
}

/// Reads frames until the connection ends, then closes it.
async fn read_frames<R: AsyncRead + Unpin>(conn: Arc<Shared>, read: R) {
    let codec = FrameCodec::new(conn.config.max_frame_size as usize);
    let read = Counted {
        inner: read,
        conn: &conn,
    };
    let mut frames = FramedRead::with_capacity(read, codec, READ_BUFFER);
    let max_metadata = conn.config.max_metadata_size as usize;
    let mut closed = conn.closing.wait(Task::Reader);
    loop {
        if conn.queued_replies.load(Ordering::Acquire) >= MAX_QUEUED_REPLIES / 2
            && !answers_read(&conn).await
        {
            return;
        }
        let next = tokio::select! {
            biased;
            _ = &mut closed => return,
            next = frames.next() => next,
        };
        let raw = match next {
            Some(Ok(raw)) => raw,
            Some(Err(err)) if err.kind() == io::ErrorKind::InvalidData => {
                conn.protocol_error(&err.to_string());
                linger(frames.into_inner().inner).await;
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
        // Frames already in the buffer are decoded without touching the socket, which would
        // let one connection's backlog hold a worker thread: count each against the task's
        // cooperative budget so other connections get their turn.
        tokio::task::coop::consume_budget().await;
        let result = match Frame::decode(raw, max_metadata) {
            Ok(frame) => conn.on_frame(frame),
            Err(FrameError::Protocol(reason)) => Err(Violation::Protocol(reason)),
            Err(FrameError::Refuse {
                id,
                status,
                data_len,
            }) => crate::server::dispatch::refuse(&conn, id, status, data_len).map_err(Into::into),
        };
        if let Err(violation) = result {
            conn.disconnect(&violation);
            linger(frames.into_inner().inner).await;
            return;
        }
    }
}

/// Waits while half of [`MAX_QUEUED_REPLIES`] answers to the peer's own input wait to be
/// written: the peer asks faster than it reads. Not reading meanwhile lets TCP slow the peer
/// down instead of the queue growing. `false` if the connection ended, or the peer read none
/// of them for a keepalive timeout: it does not read at all.
async fn answers_read(conn: &Shared) -> bool {
    let deadline = tokio::time::Instant::now() + conn.config.keepalive_timeout;
    loop {
        let written = conn.answers_written.notified();
        let mut written = std::pin::pin!(written);
        written.as_mut().enable();
        if conn.queued_replies.load(Ordering::Acquire) < MAX_QUEUED_REPLIES / 2 {
            return true;
        }
        tokio::select! {
            _ = written => {}
            _ = conn.closed.cancelled() => return false,
            _ = tokio::time::sleep_until(deadline) => {
                conn.protocol_error(&format!(
                    "the peer keeps asking and read none of {} answers in {:?}",
                    MAX_QUEUED_REPLIES / 2,
                    conn.config.keepalive_timeout
                ));
                return false;
            }
        }
    }
}

/// How long, and for how many bytes, a connection closed for the peer's misbehaviour keeps
/// reading after its GOAWAY.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 4 << 20;

/// Reads and discards what the peer still sends while the GOAWAY is written, until it closes
/// or the bounds run out. Closing a socket with unread bytes makes TCP reset the connection,
/// and a reset can destroy the GOAWAY before the peer reads it: the peer would see a bare
/// "connection reset" instead of the reason.
async fn linger<R: AsyncRead + Unpin>(mut read: R) {
    let mut buf = [0; 4096];
    let mut discarded = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while discarded < LINGER_BYTES {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::connection::{test_client, writer};

    #[tokio::test]
    async fn answers_queued_by_a_poll_that_panicked_still_reach_the_writer() {
        let conn = test_client(1 << 20, 1 << 20);
        let (write, mut peer_side) = tokio::io::duplex(1 << 16);
        tokio::spawn(writer::run(conn.clone(), Writing::new(write)));
        tokio::task::yield_now().await; // the writer waits for work
        let hold = Hold::new(&conn.outbox);
        conn.on_frame(Frame::Ping {
            ack: false,
            payload: 7,
        })
        .unwrap();
        // As when unwinding: the hold is dropped, not released.
        drop(hold);
        let mut expected = bytes::BytesMut::new();
        Frame::Ping {
            ack: true,
            payload: 7,
        }
        .encode(&mut expected);
        let mut answer = vec![0; expected.len()];
        let read = tokio::time::timeout(Duration::from_secs(5), peer_side.read_exact(&mut answer));
        read.await.expect("the PING was answered").unwrap();
        assert_eq!(answer, expected);
    }

    #[tokio::test]
    async fn a_reader_paused_for_unread_answers_goes_on_once_the_peer_reads_them() {
        let conn = test_client(1 << 20, 1 << 20);
        // A pipe of 64 bytes: the answers wait for the peer to read them.
        let (write, mut peer_side) = tokio::io::duplex(64);
        tokio::spawn(writer::run(conn.clone(), Writing::new(write)));
        for payload in 0..(MAX_QUEUED_REPLIES / 2 + 100) as u64 {
            conn.on_frame(Frame::Ping {
                ack: false,
                payload,
            })
            .unwrap();
        }
        let mut read_on = std::pin::pin!(answers_read(&conn));
        let paused = tokio::time::timeout(Duration::from_millis(100), read_on.as_mut()).await;
        assert!(paused.is_err(), "the peer reads nothing: the reader waits");
        tokio::spawn(async move {
            let mut buf = [0; 4096];
            while peer_side.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        // Well before the keepalive timeout (20 s), which would end the wait with `false`.
        let resumed = tokio::time::timeout(Duration::from_secs(5), read_on).await;
        assert_eq!(resumed, Ok(true), "woken once the answers were written");
    }
}
