//! The four handler shapes generated code plugs a trait method into.
//!
//! Each reads the call's arguments (the first message), runs the user's method, and sends its
//! result: one reply, or a stream of them. The call task around it handles deadlines,
//! cancellation and panics.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use bytes::Bytes;
use futures::future::{Either, FutureExt, ready};
use futures::{Stream, StreamExt};
use pin_project_lite::pin_project;
use serde::Serialize;

use super::RequestStream;
use super::call::ServerCall;
use crate::args::DecodeArgs;
use crate::connection::{SendStreamError, Shared, send_stream};
use crate::frame::Frame;
use crate::private::HandlerFuture;
use crate::stream::Stream as CallStream;
use crate::{Context, Status, message};

pin_project! {
    /// A handler before and after its arguments arrived.
    ///
    /// The call and the method are only needed until the arguments arrive; the method's
    /// future then takes their place, so an idle call keeps one of the two, not both.
    #[project = ServeProj]
    #[project_replace = ServeOwned]
    enum Serve<A, M, Fut> {
        Args {
            call: ServerCall,
            names: &'static [&'static str],
            start: M,
            _args: PhantomData<fn() -> A>,
        },
        Running {
            #[pin]
            method: Fut,
        },
        Started,
    }
}

impl<A, M, Fut> Future for Serve<A, M, Fut>
where
    A: DecodeArgs,
    M: FnOnce(ServerCall, A) -> Fut,
    Fut: Future<Output = Result<Option<Bytes>, Status>>,
{
    type Output = Result<Option<Bytes>, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        loop {
            let args = match self.as_mut().project() {
                ServeProj::Running { method } => return method.poll(cx),
                ServeProj::Started => panic!("the handler was polled after it failed"),
                // The call's first message: the method's plain arguments.
                ServeProj::Args { call, names, .. } => match call.args.take() {
                    Some(body) => A::decode_args(names, &body),
                    None => match ready!(call.conn.poll_recv(&call.stream, cx)) {
                        Some(Ok(body)) => A::decode_args(names, &body),
                        Some(Err(status)) => Err(status),
                        None => Err(Status::invalid_argument(
                            "the call ended before its arguments arrived",
                        )),
                    },
                },
            };
            let ServeOwned::Args { call, start, .. } =
                self.as_mut().project_replace(Serve::Started)
            else {
                unreachable!("the arguments are read once");
            };
            let method = start(call, args?);
            self.set(Serve::Running { method });
        }
    }
}

/// A handler that reads its arguments, then runs `start`'s future.
fn serve<A, M, Fut>(call: ServerCall, names: &'static [&'static str], start: M) -> HandlerFuture
where
    A: DecodeArgs + Send + 'static,
    M: FnOnce(ServerCall, A) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<Bytes>, Status>> + Send + 'static,
{
    let (conn, stream, deadline) = (
        call.conn.clone(),
        call.stream.clone(),
        call.context.deadline(),
    );
    super::call::run(
        conn,
        stream,
        deadline,
        Serve::Args {
            call,
            names,
            start,
            _args: PhantomData,
        },
    )
}

/// Where a streaming handler's replies go.
///
/// The generated handler drains the stream its method returned through [`Replies::send`]
/// inside the handler's own future, so the stream may borrow the service and the request
/// stream it was given.
#[doc(hidden)]
#[derive(Debug)]
pub struct Replies {
    // Only what sending needs: this lives as long as the call, in every idle stream.
    conn: Arc<Shared>,
    stream: Arc<CallStream>,
}

