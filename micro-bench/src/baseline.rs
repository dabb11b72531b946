//! The baseline: the ceiling micro is measured against. A bare tokio-util
//! [`LengthDelimitedCodec`] TCP connection, one frame per message, no RPC machinery.
//!
//! A frame is a big-endian `u64` request id followed by the message, encoded as
//! `rmp_serde::to_vec_named` does (structs as maps). A frame holding only the id ends that
//! request's stream (the server-streaming and bidirectional workloads need an end; unary calls
//! do not use it).
//!
//! By default ([`Flush::Batched`]) both ends use the codec the way a careful user would: a
//! message is queued with `feed` and the socket is flushed once no more input is ready (or, in
//! long streams, whenever the codec's buffer passes its 8 KiB backpressure boundary), so a burst
//! of messages costs one system call. [`Flush::EachMessage`] (`--flush-each-message`) flushes
//! after every message instead, as `SinkExt::send` does: the naive use of the codec.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BufMut, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::Result;
use crate::messages::{Bytes, SRequest, SResponse};

/// Bytes of the request id in front of every message.
const ID_LEN: usize = 8;

/// Largest frame either end accepts: room for W4's 1 MiB messages (the codec's default).
const MAX_FRAME: usize = 8 << 20;

/// The reading half of a connection: one frame (id + message) per item.
pub(crate) type Reader = FramedRead<OwnedReadHalf, LengthDelimitedCodec>;

/// When the baseline writes queued frames to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Once a burst is queued: when no more input is ready, or a stream or request is done.
    Batched,
    /// After every message.
    EachMessage,
}

/// The writing half of a connection: one frame per message, flushed as its [`Flush`] says.
#[derive(Debug)]
pub(crate) struct Writer {
    frames: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    flush: Flush,
}

impl Writer {
    /// Queues `frame`; with [`Flush::EachMessage`], writes it out at once.
    pub(crate) async fn put(&mut self, frame: bytes::Bytes) -> io::Result<()> {
        self.frames.feed(frame).await?;
        match self.flush {
            Flush::Batched => Ok(()),
            Flush::EachMessage => self.flush().await,
        }
    }

    /// Writes out every queued frame.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        SinkExt::<bytes::Bytes>::flush(&mut self.frames).await
    }

    /// Queues `frame` and writes out everything queued: one request of a sequential client.
    pub(crate) async fn send(&mut self, frame: bytes::Bytes) -> io::Result<()> {
        self.put(frame).await?;
        self.flush().await
    }
}

/// Encodes `msg` as request `id`'s message frame.
pub(crate) fn message<T: Serialize>(id: u64, msg: &T) -> Result<bytes::Bytes> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u64(id);
    let mut writer = buf.writer();
    rmp_serde::encode::write_named(&mut writer, msg)?;
    Ok(writer.into_inner().freeze())
}

/// The frame that ends request `id`'s stream.
pub(crate) fn end(id: u64) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(&id.to_be_bytes())
}

/// Splits a frame into its request id and its message, `None` for an end frame.
pub(crate) fn parse(mut frame: &[u8]) -> Result<(u64, Option<&[u8]>)> {
    if frame.len() < ID_LEN {
        return Err(format!("a {}-byte frame has no request id", frame.len()).into());
    }
    let id = frame.get_u64();
    Ok((id, (!frame.is_empty()).then_some(frame)))
}

/// Decodes a message.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    Ok(rmp_serde::from_slice(body)?)
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

fn split(socket: TcpStream, flush: Flush) -> Result<(Reader, Writer)> {
    socket.set_nodelay(true)?;
    let (read, write) = socket.into_split();
    let writer = Writer {
        frames: FramedWrite::new(write, codec()),
        flush,
    };
    Ok((FramedRead::new(read, codec()), writer))
}

/// Connects to a baseline server.
pub(crate) async fn connect(addr: SocketAddr, flush: Flush) -> Result<(Reader, Writer)> {
    split(TcpStream::connect(addr).await?, flush)
}

/// What a baseline server answers, one kind per workload (micro's server offers them all as
/// methods; the baseline has no method names, so each workload starts its own server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// Each `SRequest` gets one `SResponse` of `count` words.
    Unary,
    /// Each `SRequest` gets `count` one-word `SResponse`s, then an end frame.
    ServerStreaming,
    /// Each `Bytes` comes back unchanged.
    Echo,
    /// Each `SRequest` gets `count` one-word `SResponse`s; the client's end frame is answered
    /// with an end frame.
    Bidirectional,
}

/// Serves `service` to every connection `listener` accepts.
pub(crate) async fn serve(listener: TcpListener, service: Service, flush: Flush) {
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Err(err) = serve_connection(socket, service, flush).await {
                eprintln!("baseline server: connection failed: {err}");
            }
        });
    }
}

/// Answers every frame of one connection until the client closes it.
async fn serve_connection(socket: TcpStream, service: Service, flush: Flush) -> Result<()> {
    let (mut reader, mut writer) = split(socket, flush)?;
    while let Some(frame) = reader.next().await {
        answer(service, &frame?, &mut writer).await?;
        // Answer what has arrived already before paying for a flush.
        while let Some(Some(frame)) = reader.next().now_or_never() {
            answer(service, &frame?, &mut writer).await?;
        }
        writer.flush().await?;
    }
    Ok(())
}

/// Writes (without flushing) the answer to one frame.
async fn answer(service: Service, frame: &[u8], writer: &mut Writer) -> Result<()> {
    let (id, body) = parse(frame)?;
    match (service, body) {
        (Service::Unary, Some(body)) => {
            let count = decode::<SRequest>(body)?.words()?;
            writer.put(message(id, &SResponse::random(count))?).await?;
        }
        (Service::Echo, Some(body)) => {
            let msg: Bytes = decode(body)?;
            writer.put(message(id, &msg)?).await?;
        }
        (Service::ServerStreaming | Service::Bidirectional, Some(body)) => {
            let count = decode::<SRequest>(body)?.words()?;
            for _ in 0..count {
                writer.put(message(id, &SResponse::random(1))?).await?;
            }
            if service == Service::ServerStreaming {
                writer.put(end(id)).await?;
            }
        }
        (Service::Bidirectional, None) => writer.put(end(id)).await?,
        (Service::Unary | Service::Echo | Service::ServerStreaming, None) => {
            return Err(format!("unexpected end frame for request {id}").into());
        }
    }
    Ok(())
}

/// Reads the next frame, failing if the connection ends first.
pub(crate) async fn next_frame(reader: &mut Reader) -> Result<BytesMut> {
    match reader.next().await {
        Some(frame) => Ok(frame?),
        None => Err("the baseline server closed the connection".into()),
    }
}

/// Reads request `id`'s next message, or `None` at its end frame.
pub(crate) async fn recv<T: DeserializeOwned>(reader: &mut Reader, id: u64) -> Result<Option<T>> {
    let frame = next_frame(reader).await?;
    let (got, body) = parse(&frame)?;
    if got != id {
        return Err(format!("expected a frame of request {id}, got one of {got}").into());
    }
    body.map(decode).transpose()
}
