//! The server as a raw peer sees it: bytes written by hand, as docs/PROTOCOL.md specifies them.

mod common;

use std::time::Duration;

use common::LabServer;
use micro::{Client, Code, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn preface(version: u16) -> Vec<u8> {
    let mut p = b"MCRO".to_vec();
    p.extend(version.to_be_bytes());
    p.extend([0, 0]);
    for setting in [1u32 << 20, 4 << 20, 256 << 10, 16 << 20] {
        p.extend(setting.to_be_bytes());
    }
    p
}

fn frame(stream: u32, kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ((6 + payload.len()) as u32).to_be_bytes().to_vec();
    f.extend(stream.to_be_bytes());
    f.extend([kind, flags]);
    f.extend(payload);
    f
}

/// An OPEN payload: method, timeout in µs, no metadata, then the messages.
fn open_payload(method: &str, timeout_us: u64, messages: &[&[u8]]) -> Vec<u8> {
    let mut p = (method.len() as u16).to_be_bytes().to_vec();
    p.extend(method.as_bytes());
    p.extend(timeout_us.to_be_bytes());
    p.extend(0u32.to_be_bytes());
    for m in messages {
        p.extend((m.len() as u32).to_be_bytes());
        p.extend(*m);
    }
    p
}

/// A decoded frame header and payload.
#[derive(Debug)]
struct Raw {
    stream: u32,
    kind: u8,
    payload: Vec<u8>,
}

async fn read_frame(io: &mut TcpStream) -> Raw {
    let len = io.read_u32().await.unwrap() as usize;
    let mut rest = vec![0; len];
    io.read_exact(&mut rest).await.unwrap();
    Raw {
        stream: u32::from_be_bytes(rest[..4].try_into().unwrap()),
        kind: rest[4],
        payload: rest[6..].to_vec(),
    }
}

/// The code and message of a CLOSE frame.
fn close_status(frame: &Raw) -> (Code, String) {
    assert_eq!(frame.kind, 3, "expected CLOSE, got {frame:?}");
    let code = frame.payload[0];
    let len = u32::from_be_bytes(frame.payload[1..5].try_into().unwrap()) as usize;
    let message = String::from_utf8(frame.payload[5..5 + len].to_vec()).unwrap();
    let code = match code {
        0 => Code::Ok,
        4 => Code::DeadlineExceeded,
        8 => Code::ResourceExhausted,
        12 => Code::Unimplemented,
        other => panic!("unexpected code {other}"),
    };
    (code, message)
}

/// Sends a call as one OPEN frame (arguments inline, END_STREAM) and returns the status of the
/// CLOSE that answers it.
async fn call_raw(
    io: &mut TcpStream,
    id: u32,
    method: &str,
    timeout_us: u64,
    args: &[u8],
) -> (Code, String) {
    io.write_all(&frame(id, 1, 1, &open_payload(method, timeout_us, &[args])))
        .await
        .unwrap();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), read_frame(io))
            .await
            .unwrap();
        if next.stream == 0 {
            continue; // answers to our PINGs
        }
        assert_eq!(next.stream, id);
        return close_status(&next);
    }
}

async fn server(
    configure: impl FnOnce(micro::ServerBuilder) -> micro::ServerBuilder,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let builder =
        configure(Server::builder().add_service(LabServer::new(common::LabImpl::default())));
    tokio::spawn(builder.serve_listener(listener));
    addr
}

/// A hand-written server for one connection: `behave` gets the accepted socket.
async fn fake_server<F, Fut>(behave: F) -> std::net::SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (io, _) = listener.accept().await.unwrap();
        behave(io).await;
    });
    addr
}

/// Reads a client's preface and answers with one of `version`.
async fn answer_preface(io: &mut TcpStream, version: u16) {
    let mut theirs = [0; 24];
    io.read_exact(&mut theirs).await.unwrap();
    io.write_all(&preface(version)).await.unwrap();
}

