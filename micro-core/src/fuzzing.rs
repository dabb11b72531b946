//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, off by default; see
//! `docs/FUZZING.md`). Not part of the public API.
//!
//! Each function takes arbitrary bytes, drives one of the crate's private decoders the way a
//! connection drives it, and panics if an invariant breaks: a panic is what the fuzzer reports.
//! Inputs that merely fail to decode are fine; the decoders must reject them without panicking,
//! without allocating on the strength of a length field, and consistently.

use std::collections::BTreeMap;
use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::codec::Decoder;

use crate::args::{DecodeArgs, EncodeArgs};
use crate::config::Config;
use crate::frame::{Frame, FrameCodec, FrameError, HEADER_LEN};
use crate::handshake::{self, MAGIC, PREFACE_LEN, VERSION};
use crate::message::{self, DecodeError, MAX_DEPTH, PREFIX_LEN};
use crate::stream::inbound::{Inbound, InboundError};

/// The read buffer a connection's reader starts with (`connection/reader.rs`).
const READ_BUFFER: usize = 8 * 1024;

/// Chunk sizes drawn from a one-byte seed: how a transport might deliver a byte stream.
///
/// Seed 0 delivers everything at once; otherwise sizes are pseudo-random, up to 8 bytes, 64
/// bytes, 1 KiB or 16 KiB depending on the seed's low bits.
#[derive(Debug)]
struct Chunks {
    state: u32,
    max: usize,
}

impl Chunks {
    fn new(seed: u8) -> Chunks {
        let max = match seed {
            0 => usize::MAX,
            s => [8, 64, 1024, 16 * 1024][(s & 3) as usize],
        };
        Chunks {
            state: u32::from(seed).wrapping_mul(0x9e37_79b9) | 1,
            max,
        }
    }

    fn next(&mut self) -> usize {
        if self.max == usize::MAX {
            return usize::MAX;
        }
        // xorshift32
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + self.state as usize % self.max
    }
}

/// The frame decoder as a connection's reader runs it.
///
/// Input: `[settings, chunk_seed, stream…]`. `settings` picks the frame limit (1 KiB … 16 MiB)
/// and the metadata limit; the stream is delivered to a [`FrameCodec`] in chunks drawn from
/// `chunk_seed`, through a `BytesMut` that starts at the reader's 8 KiB and only ever reads into
/// its spare capacity, as `FramedRead` does; the end of the input is the end of the stream.
/// Every frame cut out is then parsed with `Frame::decode`.
///
/// Asserts: the frames cut out are exactly the input's length-prefixed records, in order; a
/// codec error happens only on a length prefix above the limit; the buffer's capacity stays
/// within 64 KiB plus four times the bytes delivered, whatever length a prefix declares; a
/// frame that parses re-encodes to an equal frame; a refused OPEN names a stream and a data
/// length within the frame.
pub fn frame_codec(input: &[u8]) {
    let [settings, seed, stream @ ..] = input else {
        return;
    };
    let max_payload = [1024, 16 << 10, 1 << 20, 16 << 20][(settings & 3) as usize];
    let max_metadata = [16 << 10, 0, 64, u32::MAX as usize][((settings >> 2) & 3) as usize];
    let mut codec = FrameCodec::new(max_payload);
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut chunks = Chunks::new(*seed);
    let (mut fed, mut consumed) = (0usize, 0usize);
    let mut delivered = 0usize; // bytes the transport has handed over (may exceed `fed`)
    loop {
        // Decode whatever the buffer holds.
        loop {
            let decoded = codec.decode(&mut buf);
            assert_capacity(&buf, fed);
            match decoded {
                Ok(Some(raw)) => {
                    consumed = check_record(stream, consumed, &raw);
                    frame_payload(raw, max_metadata);
                }
                Ok(None) => break,
                Err(err) => {
                    check_codec_error(&err, stream, consumed, max_payload);
                    return;
                }
            }
        }
        if fed == stream.len() {
            break;
        }
        if delivered == fed {
            delivered = fed.saturating_add(chunks.next()).min(stream.len());
        }
        // One read: what the transport has, at most the buffer's spare room.
        buf.reserve(1);
        let n = (delivered - fed).min(buf.capacity() - buf.len());
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        assert_capacity(&buf, fed);
    }
    // End of stream: a partial frame left over is an error, not a frame.
    match codec.decode_eof(&mut buf) {
        Ok(Some(raw)) => {
            consumed = check_record(stream, consumed, &raw);
            frame_payload(raw, max_metadata);
            assert_eq!(consumed, stream.len(), "decode_eof left bytes unreported");
        }
        Ok(None) => assert_eq!(
            consumed,
            stream.len(),
            "bytes vanished at the end: {consumed} of {} reported",
            stream.len()
        ),
        Err(err) => assert!(
            err.kind() == io::ErrorKind::InvalidData || consumed < stream.len(),
            "end-of-stream error {err} with nothing left over"
        ),
    }
}

