//! The writer task: the only place that writes to the socket.
//!
//! It takes every frame already queued, encodes them into one buffer and writes that buffer at
//! once, so many small frames from many streams cost one system call and flush.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

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
/// How long the last write before closing may take.
const LAST_WRITE: std::time::Duration = std::time::Duration::from_secs(5);

/// Writes queued frames until the connection closes or a shutdown is asked for.
pub(crate) async fn run<W: AsyncWrite + Unpin>(
    conn: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    mut write: W,
) {
    let mut batch = Batch::default();
    let mut closed = conn.closing.wait(Task::Writer);
    loop {
        let first = tokio::select! {
            biased;
            first = rx.recv() => first,
            _ = &mut closed => None,
        };
        let mut shutdown = match first {
            None => true,
            Some(out) => batch.encode(&conn, out),
        };
        while !shutdown && batch.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(out) => shutdown = batch.encode(&conn, out),
                Err(_) => break,
            }
        }
        if batch.len() > 0 {
            let io = async {
                batch.write_to(&mut write).await?;
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
            let answered = std::mem::take(&mut batch.replies);
            if answered > 0 {
                let before = conn.queued_replies.fetch_sub(answered, Ordering::AcqRel);
                // The reader waits only while half the limit or more is queued: only the write
                // that takes the count below that can be the one it waits for.
                if before >= MAX_QUEUED_REPLIES / 2 && before - answered < MAX_QUEUED_REPLIES / 2 {
                    conn.answers_written.notify_waiters();
                }
            }
        }
        if shutdown {
            let _ = write.shutdown().await;
            return;
        }
    }
}

/// Writes every part, as many at once as the socket takes.
async fn write_all_parts<W: AsyncWrite + Unpin>(
    write: &mut W,
    parts: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    while !parts.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let count = parts.len().min(MAX_SLICES);
        for (slice, part) in slices.iter_mut().zip(parts.iter()) {
            *slice = IoSlice::new(part);
        }
        let mut written = write.write_vectored(&slices[..count]).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
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
    Ok(())
}

/// Frames gathered for one write: small frames encoded into `head`, large payloads kept in
/// their own buffers, in order.
#[derive(Debug, Default)]
struct Batch {
    head: BytesMut,
    parts: VecDeque<Bytes>,
    /// Bytes in `parts`.
    frozen: usize,
    /// The DATA frame ending `head` that more data of its stream may join.
    open_data: Option<OpenData>,
    /// Answers (`Out::Reply`) in the batch: they stop counting as waiting once written.
    replies: usize,
}

impl Batch {
    fn len(&self) -> usize {
        self.frozen + self.head.len()
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

    /// Writes everything gathered; the batch starts empty again, keeping its buffers.
    ///
    /// A batch of small frames only (every unary call, most streaming) is written straight
    /// from the buffer it was encoded into, which is then reused as it is: no part to cut off,
    /// count references to and queue.
    async fn write_to<W: AsyncWrite + Unpin>(&mut self, write: &mut W) -> io::Result<()> {
        if !self.parts.is_empty() {
            return write_all_parts(write, self.ready_parts()).await;
        }
        write.write_all(&self.head).await?;
        self.open_data = None;
        if self.head.capacity() > KEEP_CAPACITY {
            self.head = BytesMut::new();
        } else {
            self.head.clear();
        }
        Ok(())
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

    /// Encodes one queued item; `true` if it asks for the shutdown.
    ///
    /// DATA for the stream whose DATA frame ends the batch joins that frame instead of starting
    /// a new one, up to the peer's frame size: a stream's messages are one byte sequence, so the
    /// receiver handles a run of small messages as one frame. A large payload (DATA, or a unary
    /// request or reply ending an OPEN or CLOSE) is not copied: its frame's header goes into
    /// `head` and the payload itself becomes a part.
    fn encode(&mut self, conn: &Shared, out: Out) -> bool {
        let frame = match out {
            Out::Frame(frame) => frame,
            Out::Reply(frame) => {
                self.replies += 1;
                frame
            }
            Out::Shutdown => return true,
        };
        if let Frame::Data {
            id,
            end_stream,
            data,
        } = &frame
            && data.len() < ZERO_COPY
            && self.join_data(conn, *id, *end_stream, data)
        {
            return false;
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
        false
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
        test_client(max_frame_size, 1 << 20).0
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

    #[tokio::test]
    async fn partial_vectored_writes_resume_where_they_stopped() {
        let (mut a, mut b) = tokio::io::duplex(7); // a tiny pipe: every write is partial
        let mut parts: VecDeque<Bytes> = ["hello ", "vectored ", "world"]
            .into_iter()
            .map(Bytes::from)
            .collect();
        let writer = tokio::spawn(async move {
            write_all_parts(&mut a, &mut parts).await.unwrap();
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
