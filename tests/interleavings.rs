//! Property: whatever order a client's OPEN, DATA, END_STREAM and CANCEL frames come in, once
//! both sides are done no stream, handler or buffered byte is left on the server.
//!
//! A raw peer plays arbitrary scripts against a real server over the in-memory transport,
//! including scripts that break the protocol (DATA after END_STREAM): those end in GOAWAY,
//! and must leave nothing behind either.

mod common;
mod peer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro::{Code, ConnectionStats, Server};
use peer::{CANCEL, CLOSE, DATA, END, GOAWAY, OPEN, Peer, Settings, frame, messages};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

/// The calls a script may open: one of each kind, plus one that never ends by itself.
#[derive(Clone, Copy, Debug)]
enum Method {
    /// Unary: arguments inline, END_STREAM on the OPEN.
    Echo,
    /// Server streaming: arguments inline, END_STREAM on the OPEN.
    Range,
    /// Client streaming.
    Total,
    /// Bidirectional.
    EchoStream,
    /// Unary, runs until cancelled.
    Hold,
}

#[derive(Clone, Debug)]
enum Step {
    Open(Method),
    /// Items on a streaming call the script has not ended (picked modulo their number).
    Data(usize, u8),
    /// END_STREAM on a streaming call the script has not ended.
    End(usize),
    /// CANCEL on any call opened so far.
    Cancel(usize),
    /// DATA on any call opened so far: after END_STREAM it is a protocol error.
    Stray(usize),
    /// Let the server run before the next step.
    Yield,
}

fn step() -> impl Strategy<Value = Step> {
    let method = prop_oneof![
        Just(Method::Echo),
        Just(Method::Range),
        Just(Method::Total),
        Just(Method::EchoStream),
        Just(Method::Hold),
    ];
    prop_oneof![
        3 => method.prop_map(Step::Open),
        3 => (any::<usize>(), 0..4u8).prop_map(|(c, n)| Step::Data(c, n)),
        2 => any::<usize>().prop_map(Step::End),
        2 => any::<usize>().prop_map(Step::Cancel),
        1 => any::<usize>().prop_map(Step::Stray),
        1 => Just(Step::Yield),
    ]
}

fn open_frame(id: u32, method: Method) -> Vec<u8> {
    let (name, args, end): (&str, &[u8], bool) = match method {
        Method::Echo => ("Lab.echo", b"\xa2hi", true),
        Method::Range => ("Lab.range", b"\x03", true),
        Method::Total => ("Lab.total", b"\xc0", false),
        Method::EchoStream => ("Lab.echo_stream", b"\xc0", false),
        Method::Hold => ("Lab.hold", b"\xc0", true),
    };
    let flags = if end { END } else { 0 };
    frame(id, OPEN, flags, &peer::open_payload(name, 0, &[args]))
}

/// The `n`-th (modulo) opened call whose stream the script has not ended.
fn pick(opened: &[(u32, Method)], ended: &HashSet<u32>, n: usize) -> Option<u32> {
    let open: Vec<u32> = opened
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !ended.contains(id))
        .collect();
    (!open.is_empty()).then(|| open[n % open.len()])
}

/// What the peer learned from the server.
#[derive(Debug, Default)]
struct Heard {
    closed: HashMap<u32, Code>,
    goaway: bool,
    gone: bool,
}