/// The buffer's memory follows the bytes that arrived, never a declared length.
fn assert_capacity(buf: &BytesMut, fed: usize) {
    let bound = 64 * 1024 + 4 * fed;
    assert!(
        buf.capacity() <= bound,
        "the read buffer reserved {} bytes after receiving {fed} (bound {bound})",
        buf.capacity()
    );
}

/// `raw` must be the record at `consumed`: its length prefix, then exactly those bytes.
fn check_record(stream: &[u8], consumed: usize, raw: &Bytes) -> usize {
    let prefix = stream
        .get(consumed..consumed + 4)
        .expect("a frame without its length prefix in the input");
    assert_eq!(
        u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize,
        raw.len(),
        "frame length differs from its prefix at offset {consumed}"
    );
    let end = consumed + 4 + raw.len();
    assert_eq!(
        &stream[consumed + 4..end],
        &raw[..],
        "frame bytes differ at offset {consumed}"
    );
    end
}

/// The codec may only fail on a length prefix over the limit, and must say so.
fn check_codec_error(err: &io::Error, stream: &[u8], consumed: usize, max_payload: usize) {
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let prefix = stream
        .get(consumed..consumed + 4)
        .expect("a codec error before a whole length prefix");
    let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
    assert!(
        len > max_payload + HEADER_LEN,
        "refused a frame of {len} bytes under the limit {max_payload}: {err}"
    );
}

/// Parses one frame (everything after its length prefix) as the reader does, and checks that
/// what parses re-encodes to an equal frame.
fn frame_payload(raw: Bytes, max_metadata: usize) {
    let kind = raw.get(4).copied();
    let len = raw.len();
    match Frame::decode(raw, max_metadata) {
        Ok(frame) => {
            let mut out = BytesMut::new();
            frame.encode(&mut out);
            let prefix = u32::from_be_bytes(out[..4].try_into().expect("4 bytes")) as usize;
            assert_eq!(prefix, out.len() - 4, "encoded length prefix");
            let again = Frame::decode(out.freeze().slice(4..), usize::MAX)
                .unwrap_or_else(|err| panic!("{frame:?} re-encoded does not decode: {err:?}"));
            assert_eq!(again, frame, "a decoded frame does not survive re-encoding");
        }
        Err(FrameError::Refuse { id, data_len, .. }) => {
            assert_eq!(kind, Some(1), "only an OPEN frame is refused");
            assert_ne!(id, 0, "refused stream 0");
            assert!(data_len <= len, "refused data of {data_len} in {len} bytes");
        }
        Err(FrameError::Protocol(reason)) => assert!(!reason.is_empty()),
    }
}

/// The handshake: the preface check, and both halves of the exchange over an in-memory pipe.
///
/// Input: the bytes the peer sends. Asserts: `parse` accepts exactly the prefaces that have the
/// magic, version 1 and usable limits, and an accepted preface round-trips through the encoder;
/// the server half answers a whole 24-byte preface with its own, even a wrong one, and says
/// nothing to less; the client half sends its preface first; both report what `parse` says, and
/// a peer that sends fewer than 24 bytes as an unexpected end of stream.
pub fn handshake(input: &[u8]) {
    let config = Config::default();
    let ours = handshake::preface(&config);
    let expected = input.first_chunk::<PREFACE_LEN>().map(|bytes| {
        let parsed = handshake::parse(bytes);
        check_parse(bytes, &parsed);
        parsed
    });
    let (server_result, server_wrote) = futures::executor::block_on(async {
        let (mut near, mut far) = pipe(input).await;
        let result = handshake::server(&mut near, &config).await;
        (result, written(near, &mut far).await)
    });
    let (client_result, client_wrote) = futures::executor::block_on(async {
        let (mut near, mut far) = pipe(input).await;
        let result = handshake::client(&mut near, &config).await;
        (result, written(near, &mut far).await)
    });
    assert_eq!(&client_wrote[..], &ours[..], "the client's preface");
    match &expected {
        None => assert!(server_wrote.is_empty(), "answered an incomplete preface"),
        Some(_) => assert_eq!(&server_wrote[..], &ours[..], "the server's answer"),
    }
    for result in [server_result, client_result] {
        match (&expected, result) {
            (None, Err(err)) => assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}"),
            (Some(Ok(settings)), Ok(got)) => assert_eq!(&got, settings),
            (Some(Err(msg)), Err(err)) => {
                assert_eq!(err.kind(), io::ErrorKind::InvalidData);
                assert_eq!(&err.to_string(), msg);
            }
            (expected, got) => panic!("parse says {expected:?}, the handshake {got:?}"),
        }
    }
}