async fn handshaken(addr: std::net::SocketAddr) -> TcpStream {
    let mut io = TcpStream::connect(addr).await.unwrap();
    io.write_all(&preface(1)).await.unwrap();
    let mut theirs = [0; 24];
    io.read_exact(&mut theirs).await.unwrap();
    assert_eq!(&theirs[..6], b"MCRO\0\x01");
    io
}

#[tokio::test]
async fn a_client_of_another_version_learns_the_servers_and_is_closed() {
    let addr = server(|b| b).await;
    let mut io = TcpStream::connect(addr).await.unwrap();
    io.write_all(&preface(7)).await.unwrap();
    let mut theirs = [0; 24];
    io.read_exact(&mut theirs).await.unwrap();
    assert_eq!(
        &theirs[..6],
        b"MCRO\0\x01",
        "the server answers with its own version"
    );
    let mut more = [0; 1];
    assert_eq!(io.read(&mut more).await.unwrap(), 0, "then closes");
}

#[tokio::test]
async fn a_server_of_another_version_is_a_clear_client_error() {
    let addr = fake_server(|mut io| async move { answer_preface(&mut io, 2).await }).await;
    let err = Client::connect(addr).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("version 2") && err.message().contains("version 1"),
        "{err}"
    );
}

#[tokio::test]
async fn a_peer_that_does_not_speak_micro_is_named_as_such() {
    let addr = fake_server(|mut io| async move {
        io.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
    })
    .await;
    let err = Client::connect(addr).await.unwrap_err();
    assert!(err.message().contains("does not speak micro"), "{err}");
}

#[tokio::test]
async fn an_oversized_frame_ends_the_connection_with_goaway() {
    let addr = server(|b| b).await;
    let mut io = handshaken(addr).await;
    io.write_all(&0x7fff_ffffu32.to_be_bytes()).await.unwrap();
    let goaway = read_frame(&mut io).await;
    assert_eq!((goaway.stream, goaway.kind), (0, 7), "{goaway:?}");
    assert_eq!(goaway.payload[4], Code::InvalidArgument as u8);
    let reason = String::from_utf8_lossy(&goaway.payload[5..]).to_string();
    assert!(reason.contains("exceeds the limit"), "{reason}");
    let mut more = [0; 1];
    assert_eq!(io.read(&mut more).await.unwrap(), 0);
}

#[tokio::test]
async fn the_server_enforces_the_deadline_it_was_sent() {
    let addr = server(|b| b).await;
    let mut io = handshaken(addr).await;
    // Lab.hold never answers; the client sends the deadline and then stays silent.
    let (code, _) = call_raw(&mut io, 1, "Lab.hold", 50_000, b"\xc0").await;
    assert_eq!(code, Code::DeadlineExceeded);
}

#[tokio::test]
async fn the_server_enforces_its_message_limit_per_call() {
    let addr = server(|b| b.max_message_size(1024)).await;
    let mut io = handshaken(addr).await;
    let mut big = vec![0xda, 0x07, 0xd0]; // str16 of 2000 bytes
    big.extend(vec![b'x'; 2000]);
    io.write_all(&frame(1, 1, 1, &open_payload("Lab.echo", 0, &[&big])))
        .await
        .unwrap();
    let close = read_frame(&mut io).await;
    assert_eq!(close.stream, 1);
    let (code, message) = close_status(&close);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    // the connection goes on: a unary call is one frame each way
    io.write_all(&frame(3, 1, 1, &open_payload("Lab.echo", 0, &[b"\xa2ok"])))
        .await
        .unwrap();
    let reply = read_frame(&mut io).await;
    assert_eq!(reply.stream, 3);
    assert_eq!(close_status(&reply).0, Code::Ok);
    assert!(
        reply.payload.ends_with(&[0, 0, 0, 3, 0xa2, b'o', b'k']),
        "{reply:?}"
    );
}

