//! The runtime of [micro](https://docs.rs/micro): frames, multiplexed connections, streams with
//! flow control, and the server and client that generated code plugs into.
//!
//! Users depend on the `micro` crate, which re-exports what is public here and adds the
//! `#[micro::service]` attribute. The wire format is specified in `docs/PROTOCOL.md`.
//!
//! ```
//! use micro_core::{Code, Status};
//!
//! let status = Status::deadline_exceeded("too slow");
//! assert_eq!(status.code(), Code::DeadlineExceeded);
//! ```

mod args;
pub mod client;
mod config;
mod connection;
mod context;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod message;
mod metadata;
#[doc(hidden)]
pub mod private;
#[cfg(test)]
mod proptests;
mod server;
mod service;
mod status;
mod stream;
mod task;
pub mod transport;

pub use client::{Client, ClientBuilder, ResponseStream};
pub use connection::ConnectionStats;
pub use context::Context;
pub use futures::Stream;
pub use metadata::Metadata;
pub use server::{RequestStream, Server, ServerBuilder, ServerSnapshot, ServerStats};
pub use service::{MethodDescriptor, MethodKind, Service, ServiceDescriptor};
pub use status::{Code, Result, Status};