/// A pipe whose far end has sent `input` and closed its sending side; room for everything, so
/// neither end ever waits on the other.
async fn pipe(input: &[u8]) -> (DuplexStream, DuplexStream) {
    let (near, mut far) = tokio::io::duplex(input.len() + 2 * PREFACE_LEN);
    far.write_all(input).await.expect("the pipe has room");
    far.shutdown().await.expect("shutting an open pipe");
    (near, far)
}

/// Everything `near` wrote to `far`, once `near` is gone.
async fn written(near: DuplexStream, far: &mut DuplexStream) -> Vec<u8> {
    drop(near);
    let mut wrote = Vec::new();
    far.read_to_end(&mut wrote)
        .await
        .expect("reading a closed pipe");
    wrote
}

/// `parse` agrees with the rules of `docs/PROTOCOL.md` §2.
fn check_parse(bytes: &[u8; PREFACE_LEN], parsed: &Result<handshake::PeerSettings, String>) {
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let valid = bytes[..4] == MAGIC
        && u16::from_be_bytes([bytes[4], bytes[5]]) == VERSION
        && word(8) >= 1024
        && word(16) >= 1
        && word(20) >= 1;
    match parsed {
        Ok(settings) => {
            assert!(valid, "accepted {bytes:02x?}");
            let config = Config {
                max_frame_size: settings.max_frame_size,
                max_message_size: settings.max_message_size,
                stream_window: settings.stream_window,
                connection_window: settings.connection_window,
                ..Config::default()
            };
            let encoded = handshake::preface(&config);
            // Identical but for the reserved flags, which the parser ignores.
            assert_eq!(encoded[..6], bytes[..6]);
            assert_eq!(encoded[8..], bytes[8..]);
            assert_eq!(handshake::parse(&encoded).as_ref(), Ok(settings));
        }
        Err(msg) => assert!(!valid && !msg.is_empty(), "refused {bytes:02x?}: {msg}"),
    }
}

/// A struct using every shape `docs/PROTOCOL.md` §4.2 lists.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sample {
    id: u64,
    delta: i32,
    name: String,
    ratio: f64,
    flag: bool,
    letter: Option<char>,
    tags: Vec<String>,
    bytes: Vec<u8>,
    map: BTreeMap<String, i64>,
    unit: (),
    pair: (u8, String),
    kind: Kind,
    big: Option<u128>,
    small: Option<i128>,
    next: Option<Box<Sample>>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum Kind {
    Plain,
    Wrapped(i64),
    Tuple(u8, u8),
    Named { a: String, b: Option<u16> },
}

thread_local! {
    /// Deepest [`Tracked`] nesting reached while decoding the current input.
    static DEPTH: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// A recursive enum whose decoding recurses through enum variants (which rmp-serde does not
/// count towards its own depth limit) and records how deep it went.
#[derive(Debug, Serialize, Deserialize)]
enum Expr {
    Lit(i64),
    Neg(Tracked),
    Add(Tracked, Tracked),
    List(Vec<Tracked>),
    Nil,
}

/// An [`Expr`] that counts the recursion depth of its decoding.
#[derive(Debug, Serialize)]
struct Tracked(Box<Expr>);

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Tracked, D::Error> {
        DEPTH.with(|depth| {
            let (now, max) = depth.get();
            depth.set((now + 1, max.max(now + 1)));
        });
        let expr = Expr::deserialize(d);
        DEPTH.with(|depth| {
            let (now, max) = depth.get();
            depth.set((now - 1, max));
        });
        expr.map(|e| Tracked(Box::new(e)))
    }
}