#[tokio::test]
async fn unknown_methods_and_reused_stream_ids() {
    let addr = server(|b| b).await;
    let mut io = handshaken(addr).await;
    io.write_all(&frame(
        5,
        1,
        1,
        &open_payload("Nope.nothing", 0, &[b"\xc0"]),
    ))
    .await
    .unwrap();
    let close = read_frame(&mut io).await;
    assert_eq!(close_status(&close).0, Code::Unimplemented);
    // stream ids only go up: 5 again is a protocol error
    io.write_all(&frame(5, 1, 1, &open_payload("Lab.echo", 0, &[b"\xa1a"])))
        .await
        .unwrap();
    let goaway = read_frame(&mut io).await;
    assert_eq!(goaway.kind, 7, "{goaway:?}");
}

#[tokio::test]
async fn a_peer_that_pings_without_reading_is_disconnected() {
    let addr = server(|b| b).await;
    let mut io = handshaken(addr).await;
    let ping = frame(0, 6, 0, &[0; 8]);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 10_000)
        .collect();
    // The answers pile up once the socket is full; past a bounded number the server gives up
    // on this peer instead of queueing them for ever. Bounded loop: 500 batches is 70 MB.
    let mut disconnected = false;
    for _ in 0..500 {
        if io.write_all(&batch).await.is_err() {
            disconnected = true;
            break;
        }
    }
    assert!(
        disconnected,
        "the server kept answering a peer that never reads"
    );
}

#[tokio::test]
async fn a_destructor_that_panics_when_the_deadline_drops_the_handler_still_gets_an_answer() {
    let addr = server(|b| b).await;
    let mut io = handshaken(addr).await;
    let (code, _) = call_raw(&mut io, 1, "Lab.bomb", 50_000, b"\xc0").await;
    assert_eq!(code, Code::DeadlineExceeded);
    // and the server goes on serving this connection
    assert_eq!(
        call_raw(&mut io, 3, "Lab.echo", 0, b"\xa2ok").await.0,
        Code::Ok
    );
}

#[tokio::test]
async fn a_client_notices_a_server_that_went_silent() {
    // A server that completes the handshake, then never sends another byte (as if the machine
    // vanished): the call must not wait for ever.
    let addr = fake_server(|mut io| async move {
        answer_preface(&mut io, 1).await;
        let mut sink = vec![0; 4096];
        while io.read(&mut sink).await.is_ok_and(|n| n > 0) {}
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
    let mut io = handshaken(addr).await;
    // Never answer: the server's ping goes unanswered and it closes the connection.
    let mut seen = Vec::new();
    let mut buf = [0; 64];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept a silent client's connection open"),
        }
    }
    // length 14, stream 0, PING, no flags: the server asked before giving up
    assert!(
        seen.starts_with(&[0, 0, 0, 14, 0, 0, 0, 0, 6, 0]),
        "a PING came first: {seen:?}"
    );
}

#[tokio::test]
async fn a_deadline_that_stops_a_handler_in_the_middle_of_a_message_is_still_a_deadline() {
    let addr = server(|b| b).await;
    let mut io = handshaken(addr).await;
    // Lab.flood(100_000) sends 100 KB blobs; our preface grants 256 KiB, so the handler stops
    // in the middle of the third blob, waiting for credit we never give, until its deadline.
    let open = open_payload("Lab.flood", 100_000, &[b"\xce\x00\x01\x86\xa0"]);
    io.write_all(&frame(1, 1, 1, &open)).await.unwrap();
    let close = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut io))
            .await
            .unwrap();
        if next.kind == 3 {
            break next;
        }
    };
    let (code, message) = close_status(&close);
    assert_eq!(code, Code::DeadlineExceeded, "{message}");
}

/// Reads frames until a GOAWAY; returns its reason.
async fn goaway_reason(io: &mut TcpStream) -> String {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), read_frame(io))
            .await
            .unwrap();
        if next.kind == 7 {
            return String::from_utf8_lossy(&next.payload[5..]).to_string();
        }
    }
}

