//! Hostile peers: a scripted raw client that lies, stalls and floods, against a real server.
//! Each case asserts the typed outcome, that memory stays bounded, and that well-behaved
//! clients are not affected. docs/RELIABILITY.md gives the figures and how to reproduce them.

mod common;
mod peer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use micro::{Client, Code};
use peer::{CANCEL, CREDIT, DATA, OPEN, PING, Peer, Settings, frame, lab, messages, open_payload};

/// A heavy loop's size: `default` in CI, or the value of the environment variable `var`.
fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Held by the tests that load the machine or measure memory, so that they run one at a time
/// and their figures are their own.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's resident memory in bytes (Linux), for figures and generous bounds.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test]
async fn every_protocol_violation_ends_the_connection_with_its_reason() {
    let server = lab(|b| b).await;
    let unary = |id: u32| frame(id, OPEN, 1, &open_payload("Lab.echo", 0, &[b"\xa2ok"]));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "exceeds the limit",
        ),
        (
            "a length below the header",
            vec![0, 0, 0, 2, 0, 0],
            "shorter than its header",
        ),
        ("length 0xFFFFFFFF", vec![0xff; 4], "exceeds the limit"),
        (
            "an unknown frame type",
            frame(1, 9, 0, &[]),
            "unknown frame type 9",
        ),
        ("DATA on stream 0", frame(0, DATA, 0, &[]), "stream 0"),
        ("OPEN on stream 0", unary(0), "stream 0"),
        ("PING on a stream", frame(3, PING, 0, &[0; 8]), "PING"),
        ("a short PING", frame(0, PING, 0, &[0; 7]), "PING"),
        (
            "a CANCEL with a trailing byte",
            frame(1, CANCEL, 0, &[1, 0]),
            "CANCEL",
        ),
        (
            "an id above 2^31-1",
            unary(0x8000_0001),
            "highest stream id",
        ),
        (
            "DATA for a stream never opened",
            frame(99, DATA, 0, &messages(&[b"\x01"])),
            "never opened",
        ),
        (
            "CANCEL for a stream never opened",
            frame(99, CANCEL, 0, &[1]),
            "never opened",
        ),
        (
            "CREDIT for a stream never opened",
            frame(99, CREDIT, 0, &7u32.to_be_bytes()),
            "never opened",
        ),
        (
            "a CREDIT of zero",
            frame(0, CREDIT, 0, &0u32.to_be_bytes()),
            "increment of 0",
        ),
        (
            "a connection CREDIT past 2^31-1",
            frame(0, CREDIT, 0, &0x7fff_ffffu32.to_be_bytes()),
            "overflows",
        ),
        (
            "a metadata block longer than the frame",
            {
                let mut open = open_payload("Lab.echo", 0, &[]);
                let at = open.len() - 4;
                open[at..].copy_from_slice(&1000u32.to_be_bytes());
                frame(1, OPEN, 1, &open)
            },
            "metadata runs past the end",
        ),
    ];
    for (what, bytes, reason_has) in cases {
        let mut peer = Peer::handshaken(server.addr).await;
        peer.send(&bytes).await;
        let (code, reason) = peer.goaway().await;
        assert_eq!(code, Code::InvalidArgument, "{what}: {reason}");
        assert!(reason.contains(reason_has), "{what}: {reason}");
    }
    // None of it left anything behind, and the server still serves.
    let client = common::LabClient::new(Client::connect(server.addr).await.unwrap());
    assert_eq!(
        client.echo("still here".into()).await.unwrap(),
        "still here"
    );
    assert_eq!(
        server.stats.snapshot().totals,
        micro::ConnectionStats::default()
    );
}

#[tokio::test]
async fn a_stream_credit_past_2_31_on_an_open_stream_is_a_protocol_error() {
    let server = lab(|b| b).await;
    let mut peer = Peer::handshaken(server.addr).await;
    peer.open(1, "Lab.hold", 0, b"\xc0", true).await;
    peer.credit(1, 0x7fff_ffff).await;
    let (code, reason) = peer.goaway().await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        reason.contains("overflows the window of stream 1"),
        "{reason}"
    );
    server.probe.wait_dropped(1).await;
}