/// Plays `script`, then finishes every call the script left open the way a client would (ends
/// the streams it had not ended, cancels `Lab.hold`), waits until the server has answered
/// every call not cancelled, and returns the server's counters at that point, with the
/// connection still up unless the script broke the protocol.
async fn play(script: Vec<Step>) -> (ConnectionStats, bool) {
    let builder = Server::builder()
        .add_service(common::LabServer::new(common::LabImpl::default()))
        .stream_window(4096)
        .max_concurrent_streams(8);
    let stats = builder.stats();
    let (client_io, server_io) = tokio::io::duplex(64 << 10);
    tokio::spawn(builder.serve_connection(server_io));
    let mut peer = Peer::new(client_io);
    peer.handshake(Settings::default()).await;
    let (read, mut write) = tokio::io::split(peer.io);

    let heard = Arc::new(Mutex::new(Heard::default()));
    let reader = tokio::spawn({
        let heard = heard.clone();
        async move {
            let mut peer = Peer::new(tokio::io::join(read, tokio::io::sink()));
            while let Some(next) = peer.recv().await {
                let mut heard = heard.lock().unwrap();
                match next.kind {
                    CLOSE => {
                        heard.closed.insert(next.stream, next.close_status().0);
                    }
                    GOAWAY => heard.goaway = true,
                    _ => {}
                }
            }
            heard.lock().unwrap().gone = true;
        }
    });

    let mut opened: Vec<(u32, Method)> = Vec::new();
    let mut ended = HashSet::new();
    let mut cancelled = HashSet::new();
    let mut next_id = 1;
    for step in script {
        let bytes = match step {
            Step::Open(method) => {
                let id = next_id;
                next_id += 2;
                opened.push((id, method));
                if !matches!(method, Method::Total | Method::EchoStream) {
                    ended.insert(id);
                }
                open_frame(id, method)
            }
            Step::Data(call, n) => {
                let Some(id) = pick(&opened, &ended, call) else {
                    continue;
                };
                let items: Vec<Vec<u8>> = (0..n).map(|i| vec![i]).collect();
                let items: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
                frame(id, DATA, 0, &messages(&items))
            }
            Step::End(call) => {
                let Some(id) = pick(&opened, &ended, call) else {
                    continue;
                };
                ended.insert(id);
                frame(id, DATA, END, &[])
            }
            Step::Cancel(_) | Step::Stray(_) if opened.is_empty() => continue,
            Step::Stray(call) => frame(
                opened[call % opened.len()].0,
                DATA,
                0,
                &messages(&[b"\x01"]),
            ),
            Step::Cancel(call) => {
                let id = opened[call % opened.len()].0;
                cancelled.insert(id);
                frame(id, CANCEL, 0, &[1])
            }
            Step::Yield => {
                tokio::task::yield_now().await;
                continue;
            }
        };
        // The server may already have closed the connection over a protocol error.
        let _ = write.write_all(&bytes).await;
    }
    for &(id, method) in &opened {
        if cancelled.contains(&id) {
            continue;
        }
        let bytes = if matches!(method, Method::Hold) {
            cancelled.insert(id);
            frame(id, CANCEL, 0, &[1])
        } else if ended.insert(id) {
            frame(id, DATA, END, &[])
        } else {
            continue;
        };
        let _ = write.write_all(&bytes).await;
    }
    let _ = write.flush().await;

    // Every call not cancelled gets its CLOSE, unless the connection went away.
    let answered = || {
        let heard = heard.lock().unwrap();
        heard.gone
            || opened
                .iter()
                .all(|(id, _)| cancelled.contains(id) || heard.closed.contains_key(id))
    };
    for _ in 0..2000 {
        if answered() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        answered(),
        "calls never answered: {:?}",
        heard.lock().unwrap()
    );
    settle(&stats).await;
    let after = stats.snapshot().totals;

    let _ = write.shutdown().await;
    reader.await.unwrap();
    let goaway = {
        let heard = heard.lock().unwrap();
        for code in heard.closed.values() {
            assert_ne!(*code, Code::Internal, "a handler failed: {heard:?}");
        }
        heard.goaway
    };
    settle(&stats).await;
    assert_eq!(
        stats.snapshot().connections,
        0,
        "the connection outlived its peer"
    );
    (after, goaway)
}

/// Gives the server's tasks time to run until its counters are zero (or a bound passes); the
/// caller asserts on what they are then.
async fn settle(stats: &micro::ServerStats) {
    common::eventually(|| stats.snapshot().totals == ConnectionStats::default()).await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("MICRO_INTERLEAVINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_interleaving_leaves_a_stream_behind(script in prop::collection::vec(step(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (stats, _goaway) = runtime.block_on(play(script));
        prop_assert_eq!(stats, ConnectionStats::default());
    }
}
