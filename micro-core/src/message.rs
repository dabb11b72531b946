//! Messages: MessagePack values (structs as maps), each preceded on the wire by its length.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};

use crate::Status;

/// Bytes of the length prefix in front of every message.
pub(crate) const PREFIX_LEN: usize = 4;

/// Encodes `value` as one message, length prefix included, ready to be a frame's payload.
///
/// Structs become MessagePack maps keyed by field name, so a field added later does not break an
/// older peer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, Status> {
    let mut buf = BytesMut::with_capacity(64);
    encode_into(&mut buf, value)?;
    Ok(buf.freeze())
}

/// Appends `value` as one message, length prefix included, to `buf`; returns the body's length.
/// On error `buf` is as it was.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    buf: &mut BytesMut,
    value: &T,
) -> Result<usize, Status> {
    let start = buf.len();
    buf.put_u32(0);
    let mut writer = std::mem::take(buf).writer();
    let result = rmp_serde::encode::write_named(&mut writer, value);
    *buf = writer.into_inner();
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

/// How deeply arrays and maps may nest in a message. rmp-serde's own limit (1024) lets a
/// 100,000-byte `[[[…]]]` recurse deep enough to overflow a 2 MiB worker stack in a debug build;
/// real messages nest a handful of levels.
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
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    T::deserialize(&mut deserializer(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
        label: String,
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
}
