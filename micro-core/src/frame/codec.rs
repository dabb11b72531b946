//! Cuts length-prefixed frames out of a byte stream without trusting the length prefix.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::HEADER_LEN;

/// How far ahead of the bytes received the decoder reserves room at first. A length prefix only
/// says how much may come; memory follows what actually arrived (at most doubling it).
const RESERVE_AHEAD: usize = 16 * 1024;

/// Frames up to this size are copied out of the read buffer instead of split off it. A frame
/// split off shares the buffer until it is dropped, and a small frame is usually still held
/// (queued for its call) when the next read comes: the buffer could not be reused, and every
/// read of a unary call's frame cost a fresh 8 KiB buffer. Copying a few dozen bytes costs far
/// less than that allocation.
const COPY_UP_TO: usize = 1024;

/// A length-delimited frame decoder (`u32` big-endian prefix) for [`FramedRead`].
///
/// Unlike `LengthDelimitedCodec`, a large declared length does not reserve the whole frame up
/// front: a peer that announces 16 MiB and sends one byte costs this side kilobytes, not
/// megabytes.
///
/// [`FramedRead`]: tokio_util::codec::FramedRead
#[derive(Debug)]
pub(crate) struct FrameCodec {
    max_frame_len: usize,
    pending: Option<usize>,
}

impl FrameCodec {
    /// A decoder for frames whose payload (after the 6-byte header) is at most `max_payload`.
    pub(crate) fn new(max_payload: usize) -> FrameCodec {
        FrameCodec {
            max_frame_len: max_payload + HEADER_LEN,
            pending: None,
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        let len = match self.pending {
            Some(len) => len,
            None => {
                if src.len() < 4 {
                    return Ok(None);
                }
                let len = u32::from_be_bytes(src[..4].try_into().expect("4 bytes")) as usize;
                if len > self.max_frame_len {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "frame of {len} bytes exceeds the limit of {}",
                            self.max_frame_len
                        ),
                    ));
                }
                src.advance(4);
                self.pending = Some(len);
                len
            }
        };
        if src.len() >= len {
            self.pending = None;
            if len <= COPY_UP_TO {
                let frame = Bytes::copy_from_slice(&src[..len]);
                src.advance(len);
                return Ok(Some(frame));
            }
            return Ok(Some(src.split_to(len).freeze()));
        }
        let missing = len - src.len();
        src.reserve(missing.min(RESERVE_AHEAD.max(src.len())));
        Ok(None)
    }

    /// At the end of the stream, a frame begun and not finished is a torn connection, even when
    /// only its length prefix arrived (which `decode` has already taken out of the buffer, so
    /// tokio-util's default would see an empty buffer and report a clean end). Found by the
    /// `frame_decoder` fuzz target.
    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection ended in the middle of a frame",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_waits_for_partial_ones() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&[0, 0, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0, 7, 9][..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap(),
            &[1, 2, 3, 4, 5, 6][..]
        );
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[8, 7, 6, 5, 4, 3]);
        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap(),
            &[9, 8, 7, 6, 5, 4, 3][..]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn a_stream_that_ends_inside_a_frame_is_torn_even_right_after_its_prefix() {
        for torn in [&[0, 0, 0, 7][..], &[0, 0, 0, 7, 1, 2][..], &[0, 0][..]] {
            let mut codec = FrameCodec::new(100);
            let mut buf = BytesMut::from(torn);
            assert_eq!(codec.decode(&mut buf).unwrap(), None);
            let err = codec.decode_eof(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{torn:?}");
        }
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&[0, 0, 0, 6, 1, 2, 3, 4, 5, 6][..]);
        assert!(codec.decode_eof(&mut buf).unwrap().is_some());
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None, "a clean end");
    }

    #[test]
    fn small_frames_leave_the_read_buffer_reusable() {
        let mut codec = FrameCodec::new(1 << 20);
        let mut buf = BytesMut::with_capacity(64);
        let start = buf.as_ptr() as usize;
        let mut held = Vec::new();
        for round in 0..100u8 {
            buf.extend_from_slice(&[0, 0, 0, 3, round, 2, 3]);
            let frame = codec.decode(&mut buf).unwrap().unwrap();
            assert_eq!(frame, &[round, 2, 3][..]);
            // Frames are still held, as queued calls hold them, when the next read reserves.
            held.push(frame);
            buf.reserve(32);
            let offset = (buf.as_ptr() as usize).wrapping_sub(start);
            assert!(offset < 64, "round {round}: a new buffer");
        }
        buf.extend_from_slice(&2000u32.to_be_bytes());
        buf.extend_from_slice(&[7u8; 2000]);
        let at = buf.as_ptr();
        let frame = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            frame.as_ptr(),
            at.wrapping_add(4),
            "a large frame is not copied"
        );
    }

    #[test]
    fn rejects_a_length_over_the_limit_before_reading_the_body() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_large_declared_length_reserves_little() {
        let mut codec = FrameCodec::new(16 << 20);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(16u32 << 20).to_be_bytes());
        buf.extend_from_slice(&[0]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(
            buf.capacity() <= 2 * RESERVE_AHEAD,
            "reserved {}",
            buf.capacity()
        );
    }
}
