//! The server as a raw peer sees it: bytes written by hand, as docs/PROTOCOL.md specifies them.

mod common;
mod peer;

use std::time::Duration;

use micro::{Client, Code};
use peer::{
    CANCEL, DATA, END, OPEN, PING, Peer, frame, lab_server as server, open_payload, preface,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A hand-written server for one connection: `behave` gets the accepted socket.
async fn fake_server<F, Fut>(behave: F) -> std::net::SocketAddr
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (io, _) = listener.accept().await.unwrap();
        behave(Peer::new(io)).await;
    });
    addr
}

/// Reads a client's preface and answers with one of `version`.
async fn answer_preface(peer: &mut Peer, version: u16) {
    peer.read_preface().await;
    peer.send(&preface(version)).await;
}

/// Reads whatever the other side sends until it closes.
async fn drain(peer: &mut Peer) {
    let mut sink = vec![0; 4096];
    while peer.io.read(&mut sink).await.is_ok_and(|n| n > 0) {}
}

#[tokio::test]
async fn a_client_of_another_version_learns_the_servers_and_is_closed() {
    let addr = server(|b| b).await;
    let mut peer = Peer::connect(addr).await;
    peer.send(&preface(7)).await;
    let theirs = peer.read_preface().await;
    assert_eq!(
        &theirs[..6],
        b"MCRO\0\x01",
        "the server answers with its own version"
    );
    assert_eq!(peer.recv().await, None, "then closes");
}

#[tokio::test]
async fn a_server_of_another_version_is_a_clear_client_error() {
    let addr = fake_server(|mut peer| async move { answer_preface(&mut peer, 2).await }).await;
    let err = Client::connect(addr).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("version 2") && err.message().contains("version 1"),
        "{err}"
    );
}

