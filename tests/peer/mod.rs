//! A scripted raw peer: speaks micro's wire protocol (docs/PROTOCOL.md) byte by byte, so a test
//! can send any handshake, frame or length prefix at any pace and assert the exact frames the
//! other side answers with.
//!
//! The builders (`preface`, `frame`, `open_payload`, ...) return plain bytes, so a test can also
//! cut, corrupt or concatenate them before sending.

// Test support: each test file uses a different part of it, and `pub` is the module's API.
#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::time::Duration;

use micro::Code;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Frame types (PROTOCOL.md §3.2).
pub const OPEN: u8 = 1;
pub const DATA: u8 = 2;
pub const CLOSE: u8 = 3;
pub const CANCEL: u8 = 4;
pub const CREDIT: u8 = 5;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;

/// The END_STREAM flag of OPEN and DATA, and the ACK flag of PING.
pub const END: u8 = 1;
pub const ACK: u8 = 1;

/// How long any single read may wait before the peer declares the other side hung.
pub const HANG: Duration = Duration::from_secs(10);

/// The settings a peer announces in its preface.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub max_frame_size: u32,
    pub max_message_size: u32,
    pub stream_window: u32,
    pub connection_window: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_frame_size: 1 << 20,
            max_message_size: 4 << 20,
            stream_window: 256 << 10,
            connection_window: 16 << 20,
        }
    }
}

/// A 24-byte preface of `version` with default settings.
pub fn preface(version: u16) -> Vec<u8> {
    preface_with(version, Settings::default())
}

/// A 24-byte preface of `version` announcing `settings`.
pub fn preface_with(version: u16, settings: Settings) -> Vec<u8> {
    let mut p = b"MCRO".to_vec();
    p.extend(version.to_be_bytes());
    p.extend([0, 0]);
    for setting in [
        settings.max_frame_size,
        settings.max_message_size,
        settings.stream_window,
        settings.connection_window,
    ] {
        p.extend(setting.to_be_bytes());
    }
    p
}

/// A whole frame: length prefix, stream id, type, flags, payload.
pub fn frame(stream: u32, kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ((6 + payload.len()) as u32).to_be_bytes().to_vec();
    f.extend(stream.to_be_bytes());
    f.extend([kind, flags]);
    f.extend(payload);
    f
}

/// Message data: each message behind its u32 length prefix.
pub fn messages(messages: &[&[u8]]) -> Vec<u8> {
    let mut data = Vec::new();
    for m in messages {
        data.extend((m.len() as u32).to_be_bytes());
        data.extend(*m);
    }
    data
}

/// An OPEN payload: method, timeout in µs, no metadata, then the messages.
pub fn open_payload(method: &str, timeout_us: u64, msgs: &[&[u8]]) -> Vec<u8> {
    open_payload_with_metadata(method, timeout_us, &[], msgs)
}

/// An OPEN payload with metadata entries.
pub fn open_payload_with_metadata(
    method: &str,
    timeout_us: u64,
    metadata: &[(&str, &str)],
    msgs: &[&[u8]],
) -> Vec<u8> {
    let mut p = (method.len() as u16).to_be_bytes().to_vec();
    p.extend(method.as_bytes());
    p.extend(timeout_us.to_be_bytes());
    let mut block = Vec::new();
    for (key, value) in metadata {
        block.extend((key.len() as u16).to_be_bytes());
        block.extend(key.as_bytes());
        block.extend((value.len() as u32).to_be_bytes());
        block.extend(value.as_bytes());
    }
    p.extend((block.len() as u32).to_be_bytes());
    p.extend(block);
    p.extend(messages(msgs));
    p
}

/// A frame as read off the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Raw {
    pub stream: u32,
    pub kind: u8,
    pub flags: u8,
    pub payload: Vec<u8>,
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            OPEN => "OPEN",
            DATA => "DATA",
            CLOSE => "CLOSE",
            CANCEL => "CANCEL",
            CREDIT => "CREDIT",
            PING => "PING",
            GOAWAY => "GOAWAY",
            _ => "?",
        };
        let shown = &self.payload[..self.payload.len().min(64)];
        write!(
            f,
            "{kind}(stream {}, flags {}, {} bytes: {shown:02x?})",
            self.stream,
            self.flags,
            self.payload.len()
        )
    }
}

