//! The `server` target: a real micro server serving [`FuzzServer`] on one end of an in-memory
//! pipe, with the fuzz input written to the other end.
//!
//! # Input
//!
//! `[mode, rest…]`. The bits of `mode`:
//!
//! | bit | meaning |
//! |---|---|
//! | 0 `RAW_PREFACE` | `rest` starts with the client's preface verbatim (its first 24 bytes, or fewer): any corruption of the handshake. Otherwise a valid preface is sent first. |
//! | 1–2 | which valid preface, when not raw: micro's defaults, tiny (1 KiB frames, 64 B messages, 16 B stream / 32 B connection windows), small (1 KiB, 4 KiB, 1 KiB, 4 KiB), or every limit at `u32::MAX`. |
//! | 3 `SMALL_SERVER` | the server runs with small limits (1 KiB frames, 4 KiB messages, 64 B metadata, 4 concurrent calls, 1 KiB / 2 KiB windows, 5 s keepalive) instead of its defaults. |
//! | 4 `HANG_UP` | the client closes its sending side right after the input (the server sees the end of the stream at once, and drops the calls it started). Otherwise it stays open until the bound. |
//! | 5 `SHUTDOWN` | serve through `serve_incoming`, shutting down gracefully after 20 ms (GOAWAY, drain, grace period). Otherwise `serve_connection`. |
//! | 6 `TRICKLE` | the input arrives 16 bytes per virtual millisecond instead of at once. |
//! | 7 `LONG` | read for 100 virtual seconds (past the keepalive) instead of 2. |
//!
//! The rest (after the raw preface, if any) is written as the client's frames.
//!
//! # Run
//!
//! A current-thread runtime with paused time: timers (deadlines, keepalive, sleeps in handlers,
//! the grace period) fire in virtual time as soon as every task is idle, so an execution takes
//! microseconds to milliseconds and never depends on the machine's speed. The client reads
//! what the server sends until the server closes, the bound passes, or 4 MiB arrived; then it
//! hangs up and waits for the server to finish (at most 600 virtual seconds).
//!
//! # Checks
//!
//! - Nothing panics (a handler's panic included: the fuzzer's panic hook aborts on any).
//! - The server finishes serving once its client hung up.
//! - Then its stats show no connection, no open stream and no running handler.
//! - What the server sent is what `docs/PROTOCOL.md` allows: its preface, whatever the
//!   client's (§2.2), and nothing more if the client's was wrong; then frames within the
//!   client's `max_frame_size`, each of which parses; only DATA (never with END_STREAM),
//!   CLOSE, CREDIT, PING and GOAWAY; DATA, CLOSE and stream CREDIT only for ids the client
//!   opened, and nothing on a stream after its CLOSE; no more PING answers than PINGs; nothing
//!   after a GOAWAY for a protocol error; message bytes within the credit the client gave,
//!   per stream and per connection (§6).

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::Duration;

use futures::StreamExt;
use micro::Server;
use micro_core::fuzzing::{FrameSummary, parse_frame, split_frames};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::service::{FuzzImpl, FuzzServer};
use crate::wire;

/// Mode bit: the client's preface is taken from the input.
pub const RAW_PREFACE: u8 = 0x01;
/// Mode bits 1–2: which valid preface the client sends (see [`client_preface`]).
pub const PROFILE_SHIFT: u8 = 1;
/// Mode bit: the server runs with small limits.
pub const SMALL_SERVER: u8 = 0x08;
/// Mode bit: the client closes its sending side right after its input.
pub const HANG_UP: u8 = 0x10;
/// Mode bit: graceful shutdown after [`SHUTDOWN_AT`].
pub const SHUTDOWN: u8 = 0x20;
/// Mode bit: the input arrives [`TRICKLE_BYTES`] per virtual millisecond.
pub const TRICKLE: u8 = 0x40;
/// Mode bit: read for [`LONG_BOUND`] instead of [`SHORT_BOUND`].
pub const LONG: u8 = 0x80;

/// When a `SHUTDOWN` run's server is told to shut down.
pub const SHUTDOWN_AT: Duration = Duration::from_millis(20);
/// Bytes per virtual millisecond in a `TRICKLE` run.
pub const TRICKLE_BYTES: usize = 16;
/// How long the client reads, in virtual time.
pub const SHORT_BOUND: Duration = Duration::from_secs(2);
/// How long a `LONG` run's client reads: past the server's keepalive interval and timeout.
pub const LONG_BOUND: Duration = Duration::from_secs(100);
/// The client stops reading after this much output.
pub const MAX_OUTPUT: usize = 4 << 20;