/// Message bodies through `message::decode`, as a handler's arguments and request items are.
///
/// Input: `[selector, body…]`. The selector picks the type: anything (`IgnoredAny`), a struct
/// with every documented shape, a recursive enum, or a tuple. Asserts: a body the nesting check
/// refuses never decodes; a recursive enum never recurses deeper than the nesting limit allows;
/// a decoded value re-encodes to a message that decodes to the same encoding again.
pub fn message(input: &[u8]) {
    let [selector, body @ ..] = input else {
        return;
    };
    let too_deep = matches!(message::check_depth(body), Err(DecodeError::TooDeep(_)));
    match selector % 4 {
        0 => {
            let decoded = message::decode::<IgnoredAny>(body);
            check_refused(too_deep, &decoded);
        }
        1 => {
            let decoded = message::decode::<Sample>(body);
            check_refused(too_deep, &decoded);
            if let Ok(value) = decoded {
                round_trip(&value);
            }
        }
        2 => {
            DEPTH.with(|depth| depth.set((0, 0)));
            let decoded = message::decode::<Tracked>(body);
            let (now, max) = DEPTH.with(std::cell::Cell::get);
            assert_eq!(now, 0, "unbalanced depth count");
            assert!(
                max <= MAX_DEPTH + 1,
                "decoding recursed {max} enum levels, over the nesting limit of {MAX_DEPTH}"
            );
            check_refused(too_deep, &decoded);
            if let Ok(value) = decoded {
                let msg = message::encode(&value).expect("a decoded value encodes");
                message::decode::<Tracked>(&msg[PREFIX_LEN..]).expect("re-decodes");
            }
        }
        _ => {
            let decoded = message::decode::<(String, Vec<i64>, Option<bool>)>(body);
            check_refused(too_deep, &decoded);
            if let Ok(value) = decoded {
                round_trip(&value);
            }
        }
    }
}

/// A body the nesting check refuses must not decode, and must be refused for its nesting.
fn check_refused<T>(too_deep: bool, decoded: &Result<T, DecodeError>) {
    if too_deep {
        assert!(
            matches!(decoded, Err(DecodeError::TooDeep(_))),
            "a body nested too deep was not refused for it"
        );
    }
}

/// `value` encodes, and its encoding decodes to a value with the same encoding.
fn round_trip<T: Serialize + serde::de::DeserializeOwned + std::fmt::Debug>(value: &T) {
    let first = message::encode(value).expect("a decoded value encodes");
    let len = u32::from_be_bytes(first[..PREFIX_LEN].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, first.len() - PREFIX_LEN, "message length prefix");
    let again: T = message::decode(&first[PREFIX_LEN..])
        .unwrap_or_else(|err| panic!("{value:?} encoded does not decode: {err}"));
    let second = message::encode(&again).expect("encodes");
    assert_eq!(first, second, "{value:?} changes when re-encoded");
}

/// A handler's plain arguments through `DecodeArgs`, as the generated code decodes them.
///
/// Input: `[selector, body…]`: no argument, one, three (with an `Option`), or two `Option`s.
/// Asserts: decoded arguments re-encode (as the client encodes them) to arguments that decode
/// to the same values; a multi-argument decode succeeds only on a map.
pub fn args(input: &[u8]) {
    let [selector, body @ ..] = input else {
        return;
    };
    const THREE: &[&str] = &["name", "count", "tags"];
    const TWO: &[&str] = &["x", "y"];
    match selector % 4 {
        0 => {
            let _ = <()>::decode_args(&[], body);
        }
        1 => {
            if let Ok(value) = <(String,)>::decode_args(&["name"], body) {
                args_round_trip(&["name"], &value);
            }
        }
        2 => {
            if let Ok(value) = <(String, i64, Option<Vec<String>>)>::decode_args(THREE, body) {
                assert_is_map(body);
                args_round_trip(THREE, &value);
            }
        }
        _ => {
            if let Ok(value) = <(Option<u8>, Option<bool>)>::decode_args(TWO, body) {
                assert_is_map(body);
                args_round_trip(TWO, &value);
            }
        }
    }
}

fn assert_is_map(body: &[u8]) {
    assert!(
        matches!(body.first(), Some(0x80..=0x8f | 0xde | 0xdf)),
        "named arguments decoded from a body that is not a map: {body:02x?}"
    );
}

fn args_round_trip<T>(names: &'static [&'static str], value: &T)
where
    T: EncodeArgs + DecodeArgs + Clone + PartialEq + std::fmt::Debug,
{
    let msg = value
        .clone()
        .encode_args(names)
        .expect("decoded arguments encode");
    let again = T::decode_args(names, &msg[PREFIX_LEN..])
        .unwrap_or_else(|err| panic!("{value:?} encoded does not decode: {err}"));
    assert_eq!(&again, value, "arguments change in a round trip");
}

