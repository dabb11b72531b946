//! A fault-injection transport: [`Faulty`] wraps any `AsyncRead + AsyncWrite` and, following a
//! [`Plan`], cuts the connection or fails its reads or writes at a chosen point of the byte
//! stream — after N bytes, after N whole frames, or in the middle of a frame — in either
//! direction, and can slow it down or pass it in small pieces.
//!
//! It follows micro's framing itself (docs/PROTOCOL.md §2–3): the first 24 bytes each way are
//! the preface, then every frame is a u32 length (the 6 header bytes plus the payload) followed
//! by that many bytes. It counts the bytes and frames that cross each way and records every
//! frame's type byte, so a test can see what passed (a [`Tap`]).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Bytes of the preface each side sends before its first frame.
pub(crate) const PREFACE_LEN: u64 = 24;

/// The frame type bytes (docs/PROTOCOL.md §3.2).
pub(crate) const OPEN: u8 = 0x01;
pub(crate) const DATA: u8 = 0x02;
pub(crate) const CLOSE: u8 = 0x03;
pub(crate) const CREDIT: u8 = 0x05;
pub(crate) const GOAWAY: u8 = 0x07;

/// Offset of the type byte from the start of a frame's length prefix.
const TYPE_AT: u64 = 8;

/// A point in one direction of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// After this many bytes, the preface included.
    Bytes(u64),
    /// After the preface and this many whole frames: a frame boundary.
    Frames(u64),
    /// After the preface, this many whole frames, and half (rounded down) of the next frame,
    /// its length prefix included: always past that frame's length and before its end.
    MidFrame(u64),
}

/// One direction, as seen from the side that holds the [`Faulty`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Bytes this side receives.
    Read,
    /// Bytes this side sends.
    Write,
}

/// What happens to one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Cut the connection as soon as this direction reaches this point (the bytes before it
    /// pass): nothing more passes either way, reads return end-of-file, writes fail, and the
    /// wrapped transport is dropped, so the peer sees it close.
    pub(crate) cut: Option<At>,
    /// From this point on, every read or write in this direction fails with an `io::Error`
    /// (`ConnectionReset` for reads); the bytes before it pass. The wrapped transport stays
    /// open.
    pub(crate) fail: Option<At>,
    /// Every write waits this long before it is passed on; every read waits this long before
    /// it looks for data.
    pub(crate) delay: Option<Duration>,
    /// Every read or write passes at most this many bytes.
    pub(crate) chunk: Option<usize>,
}

impl Rules {
    /// The points where this direction stops passing bytes through.
    fn stops(&self) -> Vec<At> {
        self.cut.into_iter().chain(self.fail).collect()
    }
}

/// What a [`Faulty`] does to each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) read: Rules,
    pub(crate) write: Rules,
}

impl Plan {
    /// Passes everything through, counting.
    pub(crate) fn clean() -> Plan {
        Plan::default()
    }

    /// Cuts the connection when direction `dir` reaches `at`.
    pub(crate) fn cut(dir: Dir, at: At) -> Plan {
        let mut plan = Plan::default();
        plan.rules_mut(dir).cut = Some(at);
        plan
    }

    /// Fails every read or write in direction `dir` from `at` on.
    pub(crate) fn fail(dir: Dir, at: At) -> Plan {
        let mut plan = Plan::default();
        plan.rules_mut(dir).fail = Some(at);
        plan
    }

    /// Reads at most `chunk` bytes at a time, each read waiting `delay` first: a slow reader.
    pub(crate) fn slow_reads(delay: Duration, chunk: usize) -> Plan {
        Plan {
            read: Rules {
                delay: Some(delay),
                chunk: Some(chunk),
                ..Rules::default()
            },
            write: Rules::default(),
        }
    }

    /// Delays every read and every write by `delay`.
    pub(crate) fn delay(delay: Duration) -> Plan {
        let rules = Rules {
            delay: Some(delay),
            ..Rules::default()
        };
        Plan {
            read: rules,
            write: rules,
        }
    }

