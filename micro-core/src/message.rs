//! Messages: MessagePack values (structs as maps), each preceded on the wire by its length.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};

use crate::Status;

/// Bytes of the length prefix in front of every message.
pub(crate) const PREFIX_LEN: usize = 4;

/// The body length the message at the start of `wire` declares, once its prefix is there.
#[inline]
pub(crate) fn body_len(wire: &[u8]) -> Option<u32> {
    wire.first_chunk::<PREFIX_LEN>()
        .map(|prefix| u32::from_be_bytes(*prefix))
}

/// Encodes `value` as one message, length prefix included, ready to be a frame's payload.
///
/// Structs become MessagePack maps keyed by field name, so a field added later does not break an
/// older peer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, Status> {
    SCRATCH.with(|scratch| {
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            // A `Serialize` impl that encodes another message meanwhile: a buffer of its own.
            let mut buf = BytesMut::new();
            encode_into(&mut buf, value)?;
            return Ok(buf.freeze());
        };
        scratch.clear();
        encode_into(&mut scratch, value)?;
        if scratch.len() <= COPY_UP_TO {
            // One allocation of the exact size; freezing a buffer with room to spare would
            // cost a second one (`Bytes` must record the spare capacity apart).
            Ok(Bytes::copy_from_slice(&scratch))
        } else {
            // A large message keeps the buffer it was encoded into, uncopied.
            Ok(std::mem::replace(&mut *scratch, BytesMut::with_capacity(SCRATCH_START)).freeze())
        }
    })
}

/// Messages up to this size are encoded into the thread's scratch buffer and copied out.
const COPY_UP_TO: usize = 4096;
/// What the scratch buffer starts with.
const SCRATCH_START: usize = 1024;

thread_local! {
    /// Where [`encode`] writes small messages: reused, so a unary call's message costs one
    /// exact-size allocation.
    static SCRATCH: std::cell::RefCell<BytesMut> =
        std::cell::RefCell::new(BytesMut::with_capacity(SCRATCH_START));
}

/// Appends `value` as one message, length prefix included, to `buf`; returns the body's length.
/// On error `buf` is as it was.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    buf: &mut BytesMut,
    value: &T,
) -> Result<usize, Status> {
    let start = buf.len();
    buf.put_u32(0);
    let result = rmp_serde::encode::write_named(&mut Appender(buf), value);
    if let Err(err) = result {
        buf.truncate(start);
        return Err(Status::internal(format!(
            "failed to encode a message: {err}"
        )));
    }
    let len = buf.len() - start - PREFIX_LEN;
    buf[start..start + PREFIX_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(len)
}

/// `std::io::Write` for a `BytesMut`, appending each write whole. MessagePack encoding writes
/// a few bytes at a time; `bytes`' own `Writer` copies each write through the generic `BufMut`
/// chunk loop, which cost a W3 message 170 more instructions (callgrind) than this.
struct Appender<'a>(&'a mut BytesMut);

impl std::io::Write for Appender<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How deeply arrays, maps and extension values may nest in a message. rmp-serde counts depth
/// only for some paths (not through enums, which nest as maps), and its own limit (1024) is
/// deep enough to overflow a 2 MiB worker stack in a debug build; so micro checks the nesting
/// itself, without recursion, before decoding. Real messages nest a handful of levels.
pub(crate) const MAX_DEPTH: usize = 100;

/// A MessagePack deserializer over `body` with micro's nesting limit.
pub(crate) fn deserializer(
    body: &[u8],
) -> rmp_serde::Deserializer<rmp_serde::decode::ReadRefReader<'_, [u8]>> {
    let mut de = rmp_serde::Deserializer::from_read_ref(body);
    de.set_max_depth(MAX_DEPTH);
    de
}

/// Decodes one message body (without its prefix).
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    check_depth(body)?;
    T::deserialize(&mut deserializer(body)).map_err(DecodeError::Invalid)
}

/// Why a message body did not decode.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Nested deeper than [`MAX_DEPTH`], or cut short inside the nesting.
    TooDeep(String),
    /// Not the expected type.
    Invalid(rmp_serde::decode::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooDeep(why) => f.write_str(why),
            DecodeError::Invalid(err) => err.fmt(f),
        }
    }
}