const MAX_CREDIT: u64 = i32::MAX as u64;

/// The four limits of a preface: max_frame_size, max_message_size, stream_window,
/// connection_window.
pub type Limits = [u32; 4];

/// The valid client preface `profile` (0–3) selects.
pub fn client_limits(profile: u8) -> Limits {
    match profile & 3 {
        0 => [2 << 20, 4 << 20, 2 << 20, 16 << 20],
        1 => [1024, 64, 16, 32],
        2 => [1024, 4096, 1024, 4096],
        _ => [u32::MAX; 4],
    }
}

/// The client preface for `profile`.
pub fn client_preface(profile: u8) -> Vec<u8> {
    let [f, m, s, c] = client_limits(profile);
    wire::preface(f, m, s, c)
}

/// The server's limits.
pub fn server_limits(small: bool) -> Limits {
    if small {
        [1024, 4096, 1024, 2048]
    } else {
        [2 << 20, 4 << 20, 2 << 20, 16 << 20]
    }
}

/// What one execution saw, for tests.
#[derive(Debug)]
pub struct Report {
    /// The client's limits, if its preface was valid.
    pub client: Option<Limits>,
    /// Every byte the server sent.
    pub output: Vec<u8>,
    /// The frames after the server's preface.
    pub frames: Vec<FrameSummary>,
    /// Whether the server closed the connection before the client stopped reading.
    pub closed_by_server: bool,
}

