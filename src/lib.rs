//! **micro**: RPC and streaming from a plain Rust trait, multiplexed over one TCP connection.
//!
//! Put `#[micro::service]` on a trait. Its method signatures decide each call's shape — a
//! `Stream` argument streams requests, a `Stream` in the return streams replies — and the
//! attribute generates `<Name>Server<T>`, which serves any implementation, and `<Name>Client`,
//! a typed proxy. Messages are MessagePack; every call of a client shares one connection with
//! per-stream flow control, cancellation and deadlines.
//!
//! ```
//! use futures::StreamExt;
//! use micro::{Server, Status, Stream};
//!
//! #[micro::service]
//! pub trait Echo {
//!     /// One request, one reply.
//!     async fn echo(&self, text: String) -> Result<String, Status>;
//!     /// Requests and replies both stream: every number comes back doubled.
//!     async fn double(&self, nums: impl Stream<Item = i64> + Send + Unpin)
//!         -> Result<impl Stream<Item = Result<i64, Status>> + Send, Status>;
//! }
//!
//! struct Service;
//!
//! impl Echo for Service {
//!     async fn echo(&self, text: String) -> Result<String, Status> {
//!         Ok(text)
//!     }
//!     async fn double(&self, nums: impl Stream<Item = i64> + Send + Unpin)
//!         -> Result<impl Stream<Item = Result<i64, Status>> + Send, Status> {
//!         Ok(nums.map(|n| n.checked_mul(2).ok_or_else(|| Status::out_of_range("overflow"))))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In memory here; `serve("127.0.0.1:8080")` and `EchoClient::connect(addr)` over TCP.
//! let (listener, connector) = micro::transport::memory();
//! let server = Server::builder().add_service(EchoServer::new(Service));
//! tokio::spawn(server.serve_incoming(listener, std::future::pending()));
//! let client = micro::Client::builder()
//!     .connect_with(move || std::future::ready(connector.connect()))
//!     .await?;
//! let client = EchoClient::new(client);
//!
//! assert_eq!(client.echo("hi".into()).await?, "hi");
//! let doubled: Vec<i64> = client
//!     .double(futures::stream::iter([1, 2, 3]))
//!     .await?
//!     .map(Result::unwrap)
//!     .collect()
//!     .await;
//! assert_eq!(doubled, [2, 4, 6]);
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/GUIDE.md` for the tour and `docs/PROTOCOL.md` for the wire format.

pub use micro_core::{
    Client, ClientBuilder, Code, ConnectionStats, Context, Metadata, MethodDescriptor, MethodKind,
    RequestStream, ResponseStream, Result, Server, ServerBuilder, ServerSnapshot, ServerStats,
    Service, ServiceDescriptor, Status, Stream,
};
pub use micro_macros::service;

/// Call builders and handles returned by generated client methods.
pub mod client {
    pub use micro_core::client::{
        BidiStreamingCall, ClientStreamingCall, Duplex, DuplexCall, DuplexSender,
        ServerStreamingCall, UnaryCall, UnaryFuture,
    };
}

pub use micro_core::transport;

/// Items the generated code uses. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use micro_core::private::*;
}

/// The README's example, compiled and run as a doc test so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
