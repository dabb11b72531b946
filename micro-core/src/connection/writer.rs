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
use crate::frame::{FLAG_END_STREAM, Frame, HEADER_LEN};

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
    let mut open_data = None;
    loop {
        let first = tokio::select! {
            biased;
            first = rx.recv() => first,
            _ = conn.closed.cancelled() => None,
        };
        let mut shutdown = match first {
            None => true,
            Some(out) => encode(&conn, out, &mut buf, &mut open_data),
        };
        while !shutdown && buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(out) => shutdown = encode(&conn, out, &mut buf, &mut open_data),
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
            open_data = None;
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

/// The last frame in the buffer, when it is a DATA frame that more data of its stream may join.
#[derive(Clone, Copy, Debug)]
struct OpenData {
    id: u32,
    /// Where its length prefix starts in the buffer.
    start: usize,
}

/// Offset of the flags byte from the start of a frame's length prefix.
const FLAGS_AT: usize = 4 + 4 + 1;

/// Encodes one queued item into `buf`; `true` if it asks for the shutdown.
///
/// DATA for the stream whose DATA frame ends the buffer joins that frame instead of starting a
/// new one, up to the peer's frame size: a stream's messages are one byte sequence, so the
/// receiver handles a run of small messages as one frame.
fn encode(conn: &Shared, out: Out, buf: &mut BytesMut, open_data: &mut Option<OpenData>) -> bool {
    let frame = match out {
        Out::Frame(frame) => frame,
        Out::Reply(frame) => {
            conn.queued_replies.fetch_sub(1, Ordering::AcqRel);
            frame
        }
        Out::Shutdown => return true,
    };
    if let Frame::Data {
        id,
        end_stream,
        data,
    } = &frame
        && let Some(last) = *open_data
        && last.id == *id
        && buf.len() - last.start - 4 + data.len() <= HEADER_LEN + conn.peer.max_frame_size as usize
    {
        buf.extend_from_slice(data);
        let len = (buf.len() - last.start - 4) as u32;
        buf[last.start..last.start + 4].copy_from_slice(&len.to_be_bytes());
        if *end_stream {
            buf[last.start + FLAGS_AT] |= FLAG_END_STREAM;
            *open_data = None;
        }
        return false;
    }
    let start = buf.len();
    frame.encode(buf);
    *open_data = match frame {
        Frame::Data {
            id,
            end_stream: false,
            ..
        } => Some(OpenData { id, start }),
        _ => None,
    };
    false
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::{Buf, Bytes};

    use super::*;
    use crate::config::Config;
    use crate::connection::Role;
    use crate::handshake::PeerSettings;

    fn conn(max_frame_size: u32) -> Arc<Shared> {
        let peer = PeerSettings {
            max_frame_size,
            max_message_size: 1 << 20,
            stream_window: 1 << 20,
            connection_window: 1 << 20,
        };
        Shared::new(Role::Client, Config::default(), peer, None).0
    }

    fn data(id: u32, end_stream: bool, len: usize) -> Out {
        Out::Frame(Frame::Data {
            id,
            end_stream,
            data: Bytes::from(vec![id as u8; len]),
        })
    }

    /// The frames in `buf`, decoded.
    fn frames(buf: &BytesMut) -> Vec<Frame> {
        let mut rest = Bytes::copy_from_slice(buf);
        let mut out = Vec::new();
        while rest.has_remaining() {
            let len = rest.get_u32() as usize;
            out.push(Frame::decode(rest.split_to(len), 1024).unwrap());
        }
        out
    }

    #[test]
    fn consecutive_data_of_a_stream_shares_one_frame() {
        let conn = conn(1024);
        let (mut buf, mut open) = (BytesMut::new(), None);
        for out in [
            data(1, false, 10),
            data(1, false, 20),
            data(1, true, 5),
            data(1, false, 1),
        ] {
            encode(&conn, out, &mut buf, &mut open);
        }
        let frames = frames(&buf);
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
        let (mut buf, mut open) = (BytesMut::new(), None);
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
            encode(&conn, out, &mut buf, &mut open);
        }
        let lens: Vec<usize> = frames(&buf)
            .iter()
            .map(|f| match f {
                Frame::Data { data, .. } => data.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(lens, [600, 600, 1, 0, 1]);
    }
}