    fn rules_mut(&mut self, dir: Dir) -> &mut Rules {
        match dir {
            Dir::Read => &mut self.read,
            Dir::Write => &mut self.write,
        }
    }
}

/// Where a byte stream is, read as a preface followed by micro frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    /// Bytes so far, the preface included.
    pub(crate) bytes: u64,
    /// Whole frames so far.
    pub(crate) frames: u64,
    /// Bytes of the current frame so far (0 at a frame boundary).
    in_frame: u64,
    /// The current frame's length prefix, as far as it has come.
    prefix: [u8; 4],
    /// The current frame's type byte, once it has come.
    kind: Option<u8>,
}

impl Position {
    /// The current frame's size, length prefix included, once the prefix is complete.
    fn frame_size(&self) -> Option<u64> {
        (self.in_frame >= 4).then(|| 4 + u64::from(u32::from_be_bytes(self.prefix)))
    }

    /// Whether the stream has reached (or passed) `at`.
    pub(crate) fn reached(&self, at: At) -> bool {
        let framing = self.bytes >= PREFACE_LEN;
        match at {
            At::Bytes(n) => self.bytes >= n,
            At::Frames(n) => {
                framing && (self.frames > n || (self.frames == n && self.in_frame == 0))
            }
            At::MidFrame(n) => {
                framing
                    && (self.frames > n
                        || (self.frames == n
                            && self
                                .frame_size()
                                .is_some_and(|size| self.in_frame >= size / 2)))
            }
        }
    }

    /// Bytes that may pass from here in one step (at most `available`): to the end of the
    /// preface, one byte of a length prefix, or to the end of the frame; never past a stop.
    fn step(&self, available: usize, stops: &[At]) -> usize {
        let structure = if self.bytes < PREFACE_LEN {
            PREFACE_LEN - self.bytes
        } else {
            match self.frame_size() {
                None => 1,
                Some(size) => size - self.in_frame,
            }
        };
        let mut n = structure.min(available as u64);
        for &stop in stops {
            let until = match stop {
                At::Bytes(b) => b.saturating_sub(self.bytes),
                At::MidFrame(f) if self.frames == f => self
                    .frame_size()
                    .map_or(u64::MAX, |size| (size / 2).saturating_sub(self.in_frame)),
                // A frame boundary ends a step anyway.
                At::Frames(_) | At::MidFrame(_) => u64::MAX,
            };
            n = n.min(until);
        }
        n as usize
    }

    /// Moves past `bytes`, which fit in one [`step`](Self::step). Returns the type byte of the
    /// frame they complete, if they complete one (`u8::MAX` for a frame too short to have one).
    fn consume(&mut self, bytes: &[u8]) -> Option<u8> {
        let n = bytes.len() as u64;
        if self.bytes < PREFACE_LEN {
            self.bytes += n;
            return None;
        }
        if self.in_frame < 4 {
            self.prefix[self.in_frame as usize] = bytes[0];
        } else if self.in_frame <= TYPE_AT && TYPE_AT < self.in_frame + n {
            self.kind = Some(bytes[(TYPE_AT - self.in_frame) as usize]);
        }
        self.bytes += n;
        self.in_frame += n;
        if self.frame_size() == Some(self.in_frame) {
            let kind = self.kind.take().unwrap_or(u8::MAX);
            self.frames += 1;
            self.in_frame = 0;
            return Some(kind);
        }
        None
    }

    /// How many of the bytes in `buf` may pass before the stream reaches one of `stops`.
    pub(crate) fn room(&self, buf: &[u8], stops: &[At]) -> usize {
        let mut pos = *self;
        let mut done = 0;
        while done < buf.len() && !stops.iter().any(|&stop| pos.reached(stop)) {
            let n = pos.step(buf.len() - done, stops);
            pos.consume(&buf[done..done + n]);
            done += n;
        }
        done
    }
}

/// What crossed one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flow {
    pub(crate) position: Position,
    /// The type byte of every whole frame, in order.
    pub(crate) kinds: Vec<u8>,
}