impl Raw {
    /// The status of a CLOSE frame.
    pub fn close_status(&self) -> (Code, String) {
        assert_eq!(self.kind, CLOSE, "expected CLOSE, got {self:?}");
        let len = u32::from_be_bytes(self.payload[1..5].try_into().unwrap()) as usize;
        let message = String::from_utf8(self.payload[5..5 + len].to_vec()).unwrap();
        (code(self.payload[0]), message)
    }

    /// The message data a CLOSE carries after its status.
    pub fn close_data(&self) -> &[u8] {
        assert_eq!(self.kind, CLOSE, "expected CLOSE, got {self:?}");
        let len = u32::from_be_bytes(self.payload[1..5].try_into().unwrap()) as usize;
        let at = 5 + len;
        let details = u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap()) as usize;
        &self.payload[at + 4 + details..]
    }

    /// The code and reason of a GOAWAY frame.
    pub fn goaway(&self) -> (Code, String) {
        assert_eq!(self.kind, GOAWAY, "expected GOAWAY, got {self:?}");
        let reason = String::from_utf8(self.payload[5..].to_vec()).unwrap();
        (code(self.payload[4]), reason)
    }
}

/// A status code from its wire value.
pub fn code(value: u8) -> Code {
    match value {
        0 => Code::Ok,
        1 => Code::Cancelled,
        2 => Code::Unknown,
        3 => Code::InvalidArgument,
        4 => Code::DeadlineExceeded,
        8 => Code::ResourceExhausted,
        12 => Code::Unimplemented,
        13 => Code::Internal,
        14 => Code::Unavailable,
        other => panic!("unexpected status code {other}"),
    }
}

/// One end of a connection, driven by hand.
pub struct Peer<IO = TcpStream> {
    pub io: IO,
}

impl Peer<TcpStream> {
    /// A TCP connection to `addr`, before any handshake.
    pub async fn connect(addr: std::net::SocketAddr) -> Peer {
        Peer::new(TcpStream::connect(addr).await.unwrap())
    }

