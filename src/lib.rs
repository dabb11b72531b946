//! **micro**: RPC and streaming from a plain Rust trait, multiplexed over one TCP connection.
//!
//! Put `#[micro::service]` on a trait. Its method signatures decide each call's shape — a
//! `Stream` argument streams requests, a `Stream` in the return streams replies — and the
//! attribute generates `<Name>Server<T>`, which serves any implementation, and `<Name>Client`,
//! a typed proxy. Messages are MessagePack; every call of a client shares one connection with
//! per-stream flow control, cancellation and deadlines.
//!
//! See `docs/GUIDE.md` for the tour and `docs/PROTOCOL.md` for the wire format.

pub use micro_core::{
    Client, ClientBuilder, Code, ConnectionStats, Context, Metadata, MethodDescriptor, MethodKind,
    RequestStream, ResponseStream, Result, Server, ServerBuilder, Service, ServiceDescriptor,
    Status, Stream,
};
pub use micro_macros::service;

/// Call builders and handles returned by generated client methods.
pub mod client {
    pub use micro_core::client::{
        BidiStreamingCall, ClientStreamingCall, Duplex, DuplexCall, DuplexSender,
        ServerStreamingCall, UnaryCall,
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
