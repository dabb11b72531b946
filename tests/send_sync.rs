//! Public types are `Send`, `Sync` and `Unpin` where users need them: clients shared across
//! tasks, streams and call futures moved into `tokio::spawn`, handles kept in structs.

mod common;

use std::future::IntoFuture;

use common::{Blob, LabClient, LabServer};
use micro::client::{
    BidiStreamingCall, ClientStreamingCall, Duplex, DuplexCall, DuplexSender, ServerStreamingCall,
    UnaryCall, UnaryFuture,
};
use micro::{Client, Context, Metadata, RequestStream, ResponseStream, ServerBuilder, Status};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}
fn send_future<F: IntoFuture>()
where
    F::IntoFuture: Send,
{
}

#[test]
fn shared_handles_are_send_and_sync() {
    send::<Client>();
    sync::<Client>();
    send::<LabClient>();
    sync::<LabClient>();
    send::<LabServer<common::LabImpl>>();
    sync::<LabServer<common::LabImpl>>();
    send::<Status>();
    sync::<Status>();
    send::<Context>();
    sync::<Context>();
    send::<Metadata>();
    sync::<Metadata>();
    send::<ServerBuilder>();
}

#[test]
fn streams_and_handles_move_between_tasks() {
    send::<ResponseStream<Blob>>();
    sync::<ResponseStream<Blob>>();
    unpin::<ResponseStream<Blob>>();
    send::<RequestStream<Blob>>();
    sync::<RequestStream<Blob>>();
    unpin::<RequestStream<Blob>>();
    send::<Duplex<u64, Blob>>();
    unpin::<Duplex<u64, Blob>>();
    send::<DuplexSender<u64>>();
    unpin::<DuplexSender<u64>>();
}

#[test]
fn calls_can_be_spawned() {
    send_future::<UnaryCall<Blob>>();
    send_future::<ServerStreamingCall<Blob>>();
    send_future::<ClientStreamingCall<u64, Blob>>();
    send_future::<BidiStreamingCall<u64, Blob>>();
    send_future::<DuplexCall<u64, Blob>>();
    send::<UnaryCall<Blob>>();
    // A unary call's future can sit in a `select!` or a struct without being pinned first, as
    // the boxed future it replaced could.
    unpin::<UnaryFuture<Blob>>();
}