/// Runs one input; panics on a failed check. `None` for an empty input.
pub fn run(data: &[u8]) -> Option<Report> {
    let (&mode, rest) = data.split_first()?;
    let (preface, body) = if mode & RAW_PREFACE != 0 {
        let (preface, body) = rest.split_at(rest.len().min(24));
        (preface.to_vec(), body)
    } else {
        (client_preface(mode >> PROFILE_SHIFT), rest)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let (output, closed_by_server) = runtime.block_on(drive(mode, &preface, body));
    drop(runtime);
    let client = client_settings(&preface);
    let frames = check_output(
        &output,
        &preface,
        client,
        server_limits(mode & SMALL_SERVER != 0),
        &InputFacts::new(body, server_limits(mode & SMALL_SERVER != 0)[0]),
    );
    Some(Report {
        client,
        output,
        frames,
        closed_by_server,
    })
}

/// Serves one connection, plays the client, checks the server's books at the end; returns the
/// server's output and whether the server closed first.
async fn drive(mode: u8, preface: &[u8], body: &[u8]) -> (Vec<u8>, bool) {
    let mut builder = Server::builder().add_service(FuzzServer::new(FuzzImpl));
    if mode & SMALL_SERVER != 0 {
        let [frame, message, stream, connection] = server_limits(true);
        builder = builder
            .max_frame_size(frame)
            .max_message_size(message)
            .max_metadata_size(64)
            .max_concurrent_streams(4)
            .stream_window(stream)
            .connection_window(connection)
            .keepalive(Some(Duration::from_secs(5)))
            .keepalive_timeout(Duration::from_secs(1))
            .handshake_timeout(Duration::from_secs(1))
            .grace_period(Duration::from_secs(1));
    }
    let stats = builder.stats();
    let (client, server_io) = tokio::io::duplex(64 << 10);
    let serving = if mode & SHUTDOWN != 0 {
        let incoming = futures::stream::iter([Ok::<_, io::Error>(server_io)])
            .chain(futures::stream::pending());
        tokio::spawn(builder.serve_incoming(incoming, tokio::time::sleep(SHUTDOWN_AT)))
    } else {
        tokio::spawn(builder.serve_connection(server_io))
    };

    let (mut read, write) = tokio::io::split(client);
    let input = [preface, body].concat();
    let (trickle, hang_up) = (mode & TRICKLE != 0, mode & HANG_UP != 0);
    let mut writing = Box::pin(async move {
        let mut write = write;
        let chunk = if trickle {
            TRICKLE_BYTES
        } else {
            input.len().max(1)
        };
        for part in input.chunks(chunk) {
            if write.write_all(part).await.is_err() {
                return write;
            }
            if trickle {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if hang_up {
            let _ = write.shutdown().await;
        }
        write // open (unless hung up) until the client stops reading
    });

    let bound = if mode & LONG != 0 {
        LONG_BOUND
    } else {
        SHORT_BOUND
    };
    let deadline = Instant::now() + bound;
    let mut output = Vec::new();
    let mut sent = None;
    let closed_by_server = loop {
        tokio::select! {
            got = read.read_buf(&mut output) => match got {
                Ok(0) | Err(_) => break true,
                Ok(_) if output.len() >= MAX_OUTPUT => break false,
                Ok(_) => {}
            },
            write = &mut writing, if sent.is_none() => sent = Some(write),
            _ = tokio::time::sleep_until(deadline) => break false,
        }
    };

    // The client hangs up; the server must notice, finish, and leave nothing running.
    drop((writing, sent, read));
    match tokio::time::timeout(Duration::from_secs(600), serving).await {
        Ok(Ok(served)) => served.expect("the server's settings are valid"),
        Ok(Err(join)) => panic!("the server task failed: {join}"),
        Err(_) => panic!("the server still serves a connection its client closed 600 s ago"),
    }
    // Handlers of the closed connection end as soon as they are polled again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let snapshot = stats.snapshot();
    assert_eq!(
        (
            snapshot.connections,
            snapshot.totals.open_streams,
            snapshot.totals.running_handlers
        ),
        (0, 0, 0),
        "the server holds on to a closed connection: {snapshot:?}"
    );
    (output, closed_by_server)
}

/// The client's limits if its preface is one the server accepts (§2.2).
pub fn client_settings(preface: &[u8]) -> Option<Limits> {
    let p: &[u8; 24] = preface.try_into().ok()?;
    if &p[..4] != b"MCRO" || u16::from_be_bytes([p[4], p[5]]) != 1 {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes(p[i..i + 4].try_into().expect("4 bytes"));
    let limits = [word(8), word(12), word(16), word(20)];
    (limits[0] >= 1024 && limits[2] >= 1 && limits[3] >= 1).then_some(limits)
}

/// What the client's frames allow the server to send, read from the input: every frame the
/// server can have decoded (its reader stops at the first bad length), whether or not it was
/// valid, so these are upper bounds.
#[derive(Debug, Default)]
struct InputFacts {
    /// Ids of frames with the OPEN type byte.
    opened: HashSet<u32>,
    /// CREDIT increments per stream id (0: the connection).
    credits: HashMap<u32, u64>,
    /// PINGs without ACK.
    pings: usize,
}

impl InputFacts {
    fn new(body: &[u8], server_max_frame: u32) -> InputFacts {
        let mut facts = InputFacts::default();
        let (frames, _) = split_frames(body, server_max_frame);
        for raw in frames {
            if raw.len() < 6 {
                continue;
            }
            let id = u32::from_be_bytes(raw[..4].try_into().expect("4 bytes"));
            match (raw[4], raw.len()) {
                (wire::OPEN, _) => {
                    facts.opened.insert(id);
                }
                (wire::CREDIT, 10) => {
                    let increment = u32::from_be_bytes(raw[6..10].try_into().expect("4 bytes"));
                    *facts.credits.entry(id).or_default() += u64::from(increment);
                }
                (wire::PING, 14) if raw[5] & wire::END_STREAM == 0 => facts.pings += 1,
                _ => {}
            }
        }
        facts
    }
}

/// Checks the server's output against the protocol; returns its frames.
fn check_output(
    output: &[u8],
    preface: &[u8],
    client: Option<Limits>,
    server: Limits,
    input: &InputFacts,
) -> Vec<FrameSummary> {
    let [f, m, s, c] = server;
    let server_preface = wire::preface(f, m, s, c);
    let Some([max_frame, _, stream_window, connection_window]) = client else {
        // A wrong preface is answered, then the connection closes; an incomplete one is not.
        if preface.len() == 24 {
            assert_eq!(output, &server_preface[..], "answer to a wrong preface");
        } else {
            assert!(output.is_empty(), "answered an incomplete preface");
        }
        return Vec::new();
    };
    assert!(
        output.starts_with(&server_preface),
        "the server's preface: {:02x?}",
        &output[..output.len().min(24)]
    );
    let (raw_frames, end) = split_frames(&output[24..], max_frame);
    // Bytes of a frame cut short when the connection closed are fine; a frame over the
    // client's limit is not.
    if let Err(err) = end {
        panic!("the server sent a frame over the client's limit of {max_frame}: {err}");
    }
    let mut frames = Vec::new();
    let mut closed = HashSet::new();
    let mut sent: HashMap<u32, u64> = HashMap::new();
    let mut acks = 0usize;
    let mut protocol_goaway = None;
    for (i, raw) in raw_frames.into_iter().enumerate() {
        if let Some(at) = protocol_goaway {
            panic!("frame {i} follows the protocol-error GOAWAY at {at}");
        }
        let frame = parse_frame(raw.clone(), u32::MAX)
            .unwrap_or_else(|err| panic!("frame {i} does not parse: {err}: {raw:02x?}"));
        let opened = |id: u32| {
            assert!(
                input.opened.contains(&id),
                "frame {i} on stream {id}, which the client never opened: {frame:?}"
            );
        };
        match frame.kind {
            wire::DATA | wire::CLOSE => {
                opened(frame.id);
                assert!(
                    !closed.contains(&frame.id),
                    "frame {i} on stream {} after its CLOSE: {frame:?}",
                    frame.id
                );
                if frame.kind == wire::CLOSE {
                    closed.insert(frame.id);
                    assert!(frame.code.is_some_and(|c| c <= 16), "{frame:?}");
                } else {
                    assert!(!frame.flag, "a server DATA with END_STREAM: {frame:?}");
                }
                *sent.entry(frame.id).or_default() += u64::from(frame.amount);
            }
            wire::CREDIT => {
                if frame.id != 0 {
                    opened(frame.id);
                }
            }
            wire::PING => {
                if frame.flag {
                    acks += 1;
                    assert!(acks <= input.pings, "more PING answers than PINGs");
                }
            }
            wire::GOAWAY => {
                if frame.code == Some(3) {
                    protocol_goaway = Some(i);
                }
            }
            other => panic!("the server sent frame type {other}: {frame:?}"),
        }
        frames.push(frame);
    }
    let credit = |id: u32| input.credits.get(&id).copied().unwrap_or(0);
    let mut total = 0u64;
    for (&id, &bytes) in &sent {
        let allowed = u64::from(stream_window).min(MAX_CREDIT) + credit(id);
        assert!(
            bytes <= allowed,
            "the server sent {bytes} message bytes on stream {id}, over the {allowed} it was granted"
        );
        total += bytes;
    }
    let allowed = u64::from(connection_window).min(MAX_CREDIT) + credit(0);
    assert!(
        total <= allowed,
        "the server sent {total} message bytes, over the connection's {allowed}"
    );
    frames
}

#[cfg(test)]
mod tests {
    //! The output checks catch what they claim to (negative controls).

    use super::*;

    fn check(frames: &[Vec<u8>], input: &[u8]) {
        let client = client_limits(1); // 1 KiB frames, 16 B stream / 32 B connection windows
        let [f, m, s, c] = server_limits(false);
        let mut output = wire::preface(f, m, s, c);
        for frame in frames {
            output.extend(frame);
        }
        let facts = InputFacts::new(input, f);
        check_output(
            &output,
            &client_preface(1),
            Some(client),
            server_limits(false),
            &facts,
        );
    }

    fn opened() -> Vec<u8> {
        wire::open(1, true, "Fuzz.unary", 0, &[], &wire::msg(&[0xc0]))
    }

    #[test]
    fn a_well_behaved_output_passes() {
        check(
            &[wire::data(1, false, &[0; 16]), wire::close(1, 0, "", &[])],
            &opened(),
        );
    }

    #[test]
    #[should_panic(expected = "over the 16 it was granted")]
    fn data_over_the_stream_credit_is_caught() {
        check(&[wire::data(1, false, &[0; 17])], &opened());
    }

    #[test]
    fn credit_granted_in_the_input_counts() {
        let input = [opened(), wire::credit(1, 4)].concat();
        check(&[wire::data(1, false, &[0; 20])], &input);
    }

    #[test]
    #[should_panic(expected = "over the client's limit")]
    fn a_frame_over_the_clients_limit_is_caught() {
        check(&[wire::data(1, false, &[0; 1025])], &opened());
    }

    #[test]
    #[should_panic(expected = "END_STREAM")]
    fn end_stream_from_the_server_is_caught() {
        check(&[wire::data(1, true, &[])], &opened());
    }

    #[test]
    #[should_panic(expected = "never opened")]
    fn a_stream_never_opened_is_caught() {
        check(&[wire::close(3, 0, "", &[])], &opened());
    }

    #[test]
    #[should_panic(expected = "after its CLOSE")]
    fn a_frame_after_close_is_caught() {
        check(
            &[wire::close(1, 0, "", &[]), wire::data(1, false, &[])],
            &opened(),
        );
    }

    #[test]
    #[should_panic(expected = "follows the protocol-error GOAWAY")]
    fn a_frame_after_a_protocol_error_is_caught() {
        check(
            &[wire::goaway(1, 3, "bad"), wire::ping(false, 1)],
            &opened(),
        );
    }

    #[test]
    #[should_panic(expected = "more PING answers than PINGs")]
    fn an_unasked_ping_answer_is_caught() {
        check(&[wire::ping(true, 1)], &opened());
    }
}
