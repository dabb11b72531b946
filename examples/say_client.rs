//! A `Say` client: calls each method of a running `say_server`.
//!
//! ```text
//! cargo run --example say_client -- 127.0.0.1:8080
//! ```

#[path = "common/say.rs"]
#[allow(dead_code)]
mod say;

use std::time::Duration;

use futures::StreamExt;
use say::{SRequest, SayClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let client = SayClient::connect(addr).await?;

    let greeting = client
        .hello("micro".into())
        .timeout(Duration::from_secs(1))
        .await?;
    println!("{greeting}");

    let mut words = client.stream(SRequest { count: 5 }).await?;
    while let Some(word) = words.next().await {
        println!("stream got {:?}", word?.value);
    }

    println!(
        "sum: {}",
        client.sum(futures::stream::iter([1, 2, 3])).await?
    );

    let requests = futures::stream::iter([SRequest { count: 2 }, SRequest { count: 5 }]);
    let mut replies = client.bidirectional_stream(requests).await?;
    let mut idx = 1;
    while let Some(reply) = replies.next().await {
        println!("test stream get idx {idx}  data  {:?}", reply?.value);
        idx += 1;
    }
    println!("Read Value End");
    Ok(())
}