    /// A TCP connection to `addr` after a version-1 handshake with default settings.
    pub async fn handshaken(addr: std::net::SocketAddr) -> Peer {
        let mut peer = Peer::connect(addr).await;
        peer.handshake(Settings::default()).await;
        peer
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Peer<IO> {
    pub fn new(io: IO) -> Peer<IO> {
        Peer { io }
    }

    /// Sends a version-1 preface announcing `settings` and checks the server's answer.
    pub async fn handshake(&mut self, settings: Settings) {
        self.send(&preface_with(1, settings)).await;
        let theirs = self.read_preface().await;
        assert_eq!(&theirs[..6], b"MCRO\0\x01", "the server's preface");
    }

    /// Reads the 24-byte preface the other side sends.
    pub async fn read_preface(&mut self) -> [u8; 24] {
        let mut theirs = [0; 24];
        tokio::time::timeout(HANG, self.io.read_exact(&mut theirs))
            .await
            .expect("no preface: hung")
            .expect("no preface");
        theirs
    }

    /// Sends raw bytes; fails the test if the other side is gone.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// Sends raw bytes; `false` if the other side is gone.
    pub async fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.io.write_all(bytes).await.is_ok() && self.io.flush().await.is_ok()
    }

    /// Sends bytes one at a time with `pause` between them.
    pub async fn dribble(&mut self, bytes: &[u8], pause: Duration) {
        for byte in bytes {
            self.io.write_all(&[*byte]).await.unwrap();
            self.io.flush().await.unwrap();
            tokio::time::sleep(pause).await;
        }
    }

    /// Sends one frame.
    pub async fn frame(&mut self, stream: u32, kind: u8, flags: u8, payload: &[u8]) {
        self.send(&frame(stream, kind, flags, payload)).await;
    }

    /// Opens call `id` with the arguments inline; `end` half-closes it in the same frame.
    pub async fn open(&mut self, id: u32, method: &str, timeout_us: u64, args: &[u8], end: bool) {
        let flags = if end { END } else { 0 };
        self.frame(id, OPEN, flags, &open_payload(method, timeout_us, &[args]))
            .await;
    }

    /// Sends messages on `id` in one DATA frame.
    pub async fn data(&mut self, id: u32, msgs: &[&[u8]], end: bool) {
        let flags = if end { END } else { 0 };
        self.frame(id, DATA, flags, &messages(msgs)).await;
    }

    /// Cancels call `id`.
    pub async fn cancel(&mut self, id: u32) {
        self.frame(id, CANCEL, 0, &[Code::Cancelled as u8]).await;
    }

    /// Grants `increment` bytes of credit on `id` (0: the connection).
    pub async fn credit(&mut self, id: u32, increment: u32) {
        self.frame(id, CREDIT, 0, &increment.to_be_bytes()).await;
    }

    /// Reads the next frame; `None` once the other side closed the connection (EOF or reset).
    /// Fails the test if nothing comes for [`HANG`].
    pub async fn recv(&mut self) -> Option<Raw> {
        tokio::time::timeout(HANG, self.read_raw())
            .await
            .expect("the other side neither answered nor closed: hung")
    }

    async fn read_raw(&mut self) -> Option<Raw> {
        let len = self.io.read_u32().await.ok()? as usize;
        assert!(len >= 6, "a frame length of {len}");
        let mut rest = vec![0; len];
        self.io.read_exact(&mut rest).await.ok()?;
        Some(Raw {
            stream: u32::from_be_bytes(rest[..4].try_into().unwrap()),
            kind: rest[4],
            flags: rest[5],
            payload: rest[6..].to_vec(),
        })
    }

    /// Reads frames until one for `stream` that is not CREDIT (answers to pings, grants and
    /// other streams' frames are skipped).
    pub async fn next_on(&mut self, stream: u32) -> Raw {
        loop {
            let next = self.recv().await.expect("connection closed");
            if next.stream == stream && next.kind != CREDIT {
                return next;
            }
        }
    }

    /// Reads frames until the CLOSE of `stream`, checking that every frame of that stream
    /// before it is DATA; returns the close.
    pub async fn close_of(&mut self, stream: u32) -> Raw {
        loop {
            let next = self.next_on(stream).await;
            match next.kind {
                CLOSE => return next,
                DATA => {}
                _ => panic!("stream {stream}: expected DATA or CLOSE, got {next:?}"),
            }
        }
    }

    /// Sends a unary call as one OPEN frame and returns the status of the CLOSE that answers it.
    pub async fn call(&mut self, id: u32, method: &str, timeout_us: u64, args: &[u8]) -> Raw {
        self.open(id, method, timeout_us, args, true).await;
        self.close_of(id).await
    }

    /// Reads until a GOAWAY, then checks that the connection closes; returns its code and
    /// reason.
    pub async fn goaway(&mut self) -> (Code, String) {
        loop {
            match self.recv().await {
                Some(next) if next.kind == GOAWAY => {
                    let goaway = next.goaway();
                    self.closed().await;
                    return goaway;
                }
                Some(_) => {}
                None => panic!("the connection closed without a GOAWAY"),
            }
        }
    }

    /// Reads (and drops) frames until the connection closes.
    pub async fn closed(&mut self) {
        while self.recv().await.is_some() {}
    }
}

/// A `Lab` server on 127.0.0.1, with what a test may observe of it.
pub struct LabAt {
    pub addr: std::net::SocketAddr,
    pub stats: micro::ServerStats,
    pub probe: std::sync::Arc<crate::common::Probe>,
}

/// Starts a `Lab` server on 127.0.0.1, configured by `configure`.
pub async fn lab(configure: impl FnOnce(micro::ServerBuilder) -> micro::ServerBuilder) -> LabAt {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lab = crate::common::LabImpl::default();
    let probe = lab.probe.clone();
    let builder =
        configure(micro::Server::builder().add_service(crate::common::LabServer::new(lab)));
    let stats = builder.stats();
    tokio::spawn(builder.serve_listener(listener));
    LabAt { addr, stats, probe }
}

/// Starts a `Lab` server on 127.0.0.1, configured by `configure`; returns its address.
pub async fn lab_server(
    configure: impl FnOnce(micro::ServerBuilder) -> micro::ServerBuilder,
) -> std::net::SocketAddr {
    lab(configure).await.addr
}