/// Refuses a body whose arrays, maps and extensions nest deeper than [`MAX_DEPTH`], walking its
/// markers with an explicit stack. Each nesting level takes at least one byte, so bodies no
/// longer than the limit are not walked.
pub(crate) fn check_depth(body: &[u8]) -> Result<(), DecodeError> {
    if body.len() <= MAX_DEPTH {
        return Ok(());
    }
    let too_deep =
        || DecodeError::TooDeep(format!("the message nests deeper than {MAX_DEPTH} levels"));
    // Values still to read in each open container; the outermost "container" holds the body.
    let mut open: Vec<u64> = vec![1];
    let mut at = 0usize;
    while let Some(left) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        *left -= 1;
        let Some(&marker) = body.get(at) else {
            // Truncated: the decoder reports it precisely.
            return Ok(());
        };
        at += 1;
        let be = |n: usize, at: usize| -> Option<u64> {
            body.get(at..at + n)
                .map(|b| b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
        };
        // (bytes of length field, elements per entry) for containers; bytes to skip otherwise.
        let (skip, nested) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, None),
            0x80..=0x8f => (0, Some(u64::from(marker & 0x0f) * 2)),
            0x90..=0x9f => (0, Some(u64::from(marker & 0x0f))),
            0xa0..=0xbf => ((marker & 0x1f) as usize, None),
            0xcc | 0xd0 => (1, None),
            0xcd | 0xd1 => (2, None),
            0xca | 0xce | 0xd2 => (4, None),
            0xcb | 0xcf | 0xd3 => (8, None),
            0xd4 => (2, None),
            0xd5 => (3, None),
            0xd6 => (5, None),
            0xd7 => (9, None),
            0xd8 => (17, None),
            0xc4 | 0xd9 => (1 + be(1, at).unwrap_or(0) as usize, None),
            0xc5 | 0xda => (2 + be(2, at).unwrap_or(0) as usize, None),
            0xc6 | 0xdb => (4 + be(4, at).unwrap_or(0) as usize, None),
            0xc7 => (2 + be(1, at).unwrap_or(0) as usize, None),
            0xc8 => (3 + be(2, at).unwrap_or(0) as usize, None),
            0xc9 => (5 + be(4, at).unwrap_or(0) as usize, None),
            0xdc => (2, be(2, at)),
            0xdd => (4, be(4, at)),
            0xde => (2, be(2, at).map(|n| n * 2)),
            0xdf => (4, be(4, at).map(|n| n * 2)),
            0xc1 => return Ok(()), // never used: the decoder rejects it
        };
        at = at.saturating_add(skip);
        if let Some(entries) = nested {
            if open.len() > MAX_DEPTH {
                return Err(too_deep());
            }
            open.push(entries);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
        label: String,
    }

    /// Encodes another message while being encoded.
    struct Nested(Vec<u8>);

    impl serde::Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let inner = encode(&self.0).map_err(serde::ser::Error::custom)?;
            s.serialize_bytes(&inner)
        }
    }

    #[test]
    fn small_large_and_nested_messages_encode_alike() {
        for len in [0, 10, COPY_UP_TO, COPY_UP_TO + 1, 100_000] {
            let value = vec![3u8; len];
            let msg = encode(&value).unwrap();
            let mut plain = BytesMut::new();
            encode_into(&mut plain, &value).unwrap();
            assert_eq!(msg, plain, "{len} bytes");
            let nested = encode(&Nested(value.clone())).unwrap();
            assert!(nested.ends_with(&plain), "{len} bytes, nested");
        }
    }

    #[test]
    fn structs_are_maps_with_field_names() {
        let msg = encode(&Point {
            x: 1,
            label: "a".into(),
        })
        .unwrap();
        assert_eq!(&msg[..4], &((msg.len() - 4) as u32).to_be_bytes());
        // fixmap of 2, "x": 1, "label": "a"
        assert_eq!(&msg[4..], b"\x82\xa1x\x01\xa5label\xa1a");
        assert_eq!(
            decode::<Point>(&msg[4..]).unwrap(),
            Point {
                x: 1,
                label: "a".into()
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored_so_old_peers_read_new_messages() {
        #[derive(serde::Serialize)]
        struct PointV2 {
            x: i32,
            label: String,
            added: bool,
        }
        let msg = encode(&PointV2 {
            x: 5,
            label: "b".into(),
            added: true,
        })
        .unwrap();
        assert_eq!(
            decode::<Point>(&msg[4..]).unwrap(),
            Point {
                x: 5,
                label: "b".into()
            }
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // only ever decoded
    enum Expr {
        Neg(Box<Expr>),
        Lit(u8),
    }

    fn enum_bomb(levels: usize) -> Vec<u8> {
        let mut body = b"\x81\xa3Neg".repeat(levels);
        body.extend_from_slice(b"\x81\xa3Lit\x00");
        body
    }

    #[test]
    fn nesting_through_enums_counts_too() {
        assert!(decode::<Expr>(&enum_bomb(10)).is_ok());
        assert!(matches!(
            decode::<Expr>(&enum_bomb(1000)),
            Err(DecodeError::TooDeep(_))
        ));
    }

    #[test]
    fn a_recursive_enum_bomb_does_not_overflow_a_worker_stack() {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| assert!(decode::<Expr>(&enum_bomb(100_000)).is_err()))
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn the_depth_walk_skips_every_kind_of_value() {
        // A body longer than the limit, with each marker family, nested 3 deep: accepted.
        let mut body = vec![0x93]; // array of 3
        body.extend_from_slice(b"\xc4\x03abc"); // bin8
        body.extend_from_slice(b"\xd9\x02hi"); // str8
        // [fixext4, map16 {"k": nil}]
        body.extend_from_slice(&[
            0x92, 0xd6, 0x01, 1, 2, 3, 4, 0xde, 0x00, 0x01, 0xa1, b'k', 0xc0,
        ]);
        let mut padded = vec![0xdc, 0x00, 0x02]; // array16 of 2: [body, "<long string>"]
        padded.extend_from_slice(&body);
        padded.push(0xda);
        padded.extend_from_slice(&200u16.to_be_bytes());
        padded.extend_from_slice(&[b'x'; 200]);
        assert!(padded.len() > MAX_DEPTH);
        assert!(check_depth(&padded).is_ok());
        // the same shape nested past the limit is refused
        let mut deep = vec![0x91; MAX_DEPTH + 1];
        deep.push(0xc0);
        assert!(matches!(check_depth(&deep), Err(DecodeError::TooDeep(_))));
    }
}
