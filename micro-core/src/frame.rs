//! Frames: the unit of the wire protocol after the handshake (see `docs/PROTOCOL.md`).
//!
//! Every frame is `length: u32 | stream_id: u32 | type: u8 | flags: u8 | payload`, all integers
//! big-endian, `length` counting everything after itself. [`FrameCodec`] cuts frames out of the
//! byte stream; [`Frame`] gives each type its fields.

mod codec;

pub(crate) use codec::FrameCodec;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Code, Metadata, Status};

/// Bytes of the fixed header after the length prefix: stream id, type, flags.
pub(crate) const HEADER_LEN: usize = 6;

/// Flag on OPEN and DATA: the sender sends nothing more on this stream.
pub(crate) const FLAG_END_STREAM: u8 = 0x1;
/// Flag on PING: this is the answer to a ping.
pub(crate) const FLAG_ACK: u8 = 0x1;

/// The frame type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FrameType {
    Open = 1,
    Data = 2,
    Close = 3,
    Cancel = 4,
    Credit = 5,
    Ping = 6,
    GoAway = 7,
}

/// One frame, decoded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Frame {
    /// Client → server: start a call. `data` holds the first messages (the arguments), so a
    /// unary call is one frame.
    Open {
        id: u32,
        end_stream: bool,
        method: Bytes,
        timeout: Option<Duration>,
        metadata: Metadata,
        data: Bytes,
    },
    /// Messages of a stream; `end_stream` half-closes the sender's side (client only).
    Data {
        id: u32,
        end_stream: bool,
        data: Bytes,
    },
    /// Server → client: the call's final status, after the last messages in `data`.
    Close {
        id: u32,
        status: Status,
        data: Bytes,
    },
    /// Client → server: abandon the call.
    Cancel { id: u32, code: Code },
    /// Flow control: the receiver may take `increment` more bytes (stream 0: the connection).
    Credit { id: u32, increment: u32 },
    /// Liveness check; the receiver answers with `ack` set and the same payload.
    Ping { ack: bool, payload: u64 },
    /// The sender will take no stream above `last_stream_id`; the connection is closing.
    GoAway {
        last_stream_id: u32,
        code: Code,
        reason: String,
    },
}

/// What is wrong with a frame that parsed as far as its header.
#[derive(Debug, PartialEq)]
pub(crate) enum FrameError {
    /// The peer broke the protocol; the connection must end.
    Protocol(String),
    /// The frame opens stream `id` but cannot be served (metadata too large); refuse that
    /// stream with `status` and keep the connection.
    Refuse {
        id: u32,
        status: Status,
        data_len: usize,
    },
}

fn protocol(msg: impl Into<String>) -> FrameError {
    FrameError::Protocol(msg.into())
}

