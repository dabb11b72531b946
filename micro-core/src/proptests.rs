//! Property tests: the frame and message layers on arbitrary input.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use crate::frame::{Frame, FrameCodec};
use crate::stream::inbound::{Inbound, InboundError};
use crate::{Code, Metadata, Status};

fn code() -> impl Strategy<Value = Code> {
    (0u8..=16).prop_map(Code::from_u8)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn frame() -> impl Strategy<Value = Frame> {
    let id = 1u32..=i32::MAX as u32;
    let metadata = proptest::collection::vec(("[a-z-]{1,12}", ".{0,20}"), 0..4)
        .prop_map(|pairs| pairs.into_iter().collect::<Metadata>());
    prop_oneof![
        (
            id.clone(),
            any::<bool>(),
            "[A-Za-z]{1,8}\\.[a-z_]{1,12}",
            proptest::option::of(1u64..u64::MAX >> 8),
            metadata,
            bytes(64)
        )
            .prop_map(
                |(id, end_stream, method, micros, metadata, data)| Frame::Open {
                    id,
                    end_stream,
                    method: Bytes::from(method),
                    timeout: micros.map(Duration::from_micros),
                    metadata,
                    data,
                }
            ),
        (id.clone(), any::<bool>(), bytes(64)).prop_map(|(id, end_stream, data)| Frame::Data {
            id,
            end_stream,
            data
        }),
        (id.clone(), code(), ".{0,30}", bytes(16), bytes(64)).prop_map(
            |(id, code, message, details, data)| Frame::Close {
                id,
                status: Status::with_details(code, message, details),
                data,
            }
        ),
        (id, code()).prop_map(|(id, code)| Frame::Cancel { id, code }),
        (0u32..=i32::MAX as u32, 1u32..)
            .prop_map(|(id, increment)| Frame::Credit { id, increment }),
        (any::<bool>(), any::<u64>()).prop_map(|(ack, payload)| Frame::Ping { ack, payload }),
        (0u32..=i32::MAX as u32, code(), ".{0,30}").prop_map(|(last_stream_id, code, reason)| {
            Frame::GoAway {
                last_stream_id,
                code,
                reason,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn every_frame_round_trips_through_the_codec(frames in proptest::collection::vec(frame(), 1..8)) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut wire);
        }
        let mut codec = FrameCodec::new(1 << 20);
        for frame in &frames {
            let raw = codec.decode(&mut wire).unwrap().expect("a whole frame is there");
            prop_assert_eq!(&Frame::decode(raw, 1 << 20).unwrap(), frame);
        }
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut codec = FrameCodec::new(256);
        let mut buf = BytesMut::from(&input[..]);
        while let Ok(Some(raw)) = codec.decode(&mut buf) {
            let _ = Frame::decode(raw, 64);
        }
        prop_assert!(buf.capacity() <= 64 * 1024, "reserved {}", buf.capacity());
        let _ = Frame::decode(Bytes::from(input.clone()), 64);
        let _ = crate::message::decode::<(String, Vec<i64>, Option<bool>)>(&input);
        let _ = <(String, u8) as crate::args::DecodeArgs>::decode_args(&["a", "b"], &input);
    }

    #[test]
    fn messages_cut_anywhere_come_out_whole_and_in_order(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
        cuts in proptest::collection::vec(1usize..200, 1..40),
    ) {
        let mut wire = Vec::new();
        for body in &bodies {
            wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        let window = 1024u32;
        let mut inbound = Inbound::new(window, 1024);
        let mut out = Vec::new();
        let (mut sent, mut credit, mut cut) = (0usize, window as usize, cuts.iter().cycle());
        inbound.wait();
        while sent < wire.len() {
            let n = (*cut.next().unwrap()).min(credit).min(wire.len() - sent);
            prop_assert!(n > 0, "stalled at {} of {} bytes", sent, wire.len());
            inbound.push(Bytes::copy_from_slice(&wire[sent..sent + n])).unwrap();
            sent += n;
            credit -= n;
            while let Some((body, _)) = inbound.pop() {
                out.push(body.to_vec());
            }
            inbound.wait();
            credit += inbound.take_grant().unwrap_or(0) as usize;
        }
        prop_assert_eq!(out, bodies);
        prop_assert!(!inbound.mid_message());
    }

    #[test]
    fn no_sequence_of_pushes_exceeds_the_window(chunks in proptest::collection::vec(1usize..400, 1..20)) {
        let mut inbound = Inbound::new(1000, 1 << 20);
        let mut taken = 0usize;
        for len in chunks {
            match inbound.push(Bytes::from(vec![0u8; len])) {
                Ok(_) => taken += len,
                Err(InboundError::FlowControl { available, .. }) => prop_assert_eq!(available as usize, 1000 - taken),
                Err(other) => prop_assert!(false, "{:?}", other),
            }
            prop_assert!(taken <= 1000);
        }
    }
}
