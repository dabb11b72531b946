//! The writer task: what writes to the socket, with the reader for the answers it queued.
//!
//! It takes every frame already queued, encodes them into one buffer and writes that buffer at
//! once, so many small frames from many streams cost one system call and flush. The socket's
//! writing half and that buffer are [`Writing`], which the reader borrows when its poll ends
//! having queued answers (see [`outbox`](super::outbox)): it writes them there and then, and
//! leaves the writer whatever the socket would not take at once.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::{MAX_QUEUED_REPLIES, Out, Shared, Task};
use crate::Status;
use crate::frame::{FLAG_END_STREAM, Frame, HEADER_LEN};

/// Stop gathering frames into one write past this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// DATA payloads this large are written from their own buffer instead of being copied.
const ZERO_COPY: usize = 16 * 1024;
/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 64;
/// A buffer grown past this is given back afterwards.
const KEEP_CAPACITY: usize = 1024 * 1024;
/// A backlog that held more frames than this is given back once empty.
const KEEP_BACKLOG: usize = 1024;
/// How long the last write before closing may take.
const LAST_WRITE: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection's writing half, with the frames taken from the outbox and not yet written.
///
/// Shared by the writer task and the reader, each locking it only inside a poll: a write the
/// socket makes wait holds no lock meanwhile, and whoever polls next goes on with it.
#[derive(Debug)]
pub(crate) struct Writing<W>(Mutex<Side<W>>);

#[derive(Debug)]
struct Side<W> {
    /// Dropped when the writer task ends, as the task dropped it when it owned it: the peer
    /// sees the connection end even while a client's handle keeps `Shared` alive.
    write: Option<W>,
    batch: Batch,
    /// The batch is written, its flush is not done yet: nothing new goes out before it is.
    unflushed: bool,
    /// Frames taken from the outbox that did not fit the batch; they go before any newer.
    backlog: VecDeque<Out>,
    /// The writer took the `Shutdown`: whatever follows it is never written.
    shut: bool,
}

/// What [`Side::fill`] found to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filled {
    /// Nothing at all.
    Nothing,
    /// A batch.
    Batch,
    /// A batch (maybe empty) to write before closing the write side.
    Shutdown,
}

/// [`Writing::write_now`], for [`Shared`], which does not know the socket's type.
pub(crate) trait WriteNow: Send + Sync {
    fn write_now(&self, conn: &Shared);
}

impl std::fmt::Debug for dyn WriteNow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writing")
    }
}

impl<W: AsyncWrite + Unpin + Send> WriteNow for Writing<W> {
    fn write_now(&self, conn: &Shared) {
        Writing::write_now(self, conn);
    }
}

impl<W> Writing<W> {
    fn side(&self) -> MutexGuard<'_, Side<W>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<W: AsyncWrite + Unpin> Writing<W> {
    pub(crate) fn new(write: W) -> Arc<Writing<W>> {
        Arc::new(Writing(Mutex::new(Side {
            write: Some(write),
            batch: Batch::default(),
            unflushed: false,
            backlog: VecDeque::new(),
            shut: false,
        })))
    }

    /// Writes what is queued now, as far as the socket takes it without waiting; the writer
    /// task is woken for the rest. A `Shutdown` is always left to it. The reader calls it when
    /// its poll queued answers, and a call alone on its connection for its OPEN frame.
    pub(crate) fn write_now(&self, conn: &Shared) {
        let mut side = match self.0.try_lock() {
            Ok(side) => side,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // The writer task is in the middle of a poll, on another thread: it goes on
            // to the queue afterwards.
            Err(TryLockError::WouldBlock) => return conn.outbox.kick(),
        };
        if side.shut || side.write.is_none() {
            // Past the shutdown, or the writer ended: nothing more is written.
            return;
        }
        if side.busy() {
            // The writer task waits for the socket with a batch of its own (or its flush):
            // the new frames follow it. Polling the socket here would also take the writer's
            // place as the one the socket wakes.
            return conn.outbox.kick();
        }
        if side.fill(conn, false) == Filled::Batch {
            let mut cx = Context::from_waker(Waker::noop());
            match side.poll_write_batch(conn, &mut cx) {
                Poll::Ready(Ok(())) => {}
                // The socket is full: the writer waits for it.
                Poll::Pending => return conn.outbox.kick(),
                Poll::Ready(Err(err)) => {
                    drop(side);
                    return conn.close(&Status::unavailable(format!("connection lost: {err}")));
                }
            }
        }
        if !side.backlog.is_empty() {
            // More than a batch, or a shutdown: the writer's.
            conn.outbox.kick();
        }
    }
}