impl Frame {
    /// Appends the frame, length prefix included, to `dst`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        let detached = self.encode_detaching(dst, usize::MAX);
        debug_assert!(detached.is_none());
    }

    /// Appends the frame to `dst` like [`encode`](Self::encode), except that a message payload
    /// (the data that ends OPEN, DATA and CLOSE frames) of at least `detach` bytes is not
    /// copied: the length prefix counts it, and it is returned for the caller to write right
    /// after `dst`'s bytes.
    pub(crate) fn encode_detaching(&self, dst: &mut BytesMut, detach: usize) -> Option<Bytes> {
        let start = dst.len();
        dst.put_u32(0); // length, patched below
        let empty = Bytes::new();
        let mut trailing = &empty;
        match self {
            Frame::Open {
                id,
                end_stream,
                method,
                timeout,
                metadata,
                data,
            } => {
                header(
                    dst,
                    *id,
                    FrameType::Open,
                    if *end_stream { FLAG_END_STREAM } else { 0 },
                );
                dst.put_u16(method.len() as u16);
                dst.put_slice(method);
                let micros =
                    timeout.map_or(0, |t| (t.as_micros().min(u64::MAX as u128) as u64).max(1));
                dst.put_u64(micros);
                dst.put_u32(metadata.encoded_len() as u32);
                for (key, value) in metadata.iter() {
                    dst.put_u16(key.len() as u16);
                    dst.put_slice(key.as_bytes());
                    dst.put_u32(value.len() as u32);
                    dst.put_slice(value.as_bytes());
                }
                trailing = data;
            }
            Frame::Data {
                id,
                end_stream,
                data,
            } => {
                header(
                    dst,
                    *id,
                    FrameType::Data,
                    if *end_stream { FLAG_END_STREAM } else { 0 },
                );
                trailing = data;
            }
            Frame::Close { id, status, data } => {
                header(dst, *id, FrameType::Close, 0);
                dst.put_u8(status.code() as u8);
                dst.put_u32(status.message().len() as u32);
                dst.put_slice(status.message().as_bytes());
                dst.put_u32(status.details().len() as u32);
                dst.put_slice(status.details());
                trailing = data;
            }
            Frame::Cancel { id, code } => {
                header(dst, *id, FrameType::Cancel, 0);
                dst.put_u8(*code as u8);
            }
            Frame::Credit { id, increment } => {
                header(dst, *id, FrameType::Credit, 0);
                dst.put_u32(*increment);
            }
            Frame::Ping { ack, payload } => {
                header(dst, 0, FrameType::Ping, if *ack { FLAG_ACK } else { 0 });
                dst.put_u64(*payload);
            }
            Frame::GoAway {
                last_stream_id,
                code,
                reason,
            } => {
                header(dst, 0, FrameType::GoAway, 0);
                dst.put_u32(*last_stream_id);
                dst.put_u8(*code as u8);
                dst.put_slice(reason.as_bytes());
            }
        }
        let detached = if trailing.len() >= detach {
            Some(trailing.clone())
        } else {
            dst.put_slice(trailing);
            None
        };
        let len = (dst.len() - start - 4 + detached.as_ref().map_or(0, Bytes::len)) as u32;
        dst[start..start + 4].copy_from_slice(&len.to_be_bytes());
        detached
    }

    /// Parses one frame: `raw` is everything after the length prefix.
    ///
    /// `max_metadata` bounds an OPEN frame's metadata block; a larger one refuses the stream.
    pub(crate) fn decode(mut raw: Bytes, max_metadata: usize) -> Result<Frame, FrameError> {
        if raw.len() < HEADER_LEN {
            return Err(protocol(format!(
                "frame of {} bytes is shorter than its header",
                raw.len()
            )));
        }
        let id = raw.get_u32();
        let kind = raw.get_u8();
        let flags = raw.get_u8();
        let mut p = raw;
        let frame = match kind {
            1 => {
                need_stream(id, "OPEN")?;
                let method_len = take_u16(&mut p, "OPEN method length")? as usize;
                let method = take_bytes(&mut p, method_len, "OPEN method")?;
                let micros = take_u64(&mut p, "OPEN timeout")?;
                let md_len = take_u32(&mut p, "OPEN metadata length")? as usize;
                if md_len > p.len() {
                    return Err(protocol("OPEN metadata runs past the end of the frame"));
                }
                if md_len > max_metadata {
                    let data_len = p.len() - md_len;
                    let status = Status::resource_exhausted(format!(
                        "call metadata of {md_len} bytes exceeds the limit of {max_metadata}"
                    ));
                    return Err(FrameError::Refuse {
                        id,
                        status,
                        data_len,
                    });
                }
                let md_block = p.split_to(md_len);
                let metadata = decode_metadata(md_block)?;
                Frame::Open {
                    id,
                    end_stream: flags & FLAG_END_STREAM != 0,
                    method,
                    timeout: (micros != 0).then(|| Duration::from_micros(micros)),
                    metadata,
                    data: p,
                }
            }
            2 => {
                need_stream(id, "DATA")?;
                Frame::Data {
                    id,
                    end_stream: flags & FLAG_END_STREAM != 0,
                    data: p,
                }
            }
            3 => {
                need_stream(id, "CLOSE")?;
                let code = Code::from_u8(take_u8(&mut p, "CLOSE code")?);
                let msg_len = take_u32(&mut p, "CLOSE message length")? as usize;
                let message = utf8(
                    &take_bytes(&mut p, msg_len, "CLOSE message")?,
                    "CLOSE message",
                )?;
                let details_len = take_u32(&mut p, "CLOSE details length")? as usize;
                let details = take_bytes(&mut p, details_len, "CLOSE details")?;
                Frame::Close {
                    id,
                    status: Status::with_details(code, message, details),
                    data: p,
                }
            }
            4 => {
                need_stream(id, "CANCEL")?;
                let code = Code::from_u8(take_u8(&mut p, "CANCEL code")?);
                exact_end(&p, "CANCEL")?;
                Frame::Cancel { id, code }
            }
            5 => {
                let increment = take_u32(&mut p, "CREDIT increment")?;
                exact_end(&p, "CREDIT")?;
                if increment == 0 {
                    return Err(protocol("CREDIT with an increment of 0"));
                }
                Frame::Credit { id, increment }
            }
            6 => {
                need_connection(id, "PING")?;
                let payload = take_u64(&mut p, "PING payload")?;
                exact_end(&p, "PING")?;
                Frame::Ping {
                    ack: flags & FLAG_ACK != 0,
                    payload,
                }
            }
            7 => {
                need_connection(id, "GOAWAY")?;
                let last_stream_id = take_u32(&mut p, "GOAWAY last stream id")?;
                let code = Code::from_u8(take_u8(&mut p, "GOAWAY code")?);
                let reason = utf8(&p, "GOAWAY reason")?;
                Frame::GoAway {
                    last_stream_id,
                    code,
                    reason,
                }
            }
            other => return Err(protocol(format!("unknown frame type {other}"))),
        };
        Ok(frame)
    }
}

