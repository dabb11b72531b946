//! The go-micro stream article's `Say` service, served and called in one program.
//!
//! ```text
//! cargo run --example say
//! ```
//!
//! Starts a server on a free loopback port, then a client that calls every method; the
//! bidirectional part is the article's `TsBidirectionalStream`, line for line.

#[path = "common/say.rs"]
mod say;

use micro::Server;
use say::{MySay, SRequest, SayClient, SayServer};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(SayServer::new(MySay))
            .serve_listener_with_shutdown(listener, async {
                let _ = stopped.await;
            }),
    );
    println!("server listening on {addr}");

    let client = SayClient::connect(addr).await?;

    // unary
    println!("{}", client.hello("world".into()).await?);

    // server streaming
    use futures::StreamExt;
    let mut words = client.stream(SRequest { count: 3 }).await?;
    while let Some(word) = words.next().await {
        println!("stream got {:?}", word?.value);
    }

    // client streaming
    let total = client.sum(futures::stream::iter(1..=100)).await?;
    println!("sum of 1..=100 is {total}");

    // bidirectional, as the article's TsBidirectionalStream
    ts_bidirectional_stream(&client).await?;

    stop.send(()).ok();
    server.await??;
    Ok(())
}

async fn ts_bidirectional_stream(client: &SayClient) -> Result<(), micro::Status> {
    let rsp_stream = client.bidirectional_stream_duplex().await?;
    let (mut send, mut recv) = rsp_stream.split();
    // send
    tokio::spawn(async move {
        send.send(SRequest { count: 2 }).await.ok();
        send.send(SRequest { count: 5 }).await.ok();
        // close the stream
        if let Err(err) = send.close_send() {
            println!("stream close err: {err}");
        }
    });
    // recv
    let mut idx = 1;
    loop {
        let rsp = match recv.message().await {
            Ok(Some(rsp)) => rsp,
            Ok(None) => break,
            Err(err) => panic!("{err}"),
        };
        println!("test stream get idx {idx}  data  {rsp:?}");
        idx += 1;
    }
    println!("Read Value End");
    Ok(())
}