/// An OPEN frame's metadata block, decoded as the reader decodes it.
///
/// Input: the metadata block. Asserts: a block that decodes re-encodes to exactly the same
/// bytes, and the OPEN's message data is empty; the same block over the metadata limit refuses
/// the stream (never the connection) before it is parsed.
pub fn metadata(input: &[u8]) {
    let open = |block: &[u8]| {
        let mut raw = BytesMut::new();
        raw.put_u32(1); // stream 1
        raw.put_u8(1); // OPEN
        raw.put_u8(0);
        raw.put_u16(0); // method ""
        raw.put_u64(0); // no timeout
        raw.put_u32(block.len() as u32);
        raw.put_slice(block);
        raw.freeze()
    };
    match Frame::decode(open(input), usize::MAX) {
        Ok(Frame::Open { metadata, data, .. }) => {
            assert!(data.is_empty());
            assert_eq!(metadata.encoded_len(), input.len());
            let mut again = BytesMut::new();
            for (key, value) in metadata.iter() {
                again.put_u16(key.len() as u16);
                again.put_slice(key.as_bytes());
                again.put_u32(value.len() as u32);
                again.put_slice(value.as_bytes());
            }
            assert_eq!(&again[..], input, "metadata re-encodes differently");
        }
        Ok(other) => panic!("an OPEN frame decoded as {other:?}"),
        Err(FrameError::Protocol(_)) => {}
        Err(refused) => panic!("refused under an unlimited size: {refused:?}"),
    }
    if !input.is_empty() {
        match Frame::decode(open(input), input.len() - 1) {
            Err(FrameError::Refuse {
                id: 1, data_len: 0, ..
            }) => {}
            other => panic!("metadata over the limit gave {other:?}"),
        }
    }
}

/// The receive side of one stream (`stream/inbound.rs`): messages cut out of DATA payloads,
/// and the flow-control books.
///
/// Input: `[settings, chunk_seed, stream…]`. `settings` picks the window, the message limit and
/// whether the application reads eagerly or only once the sender runs out of credit. A sender
/// that respects its credit delivers the stream in chunks; the application waits whenever it
/// finds nothing. Asserts: the messages come out whole, in order, exactly as a reference
/// parser cuts them; an oversized prefix is refused as soon as its 4 bytes are in; a sender
/// that respects its credit is never refused and never stalls; the bytes held are accounted.
pub fn inbound(input: &[u8]) {
    let [settings, seed, stream @ ..] = input else {
        return;
    };
    let window = [16u32, 100, 1024, 64 << 10][(settings & 3) as usize];
    let max_message = [0u32, 8, 100, 4096][((settings >> 2) & 3) as usize];
    let lazy = settings & 0x10 != 0;

    // The reference: whole messages, and where the first oversized prefix ends.
    let mut expected = Vec::new();
    let mut too_large_at = None;
    let mut at = 0usize;
    while let Some(prefix) = stream.get(at..at + PREFIX_LEN) {
        let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes"));
        if len > max_message {
            too_large_at = Some(at + PREFIX_LEN);
            break;
        }
        let end = at + PREFIX_LEN + len as usize;
        let Some(body) = stream.get(at + PREFIX_LEN..end) else {
            break;
        };
        expected.push(body);
        at = end;
    }
    let whole_end = at; // bytes of whole messages, before any oversized one

    let mut inbound = Inbound::new(window, max_message);
    let mut chunks = Chunks::new(*seed);
    let (mut sent, mut credit) = (0usize, window as usize);
    let (mut popped, mut popped_bytes) = (0usize, 0usize);
    let read = |inbound: &mut Inbound, popped: &mut usize, popped_bytes: &mut usize| {
        while let Some((body, _)) = inbound.pop() {
            assert_eq!(
                Some(&&body[..]),
                expected.get(*popped),
                "message {} differs",
                *popped
            );
            *popped += 1;
            *popped_bytes += PREFIX_LEN + body.len();
        }
        inbound.wait();
    };
    if !lazy {
        inbound.wait();
    }
    while sent < stream.len() {
        if credit == 0 {
            assert!(lazy, "an eager reader ran the sender out of credit");
            read(&mut inbound, &mut popped, &mut popped_bytes);
            credit += inbound.take_grant().unwrap_or(0) as usize;
            assert!(credit > 0, "stalled at {sent} of {} bytes", stream.len());
        }
        let n = chunks.next().min(credit).min(stream.len() - sent);
        match inbound.push(Bytes::copy_from_slice(&stream[sent..sent + n])) {
            Ok(_) => {}
            Err(InboundError::TooLarge { len, max }) => {
                assert_eq!(max, max_message);
                assert!(len > max);
                let at = too_large_at.expect("refused a message the reference accepts");
                assert!(
                    sent < at && at <= sent + n,
                    "oversized prefix ending at {at} refused in the chunk {sent}..{}",
                    sent + n
                );
                // Every message before the oversized one was cut out and queued.
                read(&mut inbound, &mut popped, &mut popped_bytes);
                assert_eq!(popped, expected.len(), "messages before the refusal lost");
                assert_eq!(whole_end + PREFIX_LEN, at);
                return;
            }
            Err(err) => panic!("a sender within its credit was refused: {err:?}"),
        }
        sent += n;
        credit -= n;
        if !lazy {
            read(&mut inbound, &mut popped, &mut popped_bytes);
            credit += inbound.take_grant().unwrap_or(0) as usize;
        }
    }
    assert!(
        too_large_at.is_none(),
        "an oversized prefix was not refused"
    );
    read(&mut inbound, &mut popped, &mut popped_bytes);
    assert_eq!(popped, expected.len(), "messages lost");
    assert_eq!(inbound.mid_message(), whole_end < stream.len());
    assert_eq!(
        inbound.discard() as usize,
        stream.len() - popped_bytes,
        "bytes held at the end"
    );
}