#[tokio::test]
async fn data_after_end_stream_is_a_protocol_error() {
    let addr = server(|b| b).await;
    let mut io = handshaken(addr).await;
    // Lab.total reads a client stream: open it, end it, then keep sending.
    io.write_all(&frame(1, 1, 0, &open_payload("Lab.total", 0, &[b"\xc0"])))
        .await
        .unwrap();
    io.write_all(&frame(1, 2, 1, &[0, 0, 0, 1, 7]))
        .await
        .unwrap();
    io.write_all(&frame(1, 2, 0, &[0, 0, 0, 1, 8]))
        .await
        .unwrap();
    let reason = goaway_reason(&mut io).await;
    assert!(reason.contains("after its END_STREAM"), "{reason}");
}

#[tokio::test]
async fn floods_of_frames_that_carry_nothing_end_the_connection() {
    for (what, flood) in [
        ("PING", frame(0, 6, 0, &[0; 8])),
        ("empty DATA", frame(1, 2, 0, &[])),
    ] {
        let addr = server(|b| b).await;
        let io = handshaken(addr).await;
        let (mut read, mut write) = io.into_split();
        // a call for the empty DATA to go to
        write
            .write_all(&frame(1, 1, 0, &open_payload("Lab.total", 0, &[b"\xc0"])))
            .await
            .unwrap();
        let burst: Vec<u8> = flood
            .iter()
            .copied()
            .cycle()
            .take(flood.len() * 10_001)
            .collect();
        // The server may close while the burst is still being written: that is the point.
        let writer = tokio::spawn(async move { write.write_all(&burst).await });
        let reason = loop {
            let len = read.read_u32().await.unwrap() as usize;
            let mut rest = vec![0; len];
            read.read_exact(&mut rest).await.unwrap();
            if rest[4] == 7 {
                break String::from_utf8_lossy(&rest[11..]).to_string();
            }
        };
        // A PING flood read this slowly may first trip the bound on unread answers: either
        // way the flooder is cut off with a GOAWAY.
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
    let mut io = handshaken(addr).await;
    for round in 0..50u32 {
        let ping = frame(0, 6, 0, &[0; 8]);
        let pings: Vec<u8> = ping
            .iter()
            .copied()
            .cycle()
            .take(ping.len() * 1_000)
            .collect();
        io.write_all(&pings).await.unwrap();
        // a real call resets the count
        let (code, _) = call_raw(&mut io, 2 * round + 1, "Lab.echo", 0, b"\xa2ok").await;
        assert_eq!(code, Code::Ok);
    }
}

#[tokio::test]
async fn a_client_defends_itself_against_a_misbehaving_server() {
    // A reply over the client's message limit fails that call with ResourceExhausted...
    let addr = fake_server(|mut io| async move {
        answer_preface(&mut io, 1).await;
        let _open = read_frame(&mut io).await;
        let mut close = vec![0, 0, 0, 0, 0, 0, 0, 0, 0]; // code Ok, no message, no details
        close.extend_from_slice(&2003u32.to_be_bytes());
        close.extend_from_slice(&[0xda, 0x07, 0xd0]); // str16 of 2000 bytes
        close.extend_from_slice(&[b'x'; 2000]);
        io.write_all(&frame(1, 3, 0, &close)).await.unwrap();
        let mut sink = vec![0; 4096];
        while io.read(&mut sink).await.is_ok_and(|n| n > 0) {}
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
    let addr = fake_server(|mut io| async move {
        answer_preface(&mut io, 1).await;
        let _open = read_frame(&mut io).await;
        io.write_all(&frame(1, 4, 0, &[1])).await.unwrap(); // CANCEL, from a server
        let mut sink = vec![0; 4096];
        while io.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    })
    .await;
    let client = common::LabClient::new(Client::connect(addr).await.unwrap());
    let err = client.echo("hi".into()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("protocol error"), "{err}");
}
