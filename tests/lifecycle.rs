//! What happens around calls: cancellation, deadlines, lost connections, flow control, limits
//! and shutdown. Outcomes and counts are asserted, never elapsed times.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Blob, Harness, Probe, Transport};
use futures::StreamExt;
use micro::{Client, Code};

async fn dropping_a_call_cancels_its_handler(transport: Transport) {
    let h = Harness::start(transport).await;
    let client = h.client.clone();
    let call = tokio::spawn(async move { client.hold().await });
    h.probe.wait_started(1).await;
    call.abort();
    h.probe.wait_dropped(1).await;

    // dropping a response stream cancels a streaming call the same way
    let mut flood = h.client.flood(16).await.unwrap();
    assert!(flood.next().await.unwrap().is_ok());
    drop(flood);
    h.probe.wait_dropped(2).await;
    let stats = h.client.client().stats().unwrap();
    assert_eq!(stats.open_streams, 0, "{stats:?}");
}

async fn deadline_exceeded_while_the_handler_sleeps(transport: Transport) {
    let h = Harness::start(transport).await;
    let err = h
        .client
        .nap(60_000)
        .timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    h.probe.wait_dropped(1).await;

    // a streaming call's deadline covers reading its replies too (long enough for the open
    // to succeed on a loaded machine; the reading below outlasts it anyway)
    let mut flood = h
        .client
        .flood(8)
        .timeout(Duration::from_millis(1000))
        .await
        .unwrap();
    let err = loop {
        match flood.next().await.unwrap() {
            Ok(_) => continue,
            Err(err) => break err,
        }
    };
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(flood.next().await.is_none());
    h.probe.wait_dropped(2).await;
}