impl Replies {
    /// Sends every item of a handler's result; an `Err` result or item ends the call with it.
    ///
    /// Not an `async fn`: the future holds the stream once, not also the argument it came in.
    pub fn send<S, T, E, E2>(
        self,
        result: Result<S, E>,
    ) -> impl Future<Output = Result<Option<Bytes>, Status>>
    where
        S: Stream<Item = Result<T, E2>>,
        T: Serialize,
        E: Into<Status>,
        E2: Into<Status>,
    {
        let responses = match result {
            Ok(responses) => responses,
            Err(err) => return Either::Left(ready(Err(err.into()))),
        };
        // The call is accepted: an empty DATA frame lets the client's `.await` return the stream.
        self.conn.push(Frame::Data {
            id: self.stream.id,
            end_stream: false,
            data: Bytes::new(),
        });
        let responses = responses.map(|item| item.map_err(Into::into));
        Either::Right(
            send_stream(self.conn, self.stream, responses).map(|sent| match sent {
                Ok(()) => Ok(None),
                Err(SendStreamError::Item(status) | SendStreamError::Ended(status)) => Err(status),
            }),
        )
    }
}

/// One request, one reply.
pub fn serve_unary<A, R, E, F, Fut>(
    call: ServerCall,
    names: &'static [&'static str],
    f: F,
) -> HandlerFuture
where
    A: DecodeArgs + Send + 'static,
    R: Serialize + Send + 'static,
    E: Into<Status> + Send + 'static,
    F: FnOnce(Context, A) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
{
    serve(call, names, move |call: ServerCall, args| {
        f(call.context, args).map(|reply| Ok(Some(message::encode(&reply.map_err(Into::into)?)?)))
    })
}

/// One request, a stream of replies: `f` sends them through its [`Replies`].
pub fn serve_server_streaming<A, F, Fut>(
    call: ServerCall,
    names: &'static [&'static str],
    f: F,
) -> HandlerFuture
where
    A: DecodeArgs + Send + 'static,
    F: FnOnce(Context, A, Replies) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<Bytes>, Status>> + Send + 'static,
{
    serve(call, names, move |call: ServerCall, args| {
        let ServerCall {
            conn,
            stream,
            context,
            ..
        } = call;
        f(context, args, Replies { conn, stream })
    })
}

/// A stream of requests, one reply.
pub fn serve_client_streaming<A, I, R, E, F, Fut>(
    call: ServerCall,
    names: &'static [&'static str],
    f: F,
) -> HandlerFuture
where
    A: DecodeArgs + Send + 'static,
    I: serde::de::DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    E: Into<Status> + Send + 'static,
    F: FnOnce(Context, A, RequestStream<I>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
{
    serve(call, names, move |call: ServerCall, args| {
        let ServerCall {
            conn,
            stream,
            context,
            ..
        } = call;
        f(context, args, RequestStream::new(conn, stream))
            .map(|reply| Ok(Some(message::encode(&reply.map_err(Into::into)?)?)))
    })
}

/// Streams both ways: `f` reads the [`RequestStream`] and sends through its [`Replies`].
pub fn serve_bidirectional<A, I, F, Fut>(
    call: ServerCall,
    names: &'static [&'static str],
    f: F,
) -> HandlerFuture
where
    A: DecodeArgs + Send + 'static,
    I: serde::de::DeserializeOwned + Send + 'static,
    F: FnOnce(Context, A, RequestStream<I>, Replies) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<Bytes>, Status>> + Send + 'static,
{
    serve(call, names, move |call: ServerCall, args| {
        let ServerCall {
            conn,
            stream,
            context,
            ..
        } = call;
        let requests = RequestStream::new(conn.clone(), stream.clone());
        f(context, args, requests, Replies { conn, stream })
    })
}

/// A method index the service does not have (the router only routes known names, so this is
/// a mismatch between a descriptor and its dispatch).
pub fn unknown_method(call: ServerCall) -> HandlerFuture {
    let status = Status::unimplemented(format!("no handler for {}", call.context.method()));
    let ServerCall { conn, stream, .. } = call;
    super::call::run(conn, stream, None, ready(Err(status)))
}

/// Wraps each item of an infallible stream in `Ok`.
pub fn ok_items<S: Stream>(stream: S) -> impl Stream<Item = Result<S::Item, Status>> {
    stream.map(Ok)
}