/// Cuts frames out of a byte stream as the reader does, for harnesses that check what a peer
/// sent: the frames (each without its length prefix), then how the stream ended: `Ok` with the
/// bytes of an incomplete frame left at the end, or `Err` with the codec's error (a length
/// prefix over `max_frame_size` plus the header), after which the reader stops.
pub fn split_frames(bytes: &[u8], max_frame_size: u32) -> (Vec<Bytes>, Result<usize, String>) {
    let mut codec = FrameCodec::new(max_frame_size as usize);
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(raw)) => frames.push(raw),
            Ok(None) => {
                let left = bytes.len() - consumed_len(&frames);
                return (frames, Ok(left));
            }
            Err(err) => return (frames, Err(err.to_string())),
        }
    }
}

fn consumed_len(frames: &[Bytes]) -> usize {
    frames.iter().map(|raw| 4 + raw.len()).sum()
}

/// A frame as [`parse_frame`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSummary {
    /// The type byte (`1` OPEN … `7` GOAWAY).
    pub kind: u8,
    /// The stream id (`0`: the connection).
    pub id: u32,
    /// OPEN and DATA: END_STREAM; PING: ACK.
    pub flag: bool,
    /// OPEN, DATA, CLOSE: the message data bytes (what flow control counts); CREDIT: the
    /// increment; GOAWAY: the last stream id.
    pub amount: u32,
    /// CLOSE, CANCEL, GOAWAY: the status code byte as sent.
    pub code: Option<u8>,
}

/// Parses one frame (without its length prefix) as the reader does.
///
/// # Errors
///
/// The reader's verdict on a frame that does not parse: a protocol error or the refusal of an
/// OPEN whose metadata exceeds `max_metadata`.
pub fn parse_frame(raw: Bytes, max_metadata: u32) -> Result<FrameSummary, String> {
    let byte = |i: usize| raw.get(i).copied();
    let (status_code, goaway_code) = (byte(HEADER_LEN), byte(HEADER_LEN + 4));
    let frame = Frame::decode(raw, max_metadata as usize).map_err(|err| format!("{err:?}"))?;
    let summary = |kind, id, flag, amount: usize, code| FrameSummary {
        kind,
        id,
        flag,
        amount: amount as u32,
        code,
    };
    Ok(match frame {
        Frame::Open {
            id,
            end_stream,
            data,
            ..
        } => summary(1, id, end_stream, data.len(), None),
        Frame::Data {
            id,
            end_stream,
            data,
        } => summary(2, id, end_stream, data.len(), None),
        Frame::Close { id, data, .. } => summary(3, id, false, data.len(), status_code),
        Frame::Cancel { id, .. } => summary(4, id, false, 0, status_code),
        Frame::Credit { id, increment } => summary(5, id, false, increment as usize, None),
        Frame::Ping { ack, .. } => summary(6, 0, ack, 0, None),
        Frame::GoAway { last_stream_id, .. } => {
            summary(7, 0, false, last_stream_id as usize, goaway_code)
        }
    })
}