impl Flow {
    /// Counts `bytes` as passed.
    pub(crate) fn advance(&mut self, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let n = self.position.step(bytes.len() - done, &[]);
            if let Some(kind) = self.position.consume(&bytes[done..done + n]) {
                self.kinds.push(kind);
            }
            done += n;
        }
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.position.bytes
    }

    pub(crate) fn frames(&self) -> u64 {
        self.position.frames
    }

    /// Whole frames of type `kind` so far.
    pub(crate) fn count(&self, kind: u8) -> usize {
        self.kinds.iter().filter(|&&k| k == kind).count()
    }

    /// The frame types so far, by name.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|&kind| kind_name(kind)).collect()
    }
}

/// The name of a frame type byte.
pub(crate) fn kind_name(kind: u8) -> &'static str {
    match kind {
        OPEN => "OPEN",
        DATA => "DATA",
        CLOSE => "CLOSE",
        0x04 => "CANCEL",
        CREDIT => "CREDIT",
        0x06 => "PING",
        GOAWAY => "GOAWAY",
        _ => "?",
    }
}

#[derive(Debug, Default)]
struct TapState {
    read: Flow,
    write: Flow,
    cut: bool,
    failed_reads: u64,
    failed_writes: u64,
    delays: u64,
}

/// A view of what a [`Faulty`] passed and did; clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tap(Arc<Mutex<TapState>>);

impl Tap {
    fn lock(&self) -> MutexGuard<'_, TapState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What this side received.
    pub(crate) fn received(&self) -> Flow {
        self.lock().read.clone()
    }

    /// What this side sent.
    pub(crate) fn sent(&self) -> Flow {
        self.lock().write.clone()
    }

    /// Whether the connection was cut.
    pub(crate) fn is_cut(&self) -> bool {
        self.lock().cut
    }

    /// Reads and writes that failed on purpose.
    pub(crate) fn failures(&self) -> u64 {
        let state = self.lock();
        state.failed_reads + state.failed_writes
    }

    /// Whether any fault fired: a cut or a failure.
    pub(crate) fn faulted(&self) -> bool {
        self.is_cut() || self.failures() > 0
    }

    /// Reads and writes that were delayed.
    pub(crate) fn delays(&self) -> u64 {
        self.lock().delays
    }
}

/// A wait before each read or each write.
#[derive(Debug, Default)]
struct Delay {
    sleep: Option<Pin<Box<Sleep>>>,
    /// The wait for the current operation is over.
    passed: bool,
}

impl Delay {
    /// Ready once the current operation has waited `delay`.
    fn poll(&mut self, cx: &mut Context<'_>, delay: Option<Duration>, tap: &Tap) -> Poll<()> {
        let Some(delay) = delay else {
            return Poll::Ready(());
        };
        if self.passed {
            return Poll::Ready(());
        }
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        self.passed = true;
        tap.lock().delays += 1;
        Poll::Ready(())
    }

    /// The operation is done: the next one waits again.
    fn done(&mut self) {
        self.passed = false;
    }
}