#[tokio::test]
async fn a_peer_that_does_not_speak_micro_is_named_as_such() {
    let addr = fake_server(|mut peer| async move {
        peer.send(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let err = Client::connect(addr).await.unwrap_err();
    assert!(err.message().contains("does not speak micro"), "{err}");
}

#[tokio::test]
async fn an_oversized_frame_ends_the_connection_with_goaway() {
    let addr = server(|b| b).await;
    let mut peer = Peer::handshaken(addr).await;
    peer.send(&0x7fff_ffffu32.to_be_bytes()).await;
    let (code, reason) = peer.goaway().await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(reason.contains("exceeds the limit"), "{reason}");
}

#[tokio::test]
async fn the_server_enforces_the_deadline_it_was_sent() {
    let addr = server(|b| b).await;
    let mut peer = Peer::handshaken(addr).await;
    // Lab.hold never answers; the client sends the deadline and then stays silent.
    let close = peer.call(1, "Lab.hold", 50_000, b"\xc0").await;
    assert_eq!(close.close_status().0, Code::DeadlineExceeded);
}

#[tokio::test]
async fn the_server_enforces_its_message_limit_per_call() {
    let addr = server(|b| b.max_message_size(1024)).await;
    let mut peer = Peer::handshaken(addr).await;
    let mut big = vec![0xda, 0x07, 0xd0]; // str16 of 2000 bytes
    big.extend(vec![b'x'; 2000]);
    let (code, message) = peer.call(1, "Lab.echo", 0, &big).await.close_status();
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    // the connection goes on: a unary call is one frame each way
    let reply = peer.call(3, "Lab.echo", 0, b"\xa2ok").await;
    assert_eq!(reply.close_status().0, Code::Ok);
    assert_eq!(
        reply.close_data(),
        [0, 0, 0, 3, 0xa2, b'o', b'k'],
        "{reply:?}"
    );
}

#[tokio::test]
async fn unknown_methods_and_reused_stream_ids() {
    let addr = server(|b| b).await;
    let mut peer = Peer::handshaken(addr).await;
    let close = peer.call(5, "Nope.nothing", 0, b"\xc0").await;
    assert_eq!(close.close_status().0, Code::Unimplemented);
    // A name that is not UTF-8 is just another unknown method.
    let mut payload = open_payload("Lab.echo", 0, &[b"\xc0"]);
    payload[2] = 0xff;
    peer.send(&frame(7, OPEN, END, &payload)).await;
    assert_eq!(peer.close_of(7).await.close_status().0, Code::Unimplemented);
    // stream ids only go up: 5 again (after 7) is a protocol error
    peer.open(5, "Lab.echo", 0, b"\xa1a", true).await;
    let (code, reason) = peer.goaway().await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        reason.contains("not above the last opened stream 7"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_peer_that_pings_without_reading_is_disconnected() {
    let addr = server(|b| b.keepalive_timeout(Duration::from_millis(200))).await;
    let mut peer = Peer::handshaken(addr).await;
    let batch = frame(0, PING, 0, &[0; 8]).repeat(10_000);
    // Once 512 answers wait, the server stops reading and TCP blocks these writes; when the
    // peer has read none of them for a keepalive timeout, the server gives up on it instead
    // of queueing answers for ever.
    let written = tokio::time::timeout(peer::HANG, async {
        for _ in 0..500 {
            if !peer.try_send(&batch).await {
                return false;
            }
        }
        true
    })
    .await
    .expect("the server neither read on nor disconnected");
    assert!(
        !written,
        "the server kept answering a peer that never reads"
    );
}

#[tokio::test]
async fn a_destructor_that_panics_when_the_deadline_drops_the_handler_still_gets_an_answer() {
    let addr = server(|b| b).await;
    let mut peer = Peer::handshaken(addr).await;
    let close = peer.call(1, "Lab.bomb", 50_000, b"\xc0").await;
    assert_eq!(close.close_status().0, Code::DeadlineExceeded);
    // and the server goes on serving this connection
    let close = peer.call(3, "Lab.echo", 0, b"\xa2ok").await;
    assert_eq!(close.close_status().0, Code::Ok);
}

#[tokio::test]
async fn a_client_notices_a_server_that_went_silent() {
    // A server that completes the handshake, then never sends another byte (as if the machine
    // vanished): the call must not wait for ever.
    let addr = fake_server(|mut peer| async move {
        answer_preface(&mut peer, 1).await;
        drain(&mut peer).await;
    })
    .await;
    let client = Client::builder()
        .keepalive(Some(Duration::from_millis(50)))
        .keepalive_timeout(Duration::from_millis(100))
        .connect(addr)
        .await
        .unwrap();
    let client = common::LabClient::new(client);
    let err = client.echo("anyone?".into()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("keepalive"), "{err}");
}

#[tokio::test]
async fn a_server_drops_a_client_that_went_silent() {
    let addr = server(|b| {
        b.keepalive(Some(Duration::from_millis(50)))
            .keepalive_timeout(Duration::from_millis(100))
    })
    .await;
    let mut peer = Peer::handshaken(addr).await;
    // Never answer: the server asks with a PING, then gives up on the connection.
    let ping = peer.recv().await.expect("a PING");
    assert_eq!(
        (ping.stream, ping.kind, ping.flags),
        (0, PING, 0),
        "{ping:?}"
    );
    peer.closed().await;
}

#[tokio::test]
async fn a_deadline_that_stops_a_handler_in_the_middle_of_a_message_is_still_a_deadline() {
    let addr = server(|b| b).await;
    let mut peer = Peer::handshaken(addr).await;
    // Lab.flood(100_000) sends 100 KB blobs; our preface grants 256 KiB, so the handler stops
    // in the middle of the third blob, waiting for credit we never give, until its deadline.
    let close = peer
        .call(1, "Lab.flood", 100_000, b"\xce\x00\x01\x86\xa0")
        .await;
    let (code, message) = close.close_status();
    assert_eq!(code, Code::DeadlineExceeded, "{message}");
}

#[tokio::test]
async fn data_after_end_stream_is_a_protocol_error() {
    let addr = server(|b| b).await;
    let mut peer = Peer::handshaken(addr).await;
    // Lab.total reads a client stream: open it, end it, then keep sending.
    peer.open(1, "Lab.total", 0, b"\xc0", false).await;
    peer.data(1, &[&[7]], true).await;
    peer.data(1, &[&[8]], false).await;
    let (code, reason) = peer.goaway().await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(reason.contains("after its END_STREAM"), "{reason}");
}

#[tokio::test]
async fn floods_of_frames_that_carry_nothing_end_the_connection() {
    for (what, flood) in [
        ("PING", frame(0, PING, 0, &[0; 8])),
        ("empty DATA", frame(1, DATA, 0, &[])),
    ] {
        let addr = server(|b| b).await;
        let mut peer = Peer::handshaken(addr).await;
        // a call for the empty DATA to go to
        peer.open(1, "Lab.total", 0, b"\xc0", false).await;
        let (read, mut write) = peer.io.into_split();
        let burst = flood.repeat(10_001);
        // The server may close while the burst is still being written: that is the point.
        let writer = tokio::spawn(async move { write.write_all(&burst).await });
        let (code, reason) = Peer::new(tokio::io::join(read, tokio::io::sink()))
            .goaway()
            .await;
        // A PING flood read this slowly may first trip the bound on unread answers: either
        // way the flooder is cut off with a GOAWAY.
        assert_eq!(code, Code::InvalidArgument);
        assert!(
            reason.contains("carry nothing") || reason.contains("answers wait"),
            "{what}: {reason}"
        );
        let _ = writer.await;
    }
}

#[tokio::test]
async fn pings_between_real_calls_are_fine() {
    let addr = server(|b| b).await;
    let mut peer = Peer::handshaken(addr).await;
    let pings = frame(0, PING, 0, &[0; 8]).repeat(1_000);
    for round in 0..50u32 {
        peer.send(&pings).await;
        // a real call resets the count
        let close = peer.call(2 * round + 1, "Lab.echo", 0, b"\xa2ok").await;
        assert_eq!(close.close_status().0, Code::Ok);
    }
}

#[tokio::test]
async fn a_client_defends_itself_against_a_misbehaving_server() {
    // A reply over the client's message limit fails that call with ResourceExhausted...
    let addr = fake_server(|mut peer| async move {
        answer_preface(&mut peer, 1).await;
        let _open = peer.recv().await;
        let mut close = vec![0, 0, 0, 0, 0, 0, 0, 0, 0]; // code Ok, no message, no details
        close.extend_from_slice(&2003u32.to_be_bytes());
        close.extend_from_slice(&[0xda, 0x07, 0xd0]); // str16 of 2000 bytes
        close.extend_from_slice(&[b'x'; 2000]);
        peer.frame(1, peer::CLOSE, 0, &close).await;
        drain(&mut peer).await;
    })
    .await;
    let client = Client::builder()
        .max_message_size(1024)
        .connect(addr)
        .await
        .unwrap();
    let err = common::LabClient::new(client)
        .echo("hi".into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");

    // ...and a frame only clients may send is a protocol error that ends the connection.
    let addr = fake_server(|mut peer| async move {
        answer_preface(&mut peer, 1).await;
        let _open = peer.recv().await;
        peer.frame(1, CANCEL, 0, &[1]).await; // CANCEL, from a server
        drain(&mut peer).await;
    })
    .await;
    let client = common::LabClient::new(Client::connect(addr).await.unwrap());
    let err = client.echo("hi".into()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("protocol error"), "{err}");
}