#[tokio::test]
async fn a_bad_magic_gets_the_servers_preface_and_a_close() {
    let server = lab(|b| b).await;
    let mut peer = Peer::connect(server.addr).await;
    peer.send(b"SSH-2.0-OpenSSH_9.6\r\n\0\0\0").await;
    let theirs = peer.read_preface().await;
    assert_eq!(&theirs[..6], b"MCRO\0\x01");
    assert_eq!(peer.recv().await, None);
    assert_eq!(server.stats.snapshot().connections, 0);
}

#[tokio::test]
async fn frames_for_streams_that_ended_are_dropped_and_the_connection_goes_on() {
    let server = lab(|b| b).await;
    let mut peer = Peer::handshaken(server.addr).await;
    assert_eq!(
        peer.call(1, "Lab.echo", 0, b"\xa1a").await.close_status().0,
        Code::Ok
    );
    assert_eq!(
        peer.call(4, "Lab.echo", 0, b"\xa1a").await.close_status().0,
        Code::Ok
    );
    // Stream 1 ended; streams 2 and 3 were skipped, which counts as closed too.
    for id in [1, 2, 3] {
        peer.data(id, &[b"\x01"], false).await;
        peer.credit(id, 1000).await;
        peer.cancel(id).await;
    }
    let reply = peer.call(5, "Lab.echo", 0, b"\xa1b").await;
    assert_eq!(reply.close_status().0, Code::Ok);
    assert_eq!(reply.close_data(), messages(&[b"\xa1b"]));
}

#[tokio::test]
async fn a_call_dribbled_one_byte_at_a_time_is_served_and_keeps_the_connection_alive() {
    // Keepalive counts bytes, not frames: a peer slowly delivering one frame is alive.
    let server = lab(|b| {
        b.keepalive(Some(Duration::from_millis(20)))
            .keepalive_timeout(Duration::from_millis(40))
    })
    .await;
    let mut peer = Peer::handshaken(server.addr).await;
    let mut arg = vec![0xd9, 200];
    arg.extend([b'z'; 200]);
    let call = frame(1, OPEN, 1, &open_payload("Lab.echo", 0, &[&arg]));
    // 230 bytes, 2 ms apart: the frame takes ten keepalive intervals to arrive.
    peer.dribble(&call, Duration::from_millis(2)).await;
    let reply = peer.close_of(1).await;
    assert_eq!(reply.close_status().0, Code::Ok);
    assert_eq!(reply.close_data(), messages(&[&arg]));
}

#[tokio::test]
async fn opens_over_the_limit_are_refused_while_cancelled_handlers_still_run() {
    let server = lab(|b| b.max_concurrent_streams(2)).await;
    let mut peer = Peer::handshaken(server.addr).await;
    peer.open(1, "Lab.hold", 0, b"\xc0", true).await;
    peer.open(3, "Lab.hold", 0, b"\xc0", true).await;
    server.probe.wait_started(2).await;
    // Cancel both and open three more in the same write: the cancelled handlers have not been
    // dropped yet when the OPENs are read, so they still count against the limit.
    let mut burst = frame(1, CANCEL, 0, &[1]);
    burst.extend(frame(3, CANCEL, 0, &[1]));
    for id in [5, 7, 9] {
        burst.extend(frame(
            id,
            OPEN,
            1,
            &open_payload("Lab.echo", 0, &[b"\xa1x"]),
        ));
    }
    peer.send(&burst).await;
    for id in [5, 7, 9] {
        let (code, message) = peer.close_of(id).await.close_status();
        assert_eq!(code, Code::ResourceExhausted, "{message}");
        assert!(message.contains("retry"), "{message}");
    }
    // Once they are gone, the slots are free again.
    server.probe.wait_dropped(2).await;
    let reply = peer.call(11, "Lab.echo", 0, b"\xa1x").await;
    assert_eq!(reply.close_status().0, Code::Ok);
}