/// A transport that follows a [`Plan`]. See the module documentation.
pub(crate) struct Faulty<IO> {
    /// `None` once cut.
    io: Option<IO>,
    plan: Plan,
    read_stops: Vec<At>,
    write_stops: Vec<At>,
    tap: Tap,
    read_delay: Delay,
    write_delay: Delay,
    /// Tasks waiting on the wrapped transport, woken when a cut drops it.
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl<IO> Faulty<IO> {
    /// Wraps `io`; the [`Tap`] shows what happens to it.
    pub(crate) fn new(io: IO, plan: Plan) -> (Faulty<IO>, Tap) {
        let tap = Tap::default();
        let faulty = Faulty {
            io: Some(io),
            read_stops: plan.read.stops(),
            write_stops: plan.write.stops(),
            plan,
            tap: tap.clone(),
            read_delay: Delay::default(),
            write_delay: Delay::default(),
            read_waker: None,
            write_waker: None,
        };
        (faulty, tap)
    }

    /// Cuts the connection: drops the wrapped transport, so the peer sees it close, and wakes
    /// whoever waits on it.
    fn cut(&mut self) {
        self.tap.lock().cut = true;
        self.io = None;
        for waker in [self.read_waker.take(), self.write_waker.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the connection was cut")
}

impl<IO: AsyncRead + Unpin> AsyncRead for Faulty<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rules = this.plan.read;
        {
            let mut state = this.tap.lock();
            if state.cut {
                return Poll::Ready(Ok(()));
            }
            let position = state.read.position;
            if rules.fail.is_some_and(|at| position.reached(at)) {
                state.failed_reads += 1;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "a read failed on purpose",
                )));
            }
            if rules.cut.is_some_and(|at| position.reached(at)) {
                drop(state);
                this.cut();
                return Poll::Ready(Ok(()));
            }
        }
        ready!(this.read_delay.poll(cx, rules.delay, &this.tap));
        let Some(io) = &mut this.io else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match read_chunk(Pin::new(io), cx, buf, rules.chunk) {
            Poll::Pending => {
                this.read_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Err(err)) => {
                this.read_delay.done();
                return Poll::Ready(Err(err));
            }
            Poll::Ready(Ok(())) => this.read_delay.done(),
        }
        let mut state = this.tap.lock();
        let got = &buf.filled()[before..];
        // Bytes past a stop never arrive: the fault fires before anything else is read.
        let room = state.read.position.room(got, &this.read_stops);
        state.read.advance(&got[..room]);
        let cut_now = rules.cut.is_some_and(|at| state.read.position.reached(at));
        drop(state);
        buf.set_filled(before + room);
        if cut_now {
            this.cut();
        }
        Poll::Ready(Ok(()))
    }
}

