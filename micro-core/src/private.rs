//! Items generated code names through `::micro::__private`. Not part of the public API: they
//! change whenever the macro and runtime change together.

use std::future::Future;
use std::pin::Pin;

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Client;
use crate::client::{
    BidiStreamingCall, ClientStreamingCall, DuplexCall, Request, ServerStreamingCall, UnaryCall,
};

pub use crate::args::{DecodeArgs, EncodeArgs};
pub use crate::server::{
    Replies, ServerCall, ok_items, serve_bidirectional, serve_client_streaming,
    serve_server_streaming, serve_unary, unknown_method,
};
pub use tokio::net::ToSocketAddrs;

/// A call's task: its handler, run under the call's deadline, cancellation and panics, then its
/// final status sent. Generated code builds it through the `serve_*` functions.
pub type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Builds a unary call.
pub fn call_unary<A: EncodeArgs, R: DeserializeOwned>(
    client: &Client,
    method: &'static str,
    names: &'static [&'static str],
    args: A,
) -> UnaryCall<R> {
    UnaryCall::new(Request::new(client, method, names, args))
}

/// Builds a server-streaming call.
pub fn call_server_streaming<A: EncodeArgs, R: DeserializeOwned>(
    client: &Client,
    method: &'static str,
    names: &'static [&'static str],
    args: A,
) -> ServerStreamingCall<R> {
    ServerStreamingCall::new(Request::new(client, method, names, args))
}

/// Builds a client-streaming call.
pub fn call_client_streaming<A: EncodeArgs, I: Serialize, R: DeserializeOwned>(
    client: &Client,
    method: &'static str,
    names: &'static [&'static str],
    args: A,
    items: impl Stream<Item = I> + Send + 'static,
) -> ClientStreamingCall<I, R> {
    ClientStreamingCall::new(Request::new(client, method, names, args), items)
}

/// Builds a bidirectional call fed by a stream.
pub fn call_bidirectional<A: EncodeArgs, I: Serialize, R: DeserializeOwned>(
    client: &Client,
    method: &'static str,
    names: &'static [&'static str],
    args: A,
    items: impl Stream<Item = I> + Send + 'static,
) -> BidiStreamingCall<I, R> {
    BidiStreamingCall::new(Request::new(client, method, names, args), items)
}

/// Builds a bidirectional call driven by a [`Duplex`](crate::client::Duplex) handle.
pub fn call_duplex<A: EncodeArgs, I: Serialize, R: DeserializeOwned>(
    client: &Client,
    method: &'static str,
    names: &'static [&'static str],
    args: A,
) -> DuplexCall<I, R> {
    DuplexCall::new(Request::new(client, method, names, args))
}
