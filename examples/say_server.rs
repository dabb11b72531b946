//! The `Say` server alone. Run it, then `say_client` in another terminal:
//!
//! ```text
//! cargo run --example say_server -- 127.0.0.1:8080
//! cargo run --example say_client -- 127.0.0.1:8080
//! ```
//!
//! Ctrl-C shuts it down gracefully.

#[path = "common/say.rs"]
mod say;

use micro::Server;
use say::{MySay, SayServer};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    println!("Say server on {addr}; Ctrl-C stops it");
    Server::builder()
        .add_service(SayServer::new(MySay))
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
            println!("shutting down");
        })
        .await
}