async fn client_default_timeout_applies_to_every_call(transport: Transport) {
    let h = Harness::with(
        transport,
        |b| b,
        Client::builder().timeout(Duration::from_millis(50)),
    )
    .await;
    assert_eq!(
        h.client.nap(60_000).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    assert_eq!(
        h.client
            .nap(1)
            .timeout(Duration::from_secs(30))
            .await
            .unwrap(),
        1,
        "a call's own timeout wins"
    );
    // a long-lived stream can opt out of the default
    let mut flood = h.client.flood(8).no_timeout().await.unwrap();
    flood.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    for _ in 0..10 {
        flood.next().await.unwrap().unwrap();
    }
}

async fn unread_streams_do_not_block_other_calls(transport: Transport) {
    // Sixteen unread streams each fill their 32 KiB window: twice the 256 KiB connection
    // window. Stream windows bound what each holds, so a slow stream never blocks the others:
    // another call goes straight through, and memory stays within the stream windows.
    const STREAM_WINDOW: u32 = 32 * 1024;
    let client = Client::builder()
        .stream_window(STREAM_WINDOW)
        .connection_window(256 * 1024);
    let h = Harness::with(transport, |b| b, client).await;
    let mut floods = Vec::new();
    for _ in 0..16 {
        floods.push(h.client.flood(1024).await.unwrap());
    }
    Probe::settle(&h.probe.produced).await;
    let stats = h.client.client().stats().unwrap();
    assert!(
        stats.buffered_bytes > 256 * 1024,
        "the streams did fill up: {stats:?}"
    );
    assert!(
        stats.buffered_bytes <= 16 * STREAM_WINDOW as usize,
        "{stats:?}"
    );
    let reply = h
        .client
        .echo("through".into())
        .timeout(Duration::from_secs(10))
        .await;
    assert_eq!(reply.unwrap(), "through");
    // and every stalled stream still flows once read
    for flood in &mut floods {
        for _ in 0..100 {
            flood.next().await.unwrap().unwrap();
        }
    }
}

/// One busy stream does not starve the other calls on its connection, counted in messages: on
/// one thread, a reader that always has messages queued gives the thread up now and then
/// (tokio's cooperative budget), and so does the handler producing them, so a unary call made
/// meanwhile completes after a bounded number of the flood's messages, not a window's worth
/// per turn.
#[tokio::test]
async fn a_busy_stream_does_not_starve_a_call_on_the_same_connection() {
    let h = Harness::start(Transport::Memory).await;
    let read = Arc::new(AtomicU64::new(0));
    let mut flood = h.client.range(u64::MAX).await.unwrap();
    let reader = tokio::spawn({
        let read = read.clone();
        async move {
            while let Some(item) = flood.next().await {
                item.unwrap();
                read.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // The flood is under way, its window full (2 MiB of 9-byte messages: ~200,000 of them).
    while read.load(Ordering::Relaxed) < 200_000 {
        tokio::task::yield_now().await;
    }
    let mut during = Vec::new();
    for _ in 0..20 {
        let before = read.load(Ordering::Relaxed);
        assert_eq!(h.client.add(1, 2).await.unwrap(), 3);
        during.push(read.load(Ordering::Relaxed) - before);
    }
    reader.abort();
    during.sort_unstable();
    // The call waits for one budget of the flood's messages (128 here); without the budget the
    // reader drained everything queued each turn: about 270,000 messages per call.
    assert!(
        during[during.len() / 2] < 10_000,
        "flood messages read while one call was made: {during:?}"
    );
}

async fn server_streaming_producer_waits_for_the_reader(transport: Transport) {
    const WINDOW: u32 = 64 * 1024;
    const ITEM: u32 = 1024;
    let client = Client::builder().stream_window(WINDOW);
    let h = Harness::with(transport, |b| b, client).await;
    let mut flood = h.client.flood(ITEM).await.unwrap();
    assert_eq!(
        flood.next().await.unwrap().unwrap().data.len(),
        ITEM as usize
    );
    // The reader stops; the producer must stop once the window is full.
    let produced = Probe::settle(&h.probe.produced).await;
    let wire_item = (ITEM + 4 + 5) as u64; // length prefix, map/bin headers
    let max = 1 + WINDOW as u64 / (ITEM as u64) + 2;
    assert!(
        produced <= max,
        "produced {produced} items of ~{wire_item} bytes into a {WINDOW}-byte window"
    );
    let stats = h.client.client().stats().unwrap();
    assert!(stats.buffered_bytes <= WINDOW as usize, "{stats:?}");
    // reading on lets it go on
    for _ in 0..500 {
        flood.next().await.unwrap().unwrap();
    }
    assert!(h.probe.produced.load(Ordering::SeqCst) > produced);
}

async fn client_streaming_producer_waits_for_the_handler(transport: Transport) {
    const WINDOW: u32 = 64 * 1024;
    const ITEM: usize = 1024;
    let h = Harness::with(transport, |b| b.stream_window(WINDOW), Client::builder()).await;
    let pulled = Arc::new(AtomicU64::new(0));
    let items = {
        let pulled = pulled.clone();
        futures::stream::repeat(()).take(1_000).map(move |()| {
            pulled.fetch_add(1, Ordering::SeqCst);
            Blob {
                data: vec![3; ITEM],
            }
        })
    };
    let client = h.client.clone();
    let call = tokio::spawn(async move { client.sink(items).await });
    let sent = Probe::settle(&pulled).await;
    let max = WINDOW as u64 / ITEM as u64 + 2;
    assert!(
        sent <= max,
        "the client sent {sent} items into a {WINDOW}-byte window the handler does not read"
    );
    assert_eq!(h.probe.consumed.load(Ordering::SeqCst), 0);
    h.probe.release.notify_one();
    assert_eq!(call.await.unwrap().unwrap(), 1_000);
}

async fn concurrent_stream_limit_refuses_with_resource_exhausted(transport: Transport) {
    let h = Harness::with(
        transport,
        |b| b.max_concurrent_streams(2),
        Client::builder(),
    )
    .await;
    let holds: Vec<_> = (0..2)
        .map(|_| {
            let client = h.client.clone();
            tokio::spawn(async move { client.hold().await })
        })
        .collect();
    h.probe.wait_started(2).await;
    let err = h.client.echo("third".into()).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // the connection is fine, and a slot frees when a call ends
    holds[0].abort();
    h.probe.wait_dropped(1).await;
    let mut attempts = 0;
    loop {
        match h.client.echo("again".into()).await {
            Ok(reply) => break assert_eq!(reply, "again"),
            // the handler is dropped an instant before its slot is counted free
            Err(err) if err.code() == Code::ResourceExhausted && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(err) => panic!("{err}"),
        }
    }
    holds[1].abort();
}

async fn oversized_messages_fail_their_call_only(transport: Transport) {
    let h = Harness::with(
        transport,
        |b| b.max_message_size(1024),
        Client::builder().max_message_size(2048),
    )
    .await;
    let err = h.client.echo("x".repeat(2000)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let err = h.client.blob(4096).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // messages under the limit on the same connection pass
    let small = h
        .client
        .total(futures::stream::iter([1u64, 2]))
        .await
        .unwrap();
    assert_eq!(small, (2, 3));
    let err = h
        .client
        .echo_blob(Blob {
            data: vec![0; 1500],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(h.client.echo("small".into()).await.unwrap(), "small");
}

async fn graceful_shutdown_lets_the_call_in_flight_finish(transport: Transport) {
    let mut h = Harness::start(transport).await;
    let client = h.client.clone();
    let in_flight = tokio::spawn(async move { client.nap(300).await });
    // the call is running on the server before the shutdown starts
    while h.probe.napping.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let server = h.shutdown();
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        300,
        "the call in flight completes"
    );
    server.await.unwrap().unwrap();
    let err = h.client.echo("late".into()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

async fn server_gone_fails_calls_with_unavailable(transport: Transport) {
    let mut h = Harness::start(transport).await;
    let mut flood = h.client.flood(8).await.unwrap();
    flood.next().await.unwrap().unwrap();
    let client = h.client.clone();
    let hold = tokio::spawn(async move { client.hold().await });
    h.probe.wait_started(1).await;
    // no grace: the server task is torn down with its connections
    let server = h.shutdown();
    server.abort();
    let err = hold.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let err = loop {
        match flood.next().await {
            Some(Ok(_)) => continue,
            Some(Err(err)) => break err,
            None => panic!("a lost connection is an error, not an end"),
        }
    };
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    h.probe.wait_dropped(2).await;
}

/// Calls per kind in the cancellation storm: 500 in CI, `MICRO_SOAK_CALLS=100000` for the
/// full run.
fn soak_calls() -> usize {
    std::env::var("MICRO_SOAK_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

async fn a_storm_of_cancelled_calls_leaves_nothing_behind(transport: Transport) {
    let h = Harness::with(
        transport,
        |b| b.max_concurrent_streams(10_000),
        Client::builder(),
    )
    .await;
    let n = soak_calls();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..4 * n {
        let client = h.client.clone();
        calls.spawn(async move {
            let short = Duration::from_millis(1);
            match i % 4 {
                // unary, cut by the deadline
                0 => assert!(client.hold().timeout(short).await.is_err()),
                // server streaming, dropped after one item
                1 => {
                    let mut flood = client.flood(64).await.unwrap();
                    flood.next().await.unwrap().unwrap();
                }
                // client streaming, cut by the deadline while the handler waits
                2 => {
                    let items = futures::stream::iter([Blob { data: vec![1; 64] }]);
                    assert!(client.sink(items).timeout(short).await.is_err());
                }
                // bidirectional, abandoned mid-stream
                _ => {
                    let mut duplex = client.until_end_duplex().await.unwrap();
                    duplex.send(1).await.unwrap();
                }
            }
        });
        if calls.len() >= 200 {
            calls.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
    // Everything the calls held is given back on both sides (bounded wait for the last drops).
    let settled = common::eventually(|| {
        let server = h.stats.snapshot().totals;
        let client = h.client.client().stats().unwrap();
        server.open_streams + server.running_handlers + server.buffered_bytes == 0
            && client.open_streams + client.buffered_bytes == 0
    })
    .await;
    let (server, client) = (h.stats.snapshot(), h.client.client().stats().unwrap());
    assert!(settled, "left behind: server {server:?}, client {client:?}");
    assert_eq!(
        server.connections, 1,
        "no GOAWAY for legitimate cancels: {server:?}"
    );
    assert_eq!(
        h.client.echo("still fine".into()).await.unwrap(),
        "still fine"
    );
}

on_both_transports!(
    a_storm_of_cancelled_calls_leaves_nothing_behind,
    dropping_a_call_cancels_its_handler,
    deadline_exceeded_while_the_handler_sleeps,
    client_default_timeout_applies_to_every_call,
    unread_streams_do_not_block_other_calls,
    server_streaming_producer_waits_for_the_reader,
    client_streaming_producer_waits_for_the_handler,
    concurrent_stream_limit_refuses_with_resource_exhausted,
    oversized_messages_fail_their_call_only,
    graceful_shutdown_lets_the_call_in_flight_finish,
    server_gone_fails_calls_with_unavailable,
);

/// A TCP proxy that can be cut, to lose a connection mid-stream without either side closing it.
mod proxy {
    use std::net::SocketAddr;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    pub(crate) struct Proxy {
        pub(crate) addr: SocketAddr,
        task: JoinHandle<()>,
    }

    impl Proxy {
        pub(crate) async fn start(target: SocketAddr) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let task = tokio::spawn(async move {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let mut outbound = TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
            Proxy { addr, task }
        }

        /// Drops both sockets at once.
        pub(crate) fn cut(self) {
            self.task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_mid_stream_fails_both_sides() {
    let h = Harness::start(Transport::Tcp).await;
    let proxy = proxy::Proxy::start(h.addr.unwrap()).await;
    let client = common::LabClient::connect(proxy.addr).await.unwrap();
    let mut duplex = client.echo_stream_duplex().await.unwrap();
    duplex.send(1).await.unwrap();
    assert_eq!(duplex.recv().await.unwrap(), Some(1));
    let holder = client.clone();
    let hold = tokio::spawn(async move { holder.hold().await });
    h.probe.wait_started(1).await;

    proxy.cut();

    let err = duplex.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert_eq!(hold.await.unwrap().unwrap_err().code(), Code::Unavailable);
    // the server noticed too: the handler was dropped
    h.probe.wait_dropped(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_client_reconnects_with_backoff() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = |listener| {
        let service = common::LabServer::new(common::LabImpl::default());
        tokio::spawn(
            micro::Server::builder()
                .add_service(service)
                .serve_listener(listener),
        )
    };
    let server = serve(listener);
    let client = common::LabClient::connect(addr).await.unwrap();
    assert_eq!(client.echo("before".into()).await.unwrap(), "before");
    let holder = client.clone();
    let in_flight = tokio::spawn(async move { holder.hold().await });
    tokio::task::yield_now().await;

    server.abort(); // the server process dies, and its port closes
    let _ = server.await;
    let err = in_flight.await.unwrap().unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unavailable,
        "a call in flight fails, it does not hang: {err}"
    );
    let first = client.echo("down".into()).await.unwrap_err();
    assert_eq!(first.code(), Code::Unavailable, "{first}");
    // within the backoff, calls fail at once instead of trying to connect again
    let fast = client.echo("down".into()).await.unwrap_err();
    assert!(fast.message().contains("reconnecting in"), "{fast}");

    let _server = serve(tokio::net::TcpListener::bind(addr).await.unwrap());
    let mut attempts = 0;
    let reply = loop {
        match client.echo("after".into()).await {
            Ok(reply) => break reply,
            Err(err) if err.code() == Code::Unavailable && attempts < 200 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("{err}"),
        }
    };
    assert_eq!(reply, "after");
}