fn header(dst: &mut BytesMut, id: u32, kind: FrameType, flags: u8) {
    dst.put_u32(id);
    dst.put_u8(kind as u8);
    dst.put_u8(flags);
}

fn need_stream(id: u32, what: &str) -> Result<(), FrameError> {
    if id == 0 {
        Err(protocol(format!("{what} frame on stream 0")))
    } else {
        Ok(())
    }
}

fn need_connection(id: u32, what: &str) -> Result<(), FrameError> {
    if id != 0 {
        Err(protocol(format!("{what} frame on stream {id}, not 0")))
    } else {
        Ok(())
    }
}

fn exact_end(p: &Bytes, what: &str) -> Result<(), FrameError> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(protocol(format!(
            "{what} frame has {} trailing bytes",
            p.len()
        )))
    }
}

fn take_u8(p: &mut Bytes, what: &str) -> Result<u8, FrameError> {
    if p.remaining() < 1 {
        return Err(truncated(what));
    }
    Ok(p.get_u8())
}

fn take_u16(p: &mut Bytes, what: &str) -> Result<u16, FrameError> {
    if p.remaining() < 2 {
        return Err(truncated(what));
    }
    Ok(p.get_u16())
}

fn take_u32(p: &mut Bytes, what: &str) -> Result<u32, FrameError> {
    if p.remaining() < 4 {
        return Err(truncated(what));
    }
    Ok(p.get_u32())
}

fn take_u64(p: &mut Bytes, what: &str) -> Result<u64, FrameError> {
    if p.remaining() < 8 {
        return Err(truncated(what));
    }
    Ok(p.get_u64())
}

fn take_bytes(p: &mut Bytes, len: usize, what: &str) -> Result<Bytes, FrameError> {
    if p.remaining() < len {
        return Err(truncated(what));
    }
    Ok(p.split_to(len))
}

fn truncated(what: &str) -> FrameError {
    protocol(format!("frame ends inside its {what}"))
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, FrameError> {
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| protocol(format!("{what} is not UTF-8")))
}