impl<W: AsyncWrite + Unpin> Side<W> {
    /// Gathers frames into the batch, the backlog first, up to [`BATCH_BYTES`]; a batch
    /// started already is left as it is. `Shutdown` ends the gathering if `shutdown` (the
    /// writer task), and is kept in the backlog otherwise (the reader).
    fn fill(&mut self, conn: &Shared, shutdown: bool) -> Filled {
        if self.busy() {
            return Filled::Batch;
        }
        loop {
            if self.backlog.is_empty() {
                if self.backlog.capacity() > KEEP_BACKLOG {
                    // A burst's worth of slots, given back (the outbox gets this deque next).
                    self.backlog = VecDeque::new();
                }
                conn.outbox.take_all(&mut self.backlog);
                if self.backlog.is_empty() {
                    break;
                }
            }
            while let Some(out) = self.backlog.pop_front() {
                if let Out::Shutdown = out {
                    if shutdown {
                        self.shut = true;
                        return Filled::Shutdown;
                    }
                    self.backlog.push_front(out);
                    return self.filled();
                }
                self.batch.encode(conn, out);
                if self.batch.len() >= BATCH_BYTES {
                    return Filled::Batch;
                }
            }
        }
        self.filled()
    }

    /// Whether a batch is being written or flushed.
    fn busy(&self) -> bool {
        !self.batch.is_empty() || self.unflushed
    }

    /// Whether anything taken from the outbox is still to be written.
    fn has_pending(&self) -> bool {
        self.busy() || !self.backlog.is_empty()
    }

    fn filled(&self) -> Filled {
        if self.batch.is_empty() {
            Filled::Nothing
        } else {
            Filled::Batch
        }
    }