#[tokio::test]
async fn data_beyond_the_granted_credit_is_a_flow_control_violation() {
    let server = lab(|b| b.stream_window(64 << 10)).await;
    let mut peer = Peer::handshaken(server.addr).await;
    // Lab.sink does not read until released: nothing is granted back.
    peer.open(1, "Lab.sink", 0, b"\xc0", false).await;
    let message = vec![0; 40_000];
    peer.data(1, &[&message], false).await;
    peer.data(1, &[&message], false).await;
    let (code, reason) = peer.goaway().await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(reason.contains("window"), "{reason}");
}

#[tokio::test]
async fn a_peer_announcing_tiny_windows_is_served_within_them() {
    // The smallest windows a preface may announce: the server splits its replies to fit.
    let server = lab(|b| b).await;
    let mut peer = Peer::connect(server.addr).await;
    peer.handshake(Settings {
        max_frame_size: 1024,
        max_message_size: 1 << 20,
        stream_window: 1024,
        connection_window: 1024,
    })
    .await;
    // Lab.blob(5000): a 5 KB reply through a 1 KiB window, granted by hand.
    peer.open(1, "Lab.blob", 0, b"\xcd\x13\x88", true).await;
    let mut received = 0;
    let close = loop {
        let next = peer.next_on(1).await;
        assert!(next.payload.len() <= 1024, "{next:?}");
        if next.kind == peer::CLOSE {
            break next;
        }
        received += next.payload.len();
        peer.credit(1, next.payload.len() as u32).await;
        peer.credit(0, next.payload.len() as u32).await;
    };
    received += close.close_data().len();
    assert_eq!(close.close_status().0, Code::Ok);
    assert!(received > 5000, "{received} bytes");
}