/// Reads from `io` into `buf`, at most `chunk` bytes if given.
fn read_chunk<R: AsyncRead>(
    io: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    chunk: Option<usize>,
) -> Poll<io::Result<()>> {
    let Some(chunk) = chunk.filter(|&chunk| chunk < buf.remaining()) else {
        return io.poll_read(cx, buf);
    };
    let mut scratch = vec![0; chunk];
    let mut limited = ReadBuf::new(&mut scratch);
    ready!(io.poll_read(cx, &mut limited))?;
    buf.put_slice(limited.filled());
    Poll::Ready(Ok(()))
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Faulty<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let rules = this.plan.write;
        if buf.is_empty() {
            return match &mut this.io {
                Some(io) => Pin::new(io).poll_write(cx, buf),
                None => Poll::Ready(Err(broken_pipe())),
            };
        }
        {
            let mut state = this.tap.lock();
            if state.cut {
                return Poll::Ready(Err(broken_pipe()));
            }
            let position = state.write.position;
            if rules.fail.is_some_and(|at| position.reached(at)) {
                state.failed_writes += 1;
                return Poll::Ready(Err(io::Error::other("a write failed on purpose")));
            }
            if rules.cut.is_some_and(|at| position.reached(at)) {
                drop(state);
                this.cut();
                return Poll::Ready(Err(broken_pipe()));
            }
        }
        ready!(this.write_delay.poll(cx, rules.delay, &this.tap));
        let room = this.tap.lock().write.position.room(buf, &this.write_stops);
        let room = rules.chunk.map_or(room, |chunk| room.min(chunk));
        let Some(io) = &mut this.io else {
            return Poll::Ready(Err(broken_pipe()));
        };
        let n = match Pin::new(io).poll_write(cx, &buf[..room]) {
            Poll::Pending => {
                this.write_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Err(err)) => {
                this.write_delay.done();
                return Poll::Ready(Err(err));
            }
            Poll::Ready(Ok(n)) => n,
        };
        this.write_delay.done();
        let mut state = this.tap.lock();
        state.write.advance(&buf[..n]);
        let cut_now = rules.cut.is_some_and(|at| state.write.position.reached(at));
        drop(state);
        if cut_now {
            // What was written before the point still reaches the peer, then the end.
            this.cut();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.io {
            Some(io) => match Pin::new(io).poll_flush(cx) {
                Poll::Pending => {
                    this.write_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                ready => ready,
            },
            None => Poll::Ready(Err(broken_pipe())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            // Cut: closed already.
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;

    /// A frame of type `kind` on stream 7 with `payload_len` payload bytes.
    fn frame(kind: u8, payload_len: usize) -> Vec<u8> {
        let mut f = ((6 + payload_len) as u32).to_be_bytes().to_vec();
        f.extend(7u32.to_be_bytes());
        f.extend([kind, 0]);
        f.extend((0..payload_len).map(|i| i as u8));
        f
    }

    /// A preface and frames of assorted sizes and types, and where each frame ends.
    fn wire() -> (Vec<u8>, Vec<u64>, Vec<u8>) {
        let frames = [
            frame(OPEN, 27),
            frame(DATA, 0),
            frame(DATA, 1),
            frame(CREDIT, 4),
            frame(DATA, 300),
            frame(CLOSE, 9),
            frame(GOAWAY, 40),
        ];
        let mut bytes = vec![0xAB; PREFACE_LEN as usize];
        let mut ends = Vec::new();
        let mut kinds = Vec::new();
        for f in &frames {
            kinds.push(f[8]);
            bytes.extend(f);
            ends.push(bytes.len() as u64);
        }
        (bytes, ends, kinds)
    }

    /// Chunk sizes from a small deterministic generator: 1, 2, 3 … and some larger.
    fn chunks(len: usize, seed: u64) -> Vec<usize> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut sizes = Vec::new();
        let mut left = len;
        while left > 0 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let size = match (state >> 33) % 4 {
                0 => 1,
                1 => 1 + (state >> 40) as usize % 5,
                2 => 1 + (state >> 40) as usize % 17,
                _ => 1 + (state >> 40) as usize % 400,
            };
            let size = size.min(left);
            sizes.push(size);
            left -= size;
        }
        sizes
    }

    /// Where `at` falls in `wire()`.
    fn offset(at: At, ends: &[u64]) -> u64 {
        let boundary = |k: u64| {
            if k == 0 {
                PREFACE_LEN
            } else {
                ends[k as usize - 1]
            }
        };
        match at {
            At::Bytes(n) => n,
            At::Frames(k) => boundary(k),
            At::MidFrame(k) => boundary(k) + (ends[k as usize] - boundary(k)) / 2,
        }
    }

    #[test]
    fn frames_are_counted_whatever_the_chunks() {
        let (bytes, ends, kinds) = wire();
        for seed in 0..50 {
            let mut flow = Flow::default();
            let mut at = 0;
            for size in chunks(bytes.len(), seed) {
                flow.advance(&bytes[at..at + size]);
                at += size;
                let whole = ends.iter().filter(|&&end| end <= at as u64).count();
                assert_eq!(flow.frames(), whole as u64, "seed {seed}, after {at} bytes");
            }
            assert_eq!(flow.bytes(), bytes.len() as u64);
            assert_eq!(flow.kinds, kinds, "seed {seed}");
        }
    }

    #[test]
    fn every_stop_is_found_exactly_whatever_the_chunks() {
        let (bytes, ends, _) = wire();
        let frames = ends.len() as u64;
        let mut stops: Vec<At> = (0..=frames).map(At::Frames).collect();
        stops.extend((0..frames).map(At::MidFrame));
        stops.extend([0, 1, 23, 24, 25, 60].map(At::Bytes));
        for stop in stops {
            let expected = offset(stop, &ends);
            for seed in 0..20 {
                let mut flow = Flow::default();
                let mut at = 0;
                for size in chunks(bytes.len(), seed) {
                    let chunk = &bytes[at..at + size];
                    let room = flow.position.room(chunk, &[stop]);
                    flow.advance(&chunk[..room]);
                    at += room;
                    if room < size {
                        break;
                    }
                }
                assert_eq!(at as u64, expected, "{stop:?}, seed {seed}");
                assert!(flow.position.reached(stop), "{stop:?}, seed {seed}");
            }
        }
    }

    /// Reads everything `io` delivers until end-of-file or an error.
    async fn drain(io: &mut DuplexStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Writes `bytes` in the chunks of `seed`, stopping at the first error.
    async fn write_chunks<W: AsyncWrite + Unpin>(
        io: &mut W,
        bytes: &[u8],
        seed: u64,
    ) -> io::Result<()> {
        let mut at = 0;
        for size in chunks(bytes.len(), seed) {
            io.write_all(&bytes[at..at + size]).await?;
            at += size;
        }
        io.flush().await
    }

    #[tokio::test]
    async fn partial_writes_are_counted_and_pass_unchanged() {
        let (bytes, ends, kinds) = wire();
        for seed in 0..10 {
            // A 7-byte pipe: most writes are cut short by the wrapped transport.
            let (inner, mut peer) = tokio::io::duplex(7);
            let (mut faulty, tap) = Faulty::new(inner, Plan::clean());
            let reader = tokio::spawn(async move { drain(&mut peer).await });
            write_chunks(&mut faulty, &bytes, seed).await.unwrap();
            drop(faulty);
            assert_eq!(reader.await.unwrap(), bytes, "seed {seed}");
            let sent = tap.sent();
            assert_eq!(sent.frames(), ends.len() as u64);
            assert_eq!(sent.kinds, kinds);
            assert_eq!(tap.received(), Flow::default());
            assert!(!tap.faulted());
        }
    }

    #[tokio::test]
    async fn partial_reads_are_counted_and_pass_unchanged() {
        let (bytes, ends, kinds) = wire();
        for seed in 0..10 {
            let (inner, mut peer) = tokio::io::duplex(5);
            let (mut faulty, tap) = Faulty::new(inner, Plan::clean());
            let wire = bytes.clone();
            let writer = tokio::spawn(async move { write_chunks(&mut peer, &wire, seed).await });
            let mut got = Vec::new();
            let mut buf = [0u8; 3];
            loop {
                let n = faulty.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            writer.await.unwrap().unwrap();
            assert_eq!(got, bytes, "seed {seed}");
            assert_eq!(tap.received().frames(), ends.len() as u64);
            assert_eq!(tap.received().kinds, kinds);
        }
    }

    #[tokio::test]
    async fn a_cut_on_write_passes_exactly_the_bytes_before_it_then_closes() {
        let (bytes, ends, _) = wire();
        let all = ends.len() as u64;
        let stops = [
            At::Bytes(0),
            At::Bytes(10),
            At::Frames(0),
            At::Frames(3),
            At::MidFrame(4),
            At::Frames(all),
        ];
        for stop in stops {
            let (inner, mut peer) = tokio::io::duplex(1 << 16);
            let (mut faulty, tap) = Faulty::new(inner, Plan::cut(Dir::Write, stop));
            let result = write_chunks(&mut faulty, &bytes, 3).await;
            let expected = offset(stop, &ends) as usize;
            assert_eq!(drain(&mut peer).await, bytes[..expected], "{stop:?}");
            assert!(tap.is_cut(), "{stop:?}");
            if expected < bytes.len() {
                assert_eq!(result.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
            }
            // the other direction is gone too
            assert_eq!(faulty.read(&mut [0u8; 8]).await.unwrap(), 0, "{stop:?}");
            assert!(faulty.write_all(b"more").await.is_err());
        }
    }

    #[tokio::test]
    async fn a_cut_on_read_delivers_exactly_the_bytes_before_it_then_eof() {
        let (bytes, ends, _) = wire();
        for stop in [At::Bytes(5), At::Frames(0), At::Frames(2), At::MidFrame(4)] {
            let (inner, mut peer) = tokio::io::duplex(1 << 16);
            let (mut faulty, tap) = Faulty::new(inner, Plan::cut(Dir::Read, stop));
            peer.write_all(&bytes).await.unwrap();
            let mut got = Vec::new();
            faulty.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, bytes[..offset(stop, &ends) as usize], "{stop:?}");
            assert!(tap.is_cut());
            assert_eq!(tap.received().position.bytes, got.len() as u64);
            // the peer sees the connection close
            assert!(peer.write_all(b"more").await.is_err(), "{stop:?}");
        }
    }

    #[tokio::test]
    async fn failing_writes_fail_from_the_point_on_and_leave_reads_working() {
        let (bytes, ends, _) = wire();
        let stop = At::MidFrame(2);
        let (inner, mut peer) = tokio::io::duplex(1 << 16);
        let (mut faulty, tap) = Faulty::new(inner, Plan::fail(Dir::Write, stop));
        let err = write_chunks(&mut faulty, &bytes, 1).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert!(
            faulty.write_all(b"again").await.is_err(),
            "it keeps failing"
        );
        assert_eq!(tap.failures(), 2);
        assert!(!tap.is_cut());
        peer.write_all(b"reply").await.unwrap();
        let mut reply = [0u8; 5];
        faulty.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"reply");
        drop(faulty);
        assert_eq!(
            drain(&mut peer).await,
            bytes[..offset(stop, &ends) as usize]
        );
    }

    #[tokio::test]
    async fn failing_reads_deliver_the_bytes_before_the_point_then_errors() {
        let (bytes, ends, _) = wire();
        let stop = At::Frames(4);
        let (inner, mut peer) = tokio::io::duplex(1 << 16);
        let (mut faulty, tap) = Faulty::new(inner, Plan::fail(Dir::Read, stop));
        peer.write_all(&bytes).await.unwrap();
        let mut got = vec![0u8; offset(stop, &ends) as usize];
        faulty.read_exact(&mut got).await.unwrap();
        assert_eq!(got, bytes[..got.len()]);
        let err = faulty.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(tap.received().frames(), 4);
        assert_eq!(tap.failures(), 1);
    }

    #[tokio::test]
    async fn chunked_reads_and_writes_pass_at_most_a_chunk_each() {
        let (bytes, ends, kinds) = wire();
        let chunked = Rules {
            chunk: Some(5),
            ..Rules::default()
        };
        let plan = Plan {
            read: chunked,
            write: chunked,
        };
        let (inner, mut peer) = tokio::io::duplex(1 << 16);
        let (mut faulty, tap) = Faulty::new(inner, plan);
        assert_eq!(faulty.write(&bytes).await.unwrap(), 5);
        faulty.write_all(&bytes[5..]).await.unwrap();
        assert_eq!(tap.sent().kinds, kinds);
        peer.write_all(&bytes).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < bytes.len() {
            let n = faulty.read(&mut buf).await.unwrap();
            assert!((1..=5).contains(&n), "read {n} bytes");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, bytes);
        assert_eq!(tap.received().frames(), ends.len() as u64);
        assert_eq!(tap.received().kinds, kinds);
    }

    #[tokio::test(start_paused = true)]
    async fn each_write_and_read_waits_for_its_delay() {
        use std::task::Waker;

        let delay = Duration::from_millis(10);
        let (inner, mut peer) = tokio::io::duplex(1 << 16);
        let (mut faulty, tap) = Faulty::new(inner, Plan::delay(delay));
        let mut cx = Context::from_waker(Waker::noop());
        for round in 0..3u8 {
            let bytes = [round; 4];
            let mut write = Box::pin(faulty.write_all(&bytes));
            assert!(write.as_mut().poll(&mut cx).is_pending(), "round {round}");
            tokio::time::advance(delay / 2).await;
            assert!(write.as_mut().poll(&mut cx).is_pending(), "round {round}");
            tokio::time::advance(delay / 2).await;
            assert!(write.as_mut().poll(&mut cx).is_ready(), "round {round}");
        }
        let mut got = [0u8; 12];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        peer.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        let mut read = Box::pin(faulty.read_exact(&mut back));
        assert!(read.as_mut().poll(&mut cx).is_pending());
        tokio::time::advance(delay).await;
        assert!(read.as_mut().poll(&mut cx).is_ready());
        drop(read);
        assert_eq!(&back, b"back");
        assert_eq!(tap.delays(), 4);
    }
}