    /// Writes and flushes the batch, going on from where an earlier poll stopped; once it is
    /// all written, the answers in it stop counting as waiting.
    fn poll_write_batch(&mut self, conn: &Shared, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(write) = self.write.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if !self.unflushed {
            ready!(self.batch.poll_write(write, cx))?;
            self.unflushed = true;
        }
        ready!(Pin::new(write).poll_flush(cx))?;
        self.unflushed = false;
        let answered = std::mem::take(&mut self.batch.replies);
        if answered > 0 {
            let before = conn.queued_replies.fetch_sub(answered, Ordering::AcqRel);
            // The reader waits only while half the limit or more is queued: only the write
            // that takes the count below that can be the one it waits for.
            if before >= MAX_QUEUED_REPLIES / 2 && before - answered < MAX_QUEUED_REPLIES / 2 {
                conn.answers_written.notify_waiters();
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Closes the outbox and drops the write half when the writer task ends, however it ends:
/// nothing more will be written.
struct WriterEnd<W> {
    conn: Arc<Shared>,
    writing: Arc<Writing<W>>,
}

impl<W> Drop for WriterEnd<W> {
    fn drop(&mut self) {
        self.conn.outbox.close();
        let write = self.writing.side().write.take();
        drop(write);
    }
}

/// The writer task: writes queued frames until the connection closes or a shutdown is asked
/// for.
pub(crate) fn run<W: AsyncWrite + Unpin>(
    conn: Arc<Shared>,
    writing: Arc<Writing<W>>,
) -> impl Future<Output = ()> {
    // Made before the first poll, so even a task dropped unpolled closes the outbox.
    let end = WriterEnd {
        conn: conn.clone(),
        writing: writing.clone(),
    };
    async move {
        let _end = end;
        let mut closed = conn.closing.wait(Task::Writer);
        loop {
            tokio::select! {
                biased;
                () = poll_fn(|cx| conn.outbox.poll_work(cx)) => {}
                // Closed. Last words (a GOAWAY, the shutdown) may still be to write: queued on
                // another thread after this poll found the outbox empty, or taken out of it by
                // a write from the reader that has yet to wake this task for what it could not
                // write.
                _ = &mut closed => if conn.outbox.is_empty() && !writing.side().has_pending() {
                    return;
                },
            }
            // Everything there is, a batch at a time.
            loop {
                let filled = writing.side().fill(&conn, true);
                if filled == Filled::Nothing {
                    break;
                }
                let io = poll_fn(|cx| writing.side().poll_write_batch(&conn, cx));
                let written = if filled == Filled::Shutdown {
                    // Last words (GOAWAY, final CLOSEs): a peer that does not read gets no
                    // more time.
                    match tokio::time::timeout(LAST_WRITE, io).await {
                        Ok(result) => result,
                        Err(_) => return,
                    }
                } else {
                    tokio::select! {
                        biased;
                        result = io => result,
                        // Closed while the socket was full: nothing more to say.
                        _ = &mut closed => return,
                    }
                };
                if let Err(err) = written {
                    conn.close(&Status::unavailable(format!("connection lost: {err}")));
                    return;
                }
                if filled == Filled::Shutdown {
                    let shutdown = poll_fn(|cx| match writing.side().write.as_mut() {
                        Some(write) => Pin::new(write).poll_shutdown(cx),
                        None => Poll::Ready(Ok(())),
                    });
                    let _ = tokio::time::timeout(LAST_WRITE, shutdown).await;
                    return;
                }
            }
        }
    }
}

/// Writes every part, as many at once as the socket takes, dropping each once written.
fn poll_write_parts<W: AsyncWrite + Unpin>(
    write: &mut W,
    parts: &mut VecDeque<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !parts.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let count = parts.len().min(MAX_SLICES);
        for (slice, part) in slices.iter_mut().zip(parts.iter()) {
            *slice = IoSlice::new(part);
        }
        let mut written = ready!(Pin::new(&mut *write).poll_write_vectored(cx, &slices[..count]))?;
        if written == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        while written > 0 {
            let front = parts.front_mut().expect("written bytes came from a part");
            if written >= front.len() {
                written -= front.len();
                parts.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    Poll::Ready(Ok(()))
}

/// Frames gathered for one write: small frames encoded into `head`, large payloads kept in
/// their own buffers, in order.
#[derive(Debug, Default)]
struct Batch {
    head: BytesMut,
    /// Bytes of `head` written already, while it is written on its own.
    head_written: usize,
    parts: VecDeque<Bytes>,
    /// Bytes in `parts`.
    frozen: usize,
    /// The DATA frame ending `head` that more data of its stream may join.
    open_data: Option<OpenData>,
    /// Answers (`Out::Reply`) in the batch: they stop counting as waiting once written.
    replies: usize,
}

impl Batch {
    /// Bytes gathered (some may be written already, while a write goes on).
    fn len(&self) -> usize {
        self.frozen + self.head.len()
    }

    /// Whether everything gathered is written.
    fn is_empty(&self) -> bool {
        self.parts.is_empty() && self.head.len() == self.head_written
    }

    /// Moves what `head` holds into `parts`.
    fn freeze_head(&mut self) {
        if !self.head.is_empty() {
            // A large head is handed over whole; a small one is split off, and its allocation
            // is reused once the write is done.
            let part = if self.head.len() > KEEP_CAPACITY {
                std::mem::take(&mut self.head).freeze()
            } else {
                self.head.split().freeze()
            };
            self.frozen += part.len();
            self.parts.push_back(part);
        }
        self.open_data = None;
    }

    /// Writes everything gathered, going on from where an earlier poll stopped; once it is all
    /// written the batch starts empty again, keeping its buffers.
    ///
    /// A batch of small frames only (every unary call, most streaming) is written straight
    /// from the buffer it was encoded into, which is then reused as it is: no part to cut off,
    /// count references to and queue.
    fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        write: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.parts.is_empty() {
            ready!(poll_write_parts(write, self.ready_parts(), cx))?;
            return Poll::Ready(Ok(()));
        }
        while self.head_written < self.head.len() {
            let unwritten = &self.head[self.head_written..];
            let n = ready!(Pin::new(&mut *write).poll_write(cx, unwritten))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.head_written += n;
        }
        self.head_written = 0;
        self.open_data = None;
        if self.head.capacity() > KEEP_CAPACITY {
            self.head = BytesMut::new();
        } else {
            self.head.clear();
        }
        Poll::Ready(Ok(()))
    }

    /// Everything gathered, ready to write; writing drains it (keeping the deque's capacity)
    /// and the batch starts empty again.
    fn ready_parts(&mut self) -> &mut VecDeque<Bytes> {
        self.freeze_head();
        self.frozen = 0;
        &mut self.parts
    }

    #[cfg(test)]
    fn take_parts(&mut self) -> VecDeque<Bytes> {
        std::mem::take(self.ready_parts())
    }

    #[cfg(test)]
    async fn write_to<W: AsyncWrite + Unpin>(&mut self, write: &mut W) -> io::Result<()> {
        poll_fn(|cx| self.poll_write(write, cx)).await
    }

    /// Encodes one queued frame (a `Shutdown` is the caller's: see [`Side::fill`]).
    ///
    /// DATA for the stream whose DATA frame ends the batch joins that frame instead of starting
    /// a new one, up to the peer's frame size: a stream's messages are one byte sequence, so the
    /// receiver handles a run of small messages as one frame. A large payload (DATA, or a unary
    /// request or reply ending an OPEN or CLOSE) is not copied: its frame's header goes into
    /// `head` and the payload itself becomes a part.
    fn encode(&mut self, conn: &Shared, out: Out) {
        let frame = match out {
            Out::Frame(frame) => frame,
            Out::Reply(frame) => {
                self.replies += 1;
                frame
            }
            Out::Shutdown => return,
        };
        if let Frame::Data {
            id,
            end_stream,
            data,
        } = &frame
            && data.len() < ZERO_COPY
            && self.join_data(conn, *id, *end_stream, data)
        {
            return;
        }
        let start = self.head.len();
        self.open_data = None;
        match frame.encode_detaching(&mut self.head, ZERO_COPY) {
            Some(payload) => self.push_part(payload),
            None => {
                if let Frame::Data {
                    id,
                    end_stream: false,
                    ..
                } = frame
                {
                    self.open_data = Some(OpenData { id, start });
                }
            }
        }
    }

    /// Ends `head` and queues `payload` after it, uncopied.
    fn push_part(&mut self, payload: Bytes) {
        self.freeze_head();
        self.frozen += payload.len();
        self.parts.push_back(payload);
    }

    /// Appends `data` to stream `id`'s DATA frame if that frame ends `head` and stays within
    /// the peer's frame size with it; `false` if it needs a frame of its own.
    fn join_data(&mut self, conn: &Shared, id: u32, end_stream: bool, data: &[u8]) -> bool {
        let head = &mut self.head;
        let Some(last) = self.open_data else {
            return false;
        };
        if last.id != id
            || head.len() - last.start - 4 + data.len()
                > HEADER_LEN + conn.peer.max_frame_size as usize
        {
            return false;
        }
        head.extend_from_slice(data);
        let len = (head.len() - last.start - 4) as u32;
        head[last.start..last.start + 4].copy_from_slice(&len.to_be_bytes());
        if end_stream {
            head[last.start + FLAGS_AT] |= FLAG_END_STREAM;
            self.open_data = None;
        }
        true
    }
}

/// The last frame in the buffer, when it is a DATA frame that more data of its stream may join.
#[derive(Clone, Copy, Debug)]
struct OpenData {
    id: u32,
    /// Where its length prefix starts in the buffer.
    start: usize,
}

/// Offset of the flags byte from the start of a frame's length prefix.
const FLAGS_AT: usize = 4 + 4 + 1;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connection::test_client;

    fn conn(max_frame_size: u32) -> Arc<Shared> {
        test_client(max_frame_size, 1 << 20)
    }

    fn data(id: u32, end_stream: bool, len: usize) -> Out {
        Out::Frame(Frame::Data {
            id,
            end_stream,
            data: Bytes::from(vec![id as u8; len]),
        })
    }

    /// The frames in a batch, decoded.
    fn frames(batch: &mut Batch) -> Vec<Frame> {
        let mut all = BytesMut::new();
        for part in batch.take_parts() {
            all.extend_from_slice(&part);
        }
        let mut rest = all.freeze();
        let mut out = Vec::new();
        while rest.has_remaining() {
            let len = rest.get_u32() as usize;
            out.push(Frame::decode(rest.split_to(len), 1024).unwrap());
        }
        out
    }

    fn data_lens(frames: &[Frame]) -> Vec<(u32, usize)> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Data { id, data, .. } => (*id, data.len()),
                _ => (0, 0),
            })
            .collect()
    }

    #[test]
    fn consecutive_data_of_a_stream_shares_one_frame() {
        let conn = conn(1024);
        let mut batch = Batch::default();
        for out in [
            data(1, false, 10),
            data(1, false, 20),
            data(1, true, 5),
            data(1, false, 1),
        ] {
            batch.encode(&conn, out);
        }
        let frames = frames(&mut batch);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(
            matches!(&frames[0], Frame::Data { id: 1, end_stream: true, data } if data.len() == 35)
        );
        assert!(
            matches!(&frames[1], Frame::Data { id: 1, end_stream: false, data } if data.len() == 1)
        );
    }

    #[test]
    fn other_streams_other_frames_and_the_frame_limit_break_a_run() {
        let conn = conn(1024);
        let mut batch = Batch::default();
        let credit = Out::Frame(Frame::Credit {
            id: 1,
            increment: 9,
        });
        for out in [
            data(1, false, 600),
            data(1, false, 600),
            data(2, false, 1),
            credit,
            data(2, false, 1),
        ] {
            batch.encode(&conn, out);
        }
        assert_eq!(
            data_lens(&frames(&mut batch)),
            [(1, 600), (1, 600), (2, 1), (0, 0), (2, 1)]
        );
    }

    #[test]
    fn large_payloads_are_parts_of_their_own_and_frames_stay_in_order() {
        let conn = conn(1 << 20);
        let mut batch = Batch::default();
        for out in [
            data(1, false, 3),
            data(2, false, 40_000),
            data(2, false, 2),
            data(3, true, 20_000),
        ] {
            batch.encode(&conn, out);
        }
        assert_eq!(batch.len(), 4 * 10 + 3 + 40_000 + 2 + 20_000);
        assert!(
            batch.parts.len() >= 3,
            "the large payloads are not copied: {:?}",
            batch.parts.len()
        );
        assert_eq!(
            data_lens(&frames(&mut batch)),
            [(1, 3), (2, 40_000), (2, 2), (3, 20_000)]
        );
    }

    #[test]
    fn a_large_unary_payload_is_not_copied_either() {
        let conn = conn(1 << 20);
        let mut batch = Batch::default();
        let reply = Bytes::from(vec![5u8; ZERO_COPY]);
        let close = Frame::Close {
            id: 1,
            status: crate::Status::new(crate::Code::Ok, ""),
            data: reply.clone(),
        };
        batch.encode(&conn, Out::Reply(close.clone()));
        batch.encode(&conn, data(3, true, 1));
        let parts = batch.take_parts();
        assert!(
            parts.iter().any(|part| part.as_ptr() == reply.as_ptr()),
            "the reply is a part of its own"
        );
        let mut all = BytesMut::new();
        for part in parts {
            all.extend_from_slice(&part);
        }
        let mut expected = BytesMut::new();
        close.encode(&mut expected);
        if let Out::Frame(frame) = data(3, true, 1) {
            frame.encode(&mut expected);
        }
        assert_eq!(all, expected);
    }

    #[test]
    fn a_large_batch_does_not_leave_its_buffer_behind() {
        let conn = conn(8 << 20);
        let mut batch = Batch::default();
        let close = Frame::Close {
            id: 1,
            status: crate::Status::new(crate::Code::Ok, ""),
            data: Bytes::from(vec![1u8; 3 << 20]),
        };
        batch.encode(&conn, Out::Frame(close));
        drop(batch.take_parts());
        assert!(
            batch.head.capacity() <= KEEP_CAPACITY,
            "kept {} bytes",
            batch.head.capacity()
        );
    }

    #[tokio::test]
    async fn a_batch_of_small_frames_is_written_from_its_buffer_which_is_kept() {
        let conn = conn(1024);
        let mut batch = Batch::default();
        let mut expected = BytesMut::new();
        for out in [data(1, false, 300), data(2, true, 400), data(1, true, 5)] {
            if let Out::Frame(frame) = &out {
                frame.encode(&mut expected);
            }
            batch.encode(&conn, out);
        }
        assert!(batch.parts.is_empty(), "small frames stay in the buffer");
        let buffer = batch.head.as_ptr();
        // A tiny pipe: the write is partial many times over.
        let (mut a, mut b) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut read = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut read)
                .await
                .unwrap();
            read
        });
        batch.write_to(&mut a).await.unwrap();
        drop(a);
        assert_eq!(reader.await.unwrap(), expected);
        assert_eq!(batch.len(), 0);
        assert_eq!(
            batch.head.as_ptr(),
            buffer,
            "the buffer is reused, not replaced"
        );
        // The next batch starts clean: no DATA frame left open to join.
        batch.encode(&conn, data(2, false, 1));
        assert_eq!(data_lens(&frames(&mut batch)), [(2, 1)]);

        // A peer gone mid-write: the write fails instead of waiting.
        let (mut a, b) = tokio::io::duplex(64);
        batch.encode(&conn, data(1, false, 300));
        drop(b);
        assert!(batch.write_to(&mut a).await.is_err());
    }

    /// A connection whose writing half goes into a pipe of `capacity` bytes, and the pipe's
    /// other end.
    fn wired(
        capacity: usize,
    ) -> (
        Arc<Shared>,
        Arc<Writing<tokio::io::DuplexStream>>,
        tokio::io::DuplexStream,
    ) {
        let (write, peer) = tokio::io::duplex(capacity);
        (conn(1 << 20), Writing::new(write), peer)
    }

    /// Queues DATA frames for streams `ids` (`len` bytes each) and returns their encoding.
    fn queue_data(conn: &Shared, ids: std::ops::Range<u32>, len: usize) -> BytesMut {
        let mut expected = BytesMut::new();
        for id in ids {
            let frame = Frame::Data {
                id,
                end_stream: true,
                data: Bytes::from(vec![id as u8; len]),
            };
            frame.encode(&mut expected);
            conn.push(frame);
        }
        expected
    }

    /// The write side is shut, with nothing more written before it.
    async fn assert_shut_with_nothing_more(peer: &mut tokio::io::DuplexStream) {
        let mut rest = Vec::new();
        let closed = tokio::io::AsyncReadExt::read_to_end(peer, &mut rest);
        tokio::time::timeout(std::time::Duration::from_secs(5), closed)
            .await
            .expect("the writer shut the write side")
            .unwrap();
        assert!(rest.is_empty(), "nothing after the shutdown: {rest:?}");
    }

    async fn read_exactly(read: &mut tokio::io::DuplexStream, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        let read_all = tokio::io::AsyncReadExt::read_exact(read, &mut bytes);
        tokio::time::timeout(std::time::Duration::from_secs(5), read_all)
            .await
            .expect("everything queued is written")
            .unwrap();
        bytes
    }

    #[tokio::test]
    async fn what_the_socket_does_not_take_at_once_the_writer_finishes() {
        // A tiny pipe: the reader's write stops after 64 bytes.
        let (conn, writing, mut peer) = wired(64);
        let expected = queue_data(&conn, 1..11, 100);
        writing.write_now(&conn);
        assert!(!writing.side().batch.is_empty(), "the pipe took only part");
        // Nothing is queued any more: the writer goes on because it was woken for the batch.
        tokio::spawn(run(conn.clone(), writing));
        assert_eq!(read_exactly(&mut peer, expected.len()).await, expected);
    }

    #[tokio::test]
    async fn frames_queued_behind_an_unfinished_batch_follow_it() {
        let (conn, writing, mut peer) = wired(64);
        let mut expected = queue_data(&conn, 1..11, 100);
        writing.write_now(&conn);
        // Newer frames wait behind the unfinished batch, even from another write now.
        expected.extend(queue_data(&conn, 11..21, 100));
        writing.write_now(&conn);
        // The writer task was kicked: it finishes the batch, then the rest.
        tokio::spawn(run(conn.clone(), writing));
        assert_eq!(read_exactly(&mut peer, expected.len()).await, expected);
    }

    #[tokio::test]
    async fn the_reader_leaves_a_shutdown_and_what_follows_to_the_writer() {
        let (conn, writing, mut peer) = wired(1 << 16);
        let expected = queue_data(&conn, 1..4, 10);
        conn.push_shutdown();
        queue_data(&conn, 4..5, 10);
        writing.write_now(&conn);
        assert_eq!(read_exactly(&mut peer, expected.len()).await, expected);
        assert!(
            matches!(writing.side().backlog.front(), Some(Out::Shutdown)),
            "the shutdown is the writer's"
        );
        tokio::spawn(run(conn.clone(), writing));
        assert_shut_with_nothing_more(&mut peer).await;
    }

    #[tokio::test]
    async fn a_shutdown_ahead_of_everything_the_reader_queued_goes_to_the_writer() {
        let (conn, writing, mut peer) = wired(1 << 16);
        conn.push_shutdown();
        queue_data(&conn, 1..2, 10);
        writing.write_now(&conn);
        // Nothing for the reader to write: the writer alone can go on, so it was woken.
        tokio::spawn(run(conn.clone(), writing));
        assert_shut_with_nothing_more(&mut peer).await;
    }

    /// A transport that buffers what it is given and delivers it only on a flush, which the
    /// first `pending_flushes` times waits (waking at once), as TLS does with a full socket.
    struct SlowFlush {
        buffered: Vec<u8>,
        delivered: Arc<std::sync::Mutex<Vec<u8>>>,
        pending_flushes: usize,
    }

    impl AsyncWrite for SlowFlush {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.buffered.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            if self.pending_flushes > 0 {
                self.pending_flushes -= 1;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let buffered = std::mem::take(&mut self.buffered);
            self.delivered.lock().unwrap().extend(buffered);
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    #[tokio::test]
    async fn a_flush_the_reader_could_not_finish_the_writer_does() {
        let conn = conn(1 << 20);
        let delivered = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writing = Writing::new(SlowFlush {
            buffered: Vec::new(),
            delivered: delivered.clone(),
            pending_flushes: 2,
        });
        let expected = queue_data(&conn, 1..3, 10);
        writing.write_now(&conn);
        assert!(delivered.lock().unwrap().is_empty(), "the flush waits");
        // Nothing else is queued: the writer goes on with the flush because it was woken for
        // it, and knows the batch is written but not flushed.
        tokio::spawn(run(conn.clone(), writing));
        let flushed = async {
            while delivered.lock().unwrap().len() < expected.len() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), flushed)
            .await
            .expect("the writer finished the flush");
        assert_eq!(*delivered.lock().unwrap(), expected);
    }

    #[tokio::test]
    async fn the_write_half_is_dropped_when_the_writer_ends_though_the_connection_lives_on() {
        let (conn, writing, mut peer) = wired(1 << 16);
        let writer = tokio::spawn(run(conn.clone(), writing.clone()));
        conn.close(&crate::Status::unavailable("closed by the test"));
        writer.await.unwrap();
        // `conn` and `writing` are still held (a client's handle keeps them): the peer sees the
        // end all the same.
        assert_shut_with_nothing_more(&mut peer).await;
        drop(writing);
    }

    #[tokio::test]
    async fn last_words_the_reader_took_from_the_outbox_are_written_after_the_close() {
        let (conn, writing, mut peer) = wired(1 << 16);
        let expected = queue_data(&conn, 1..3, 10);
        conn.push_shutdown();
        // As a reader on another thread does between taking them and waking the writer.
        assert_eq!(writing.side().fill(&conn, false), Filled::Batch);
        conn.close(&crate::Status::unavailable("closed by the test"));
        tokio::spawn(run(conn.clone(), writing.clone()));
        assert_eq!(read_exactly(&mut peer, expected.len()).await, expected);
        assert_shut_with_nothing_more(&mut peer).await;
    }

    #[tokio::test]
    async fn nothing_queued_after_the_shutdown_is_written_by_the_reader() {
        let (conn, writing, mut peer) = wired(1 << 16);
        conn.push_shutdown();
        queue_data(&conn, 1..2, 10);
        // The writer took the shutdown and is about to close the write side.
        assert_eq!(writing.side().fill(&conn, true), Filled::Shutdown);
        writing.write_now(&conn);
        let mut buf = [0; 64];
        let read =
            futures::FutureExt::now_or_never(tokio::io::AsyncReadExt::read(&mut peer, &mut buf));
        assert!(read.is_none(), "nothing written: {read:?}");
    }

    #[tokio::test]
    async fn a_burst_does_not_leave_its_queue_capacity_behind() {
        let (conn, writing, _peer) = wired(1 << 20);
        queue_data(&conn, 1..5001, 1);
        writing.write_now(&conn);
        // The queue and the backlog trade buffers: neither keeps the burst's slots.
        let kept = (writing.side().backlog.capacity(), conn.outbox.capacity());
        assert!(kept.0 <= KEEP_BACKLOG && kept.1 <= KEEP_BACKLOG, "{kept:?}");
    }

    #[tokio::test]
    async fn a_peer_gone_when_the_reader_writes_closes_the_connection() {
        let (conn, writing, peer) = wired(64);
        drop(peer);
        queue_data(&conn, 1..2, 10);
        writing.write_now(&conn);
        let status = conn.closed_status().expect("closed");
        assert_eq!(status.code(), crate::Code::Unavailable);
        assert!(status.message().contains("connection lost"), "{status:?}");
    }

    #[tokio::test]
    async fn partial_vectored_writes_resume_where_they_stopped() {
        let (mut a, mut b) = tokio::io::duplex(7); // a tiny pipe: every write is partial
        let mut parts: VecDeque<Bytes> = ["hello ", "vectored ", "world"]
            .into_iter()
            .map(Bytes::from)
            .collect();
        let writer = tokio::spawn(async move {
            poll_fn(|cx| poll_write_parts(&mut a, &mut parts, cx))
                .await
                .unwrap();
        });
        let mut read = Vec::new();
        let mut chunk = [0u8; 64];
        while read.len() < 20 {
            let n = tokio::io::AsyncReadExt::read(&mut b, &mut chunk)
                .await
                .unwrap();
            read.extend_from_slice(&chunk[..n]);
        }
        writer.await.unwrap();
        assert_eq!(read, b"hello vectored world");
    }
}