#[tokio::test]
async fn messagepack_bombs_fail_their_call_and_the_connection_lives() {
    let server = lab(|b| b).await;
    let mut peer = Peer::handshaken(server.addr).await;
    let mut nested = vec![0x91; 100_000]; // [[[[...]]]], 100,000 deep, in 100 KB
    nested.push(0xc0);
    let bombs: [(&str, &str, Vec<u8>); 5] = [
        ("nesting", "Lab.echo", nested),
        (
            "array32 of 2^32-1",
            "Lab.echo",
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "str32 of 2^32-1",
            "Lab.echo",
            vec![0xdb, 0xff, 0xff, 0xff, 0xff],
        ),
        ("bin32 of 2^32-1", "Lab.echo_blob", {
            let mut map = vec![0x81, 0xa4];
            map.extend(b"data");
            map.extend([0xc6, 0xff, 0xff, 0xff, 0xff]);
            map
        }),
        (
            "map32 of 2^32-1 as two arguments",
            "Lab.add",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    let mut id = 1;
    for (what, method, args) in bombs {
        let (code, message) = peer.call(id, method, 0, &args).await.close_status();
        assert_eq!(code, Code::InvalidArgument, "{what}: {message}");
        id += 2;
    }
    // And in a request stream, between good items of the same DATA frame (which the handler
    // reads as one run): the call fails, the rest of the frame is dropped, the connection
    // goes on.
    peer.open(id, "Lab.total", 0, b"\xc0", false).await;
    let mut nested = vec![0x91; 100_000];
    nested.push(0x01);
    peer.data(id, &[b"\x01", &nested, b"\x02"], true).await;
    let (code, message) = peer.close_of(id).await.close_status();
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let reply = peer
        .call(id + 2, "Lab.add", 0, b"\x82\xa1a\x01\xa1b\x02")
        .await;
    assert_eq!(reply.close_status().0, Code::Ok);
    assert_eq!(reply.close_data(), messages(&[b"\x03"]));
    settles(&server.stats, 1).await;
}

#[tokio::test]
async fn oversized_metadata_fails_its_call_and_the_connection_lives() {
    let server = lab(|b| b.max_metadata_size(1024)).await;
    let mut peer = Peer::handshaken(server.addr).await;
    let value = "v".repeat(2000);
    let open = peer::open_payload_with_metadata("Lab.echo", 0, &[("k", &value)], &[b"\xa1a"]);
    peer.frame(1, OPEN, 1, &open).await;
    let (code, message) = peer.close_of(1).await.close_status();
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    let open = peer::open_payload_with_metadata("Lab.header", 0, &[("k", "small")], &[b"\xa1k"]);
    peer.frame(3, OPEN, 1, &open).await;
    let reply = peer.close_of(3).await;
    assert_eq!(reply.close_status().0, Code::Ok);
    assert_eq!(reply.close_data(), messages(&[b"\xa5small"]));
}

#[tokio::test]
async fn a_client_that_vanishes_mid_call_is_detected_by_keepalive_and_its_calls_cancelled() {
    // A half-open connection: the peer stops answering (no FIN, no reset) with a call running.
    let server = lab(|b| {
        b.keepalive(Some(Duration::from_millis(50)))
            .keepalive_timeout(Duration::from_millis(100))
    })
    .await;
    let mut peer = Peer::handshaken(server.addr).await;
    peer.open(1, "Lab.hold", 0, b"\xc0", true).await;
    server.probe.wait_started(1).await;
    // Never answer the PING: within interval + timeout the server gives the connection up and
    // drops the handler.
    peer.closed().await;
    server.probe.wait_dropped(1).await;
    settles(&server.stats, 0).await;
}

/// Latency percentiles in µs: (p50, p99).
fn percentiles(mut samples: Vec<Duration>) -> (u128, u128) {
    if samples.is_empty() {
        return (0, 0);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_micros();
    (at(0.50), at(0.99))
}

/// Unary calls from a well-behaved client until `done`, and at least `at_least` of them;
/// their latencies.
async fn legitimate_calls(
    client: &common::LabClient,
    done: &AtomicBool,
    at_least: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while !done.load(Ordering::Acquire) || latencies.len() < at_least {
        let start = Instant::now();
        assert_eq!(client.add(2, 3).await.unwrap(), 5);
        latencies.push(start.elapsed());
    }
    latencies
}

/// Waits (bounded) until the server's counters are back to zero on `connections` connections.
async fn settles(stats: &micro::ServerStats, connections: usize) {
    let settled = common::eventually(|| {
        let now = stats.snapshot();
        now.connections == connections && now.totals == micro::ConnectionStats::default()
    })
    .await;
    assert!(settled, "the server never settled: {:?}", stats.snapshot());
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs `attack` against `server` while a well-behaved client calls it on its own connection,
/// and prints one line of figures: the client's latency before and during the attack, the
/// process's memory, the most handlers the server ran at once. Returns the attack's result.
async fn under_attack<T: Send + 'static>(
    what: &str,
    server: &peer::LabAt,
    attack: impl Future<Output = T> + Send + 'static,
) -> T {
    let legit = common::LabClient::new(Client::connect(server.addr).await.unwrap());
    let never = AtomicBool::new(true);
    let quiet = percentiles(legitimate_calls(&legit, &never, 2000).await);
    let rss_before = rss();
    let done = Arc::new(AtomicBool::new(false));
    let most_running = Arc::new(AtomicUsize::new(0));
    let sampler = tokio::spawn({
        let (stats, most) = (server.stats.clone(), most_running.clone());
        async move {
            loop {
                let running = stats.snapshot().totals.running_handlers;
                most.fetch_max(running, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    });
    let started = Instant::now();
    let attack = tokio::spawn({
        // Set however the attack ends: one that panics must fail the test, not leave the
        // legitimate calls running forever.
        let done = SetOnDrop(done.clone());
        async move {
            let _done = done;
            attack.await
        }
    });
    let during = legitimate_calls(&legit, &done, 1).await;
    let result = attack.await.unwrap();
    let elapsed = started.elapsed();
    sampler.abort();
    let rss_after = rss();
    let (p50, p99) = percentiles(during.clone());
    eprintln!(
        "FIGURES | {what} | {elapsed:.2?} | quiet p50/p99 {}/{} µs | during ({} calls) \
         p50/p99 {p50}/{p99} µs | RSS {} -> {} KiB | most handlers running {}",
        quiet.0,
        quiet.1,
        during.len(),
        rss_before.map_or(0, |b| b >> 10),
        rss_after.map_or(0, |b| b >> 10),
        most_running.load(Ordering::Relaxed),
    );
    result
}

/// The frames of `count` open-then-cancel pairs of `Lab.hold`, from stream `first` on.
fn open_and_cancel(first: u32, count: u32) -> Vec<u8> {
    let open = open_payload("Lab.hold", 0, &[b"\xc0"]);
    let mut bytes = Vec::new();
    for id in (first..).step_by(2).take(count as usize) {
        bytes.extend(frame(id, OPEN, 1, &open));
        bytes.extend(frame(id, CANCEL, 0, &[1]));
    }
    bytes
}

/// What a rapid-reset attacker saw.
#[derive(Debug)]
struct RapidReset {
    /// Open+cancel pairs it wrote before it learned it was cut off.
    sent: u32,
    /// The server's GOAWAY, if any, and how many OPENs the server had read by then.
    goaway: Option<(Code, String, u32)>,
}

/// The rapid-reset attack: `attempts` open-then-cancel pairs on one connection, written as
/// fast as the socket takes them, while reading (and dropping) whatever the server answers.
/// After its loop it makes one real call, to show whether its connection is still up.
async fn rapid_reset(addr: std::net::SocketAddr, attempts: u32) -> RapidReset {
    use tokio::io::AsyncWriteExt;
    let attacker = Peer::handshaken(addr).await;
    let (read, mut write) = attacker.io.into_split();
    let last = 2 * attempts + 1;
    let cut_off = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn({
        let cut_off = cut_off.clone();
        async move {
            let mut peer = Peer::new(tokio::io::join(read, tokio::io::sink()));
            while let Some(next) = peer.recv().await {
                if next.kind == peer::GOAWAY {
                    cut_off.store(true, Ordering::Release);
                    let last_opened = u32::from_be_bytes(next.payload[..4].try_into().unwrap());
                    peer.closed().await;
                    let (code, reason) = next.goaway();
                    return Some((code, reason, last_opened.div_ceil(2)));
                }
                if next.stream == last {
                    assert_eq!(next.close_status().0, Code::Ok);
                    return None;
                }
            }
            panic!("closed without GOAWAY");
        }
    });
    let mut sent = 0;
    // A real attacker would go on writing; this one stops when it is told, to count.
    while sent < attempts && !cut_off.load(Ordering::Acquire) {
        let batch = 512.min(attempts - sent);
        if write
            .write_all(&open_and_cancel(2 * sent + 1, batch))
            .await
            .is_err()
        {
            break;
        }
        sent += batch;
    }
    if sent == attempts {
        let echo = frame(last, OPEN, 1, &open_payload("Lab.echo", 0, &[b"\xa1x"]));
        let _ = write.write_all(&echo).await;
    }
    let goaway = reader.await.unwrap();
    RapidReset { sent, goaway }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_is_cut_off_by_the_cancel_budget() {
    let _one_at_a_time = HEAVY.lock().await;
    let attempts = size("MICRO_RAPID_RESET", 1_000_000) as u32;
    let server = lab(|b| b).await;
    let attack = rapid_reset(server.addr, attempts);
    let seen = under_attack("rapid reset, cancel budget on", &server, attack).await;
    eprintln!("FIGURES | rapid reset, cancel budget on | {seen:?}");
    let (code, reason, opens_read) = seen.goaway.expect("the attacker was not disconnected");
    assert_eq!(code, Code::ResourceExhausted);
    assert!(reason.contains("cancel budget"), "{reason}");
    assert!(seen.sent < attempts && opens_read < attempts);
    settles(&server.stats, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_without_a_budget_stays_within_the_concurrency_limit() {
    // With the budget off, the concurrency limit alone bounds the damage: handlers that were
    // cancelled count until they are dropped, and memory stays flat.
    let _one_at_a_time = HEAVY.lock().await;
    let attempts = size("MICRO_RAPID_RESET_UNLIMITED", 20_000) as u32;
    let server = lab(|b| b.cancel_budget(u32::MAX)).await;
    let attack = rapid_reset(server.addr, attempts);
    let seen = under_attack("rapid reset, cancel budget off", &server, attack).await;
    assert!(seen.goaway.is_none(), "{seen:?}");
    assert_eq!(seen.sent, attempts);
    settles(&server.stats, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_core_alone_for_comparison() {
    // Not an attack: one thread spinning for half a second. What the client's latency does
    // when it merely shares the two cores, to read the attacks' figures against.
    let _one_at_a_time = HEAVY.lock().await;
    let server = lab(|b| b).await;
    let spins = under_attack("control: one core spinning, no attack", &server, async {
        tokio::task::spawn_blocking(|| {
            let start = Instant::now();
            let mut spins = 0u64;
            while start.elapsed() < Duration::from_millis(500) {
                spins = std::hint::black_box(spins + 1);
            }
            spins
        })
        .await
        .unwrap()
    })
    .await;
    assert!(spins > 0);
    settles(&server.stats, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_peer_that_never_reads_is_cut_off() {
    let _one_at_a_time = HEAVY.lock().await;
    let server = lab(|b| b.keepalive_timeout(Duration::from_millis(500))).await;
    let addr = server.addr;
    let attack = async move {
        let mut peer = Peer::handshaken(addr).await;
        let batch = frame(0, PING, 0, &[0; 8]).repeat(10_000);
        let mut batches = 0;
        while peer.try_send(&batch).await {
            batches += 1;
            assert!(batches < 1000, "never cut off");
        }
        batches
    };
    let batches = under_attack("PING flood, never reading", &server, attack).await;
    eprintln!("FIGURES | PING flood, never reading | {batches} batches of 10,000 written");
    settles(&server.stats, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_empty_data_is_cut_off() {
    let _one_at_a_time = HEAVY.lock().await;
    let server = lab(|b| b).await;
    let addr = server.addr;
    let attack = async move {
        let mut peer = Peer::handshaken(addr).await;
        peer.open(1, "Lab.total", 0, b"\xc0", false).await;
        let batch = frame(1, DATA, 0, &[]).repeat(1_000);
        let (read, mut write) = peer.io.into_split();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while write.write_all(&batch).await.is_ok() {}
        });
        let goaway = Peer::new(tokio::io::join(read, tokio::io::sink()))
            .goaway()
            .await;
        writer.abort();
        goaway
    };
    let (code, reason) = under_attack("empty DATA flood", &server, attack).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(reason.contains("carry nothing"), "{reason}");
    settles(&server.stats, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_garbage_connections_in_a_row_change_nothing() {
    let _one_at_a_time = HEAVY.lock().await;
    let n = size("MICRO_GARBAGE_CONNECTIONS", 1000);
    let server = lab(|b| b).await;
    let addr = server.addr;
    let attack = async move {
        for i in 0..n {
            let mut peer = Peer::connect(addr).await;
            if i % 2 == 0 {
                // Not micro at all: the server answers its preface and closes.
                peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
                let _ = peer.read_preface().await;
            } else {
                // A good handshake, then a frame of another protocol: GOAWAY.
                peer.handshake(Settings::default()).await;
                peer.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                    .await;
                assert_eq!(peer.goaway().await.0, Code::InvalidArgument);
            }
        }
    };
    under_attack("1,000 garbage connections", &server, attack).await;
    settles(&server.stats, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bombs_on_one_connection_fail_their_calls_only() {
    let _one_at_a_time = HEAVY.lock().await;
    let n = size("MICRO_BOMBS", 1000) as u32;
    let server = lab(|b| b).await;
    let addr = server.addr;
    let attack = async move {
        let mut peer = Peer::handshaken(addr).await;
        let mut bomb = vec![0x91; 100_000];
        bomb.push(0xc0);
        for i in 0..n {
            let close = peer.call(2 * i + 1, "Lab.echo", 0, &bomb).await;
            assert_eq!(close.close_status().0, Code::InvalidArgument);
        }
    };
    under_attack("1,000 nesting bombs (100 KB each)", &server, attack).await;
    settles(&server.stats, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_streams_with_frequent_cancels_never_trip_a_limit() {
    let _one_at_a_time = HEAVY.lock().await;
    let streams = size("MICRO_LEGIT_STREAMS", 10_000);
    let server = lab(|b| b.max_concurrent_streams(streams as u32)).await;
    let client = common::LabClient::new(Client::connect(server.addr).await.unwrap());
    for round in 0..2u64 {
        let all_open = std::sync::Arc::new(tokio::sync::Barrier::new(streams));
        let calls: Vec<_> = (0..streams as u64)
            .map(|i| {
                let client = client.clone();
                let all_open = all_open.clone();
                tokio::spawn(async move {
                    let mut duplex = client.echo_stream_duplex().await.unwrap();
                    duplex.send(i).await.unwrap();
                    assert_eq!(duplex.recv().await.unwrap(), Some(i));
                    all_open.wait().await;
                    // One call in three is abandoned half way, as a client that lost
                    // interest does: CANCEL with the handler still running.
                    if (i + round) % 3 == 0 {
                        return false;
                    }
                    duplex.send(i + 1).await.unwrap();
                    assert_eq!(duplex.recv().await.unwrap(), Some(i + 1));
                    duplex.close_send().unwrap();
                    assert_eq!(duplex.recv().await.unwrap(), None);
                    true
                })
            })
            .collect();
        let mut finished = 0;
        for call in calls {
            finished += usize::from(call.await.unwrap());
        }
        assert_eq!(
            finished,
            (0..streams as u64).filter(|i| (i + round) % 3 != 0).count()
        );
    }
    // The same connection throughout: no GOAWAY, no reconnect.
    assert_eq!(client.add(1, 1).await.unwrap(), 2);
    settles(&server.stats, 1).await;
    assert_eq!(server.stats.snapshot().connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_stalled_connections_hold_little_memory_and_silent_ones_time_out() {
    let _one_at_a_time = HEAVY.lock().await;
    let n = size("MICRO_STALLED_CONNECTIONS", 1000);
    let server = lab(|b| b.handshake_timeout(Duration::from_secs(1))).await;
    let addr = server.addr;
    let stats = server.stats.clone();
    // Each declares a frame just over 1 MiB (under the cap), sends its header and a few bytes, and
    // stalls: the server must not reserve the declared length.
    let attack = async move {
        let before = rss();
        let mut stalled = Vec::with_capacity(n);
        for _ in 0..n {
            let mut peer = Peer::handshaken(addr).await;
            let mut start = ((1u32 << 20) + 5).to_be_bytes().to_vec();
            start.extend(1u32.to_be_bytes());
            start.extend([DATA, 0]);
            start.extend([0xAB; 100]);
            peer.send(&start).await;
            stalled.push(peer);
        }
        // Let every server reader take its bytes in.
        for _ in 0..1000 {
            if stats.snapshot().connections == n + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(stats.snapshot().connections, n + 1);
        let per_connection = match (before, rss()) {
            (Some(before), Some(after)) => after.saturating_sub(before) / n,
            _ => 0,
        };
        eprintln!(
            "FIGURES | {n} stalled connections | {per_connection} bytes of RSS per connection \
             (both ends, in one process)"
        );
        assert!(
            per_connection < 64 << 10,
            "{per_connection} bytes per stalled connection"
        );
        stalled
    };
    let stalled = under_attack("1,000 connections stalled mid-frame", &server, attack).await;

    // Connections that never send their preface are closed after the handshake timeout.
    let attack = async move {
        let mut silent = Vec::with_capacity(n);
        for _ in 0..n {
            silent.push(Peer::connect(addr).await);
        }
        for peer in &mut silent {
            assert_eq!(peer.recv().await, None, "a silent connection was kept");
        }
    };
    under_attack(
        "1,000 connections silent before the handshake",
        &server,
        attack,
    )
    .await;
    // The stalled ones are still served: they completed their handshake and keepalive sees
    // their bytes. Once they go, nothing is left.
    settles(&server.stats, n).await;
    drop(stalled);
    settles(&server.stats, 0).await;
}