fn decode_metadata(mut p: Bytes) -> Result<Metadata, FrameError> {
    let mut metadata = Metadata::new();
    while p.has_remaining() {
        let key_len = take_u16(&mut p, "metadata key length")? as usize;
        let key = utf8(
            &take_bytes(&mut p, key_len, "metadata key")?,
            "metadata key",
        )?;
        let value_len = take_u32(&mut p, "metadata value length")? as usize;
        let value = utf8(
            &take_bytes(&mut p, value_len, "metadata value")?,
            "metadata value",
        )?;
        metadata.insert(key, value);
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: &Frame) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(
            len,
            buf.len() - 4,
            "length prefix counts the rest of the frame"
        );
        let decoded = Frame::decode(buf.freeze().slice(4..), 1 << 20).unwrap();
        assert_eq!(&decoded, frame);
    }

    #[test]
    fn a_detached_payload_follows_the_frame_unchanged() {
        let payload = Bytes::from(vec![9u8; 100]);
        let frames = [
            Frame::Open {
                id: 3,
                end_stream: true,
                method: Bytes::from_static(b"Say.hello"),
                timeout: None,
                metadata: [("k", "v")].into_iter().collect(),
                data: payload.clone(),
            },
            Frame::Data {
                id: 3,
                end_stream: false,
                data: payload.clone(),
            },
            Frame::Close {
                id: 3,
                status: Status::with_details(Code::Ok, "fine", Bytes::from_static(b"d")),
                data: payload.clone(),
            },
        ];
        for frame in frames {
            let mut whole = BytesMut::new();
            frame.encode(&mut whole);
            let mut head = BytesMut::new();
            assert_eq!(
                frame.encode_detaching(&mut head, 101),
                None,
                "under the size"
            );
            assert_eq!(head, whole);
            head.clear();
            let detached = frame.encode_detaching(&mut head, 100).expect("detached");
            assert_eq!(detached.as_ptr(), payload.as_ptr(), "not copied");
            assert_eq!(head.len() + detached.len(), whole.len());
            head.extend_from_slice(&detached);
            assert_eq!(head, whole, "{frame:?}");
        }
    }

    #[test]
    fn every_frame_type_round_trips() {
        let metadata: Metadata = [("a", "1"), ("b", "two")].into_iter().collect();
        round_trip(&Frame::Open {
            id: 7,
            end_stream: true,
            method: Bytes::from_static(b"Say.hello"),
            timeout: Some(Duration::from_millis(1500)),
            metadata,
            data: Bytes::from_static(b"\0\0\0\x01\xc0"),
        });
        round_trip(&Frame::Open {
            id: 9,
            end_stream: false,
            method: Bytes::from_static(b"S.m"),
            timeout: None,
            metadata: Metadata::new(),
            data: Bytes::new(),
        });
        round_trip(&Frame::Data {
            id: 3,
            end_stream: false,
            data: Bytes::from_static(b"xyz"),
        });
        round_trip(&Frame::Data {
            id: 3,
            end_stream: true,
            data: Bytes::new(),
        });
        round_trip(&Frame::Close {
            id: 5,
            status: Status::with_details(Code::NotFound, "gone", Bytes::from_static(b"\x01")),
            data: Bytes::from_static(b"tail"),
        });
        round_trip(&Frame::Cancel {
            id: 11,
            code: Code::DeadlineExceeded,
        });
        round_trip(&Frame::Credit {
            id: 0,
            increment: 65536,
        });
        round_trip(&Frame::Ping {
            ack: true,
            payload: 0xdead_beef,
        });
        round_trip(&Frame::GoAway {
            last_stream_id: 41,
            code: Code::Unavailable,
            reason: "bye".into(),
        });
    }

    #[test]
    fn open_header_layout_is_as_documented() {
        let mut buf = BytesMut::new();
        Frame::Open {
            id: 1,
            end_stream: true,
            method: Bytes::from_static(b"S.m"),
            timeout: Some(Duration::from_micros(2)),
            metadata: Metadata::new(),
            data: Bytes::from_static(b"\0\0\0\x01\xc0"),
        }
        .encode(&mut buf);
        let expected: &[u8] = &[
            0, 0, 0, 28, // length
            0, 0, 0, 1, 1, 1, // stream 1, OPEN, END_STREAM
            0, 3, b'S', b'.', b'm', // method
            0, 0, 0, 0, 0, 0, 0, 2, // timeout in µs
            0, 0, 0, 0, // metadata length
            0, 0, 0, 1, 0xc0, // one message: nil
        ];
        assert_eq!(&buf[..], expected);
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        let cases: &[&[u8]] = &[
            &[0, 0, 0],                                     // shorter than the header
            &[0, 0, 0, 1, 99, 0],                           // unknown type
            &[0, 0, 0, 0, 2, 0],                            // DATA on stream 0
            &[0, 0, 0, 1, 6, 0, 1, 2, 3],                   // PING on a stream, short payload
            &[0, 0, 0, 0, 5, 0, 0, 0, 0, 0],                // CREDIT of 0
            &[0, 0, 0, 1, 1, 0, 0, 9, b'x'],                // OPEN method runs past the end
            &[0, 0, 0, 1, 4, 0, 1, 2],                      // CANCEL with trailing bytes
            &[0, 0, 0, 1, 3, 0, 0, 0xff, 0xff, 0xff, 0xff], // CLOSE message past the end
        ];
        for raw in cases {
            match Frame::decode(Bytes::copy_from_slice(raw), 1024) {
                Err(FrameError::Protocol(_)) => {}
                other => panic!("{raw:?} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn oversized_metadata_refuses_only_the_stream() {
        let metadata: Metadata = [("k", "v".repeat(100))].into_iter().collect();
        let mut buf = BytesMut::new();
        Frame::Open {
            id: 3,
            end_stream: true,
            method: Bytes::from_static(b"S.m"),
            timeout: None,
            metadata,
            data: Bytes::from_static(b"12345"),
        }
        .encode(&mut buf);
        match Frame::decode(buf.freeze().slice(4..), 64) {
            Err(FrameError::Refuse {
                id: 3,
                status,
                data_len: 5,
            }) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
            }
            other => panic!("{other:?}"),
        }
    }
}
