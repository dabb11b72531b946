//! The four handler shapes generated code plugs a trait method into.
//!
//! Each reads the call's arguments (the first message), runs the user's method, and sends its
//! result: one reply, or a stream of them. The call task around it handles deadlines,
//! cancellation and panics.

use std::future::{Future, poll_fn};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;

use super::RequestStream;
use super::call::ServerCall;
use crate::args::DecodeArgs;
use std::sync::Arc;

use crate::connection::{SendStreamError, Shared};
use crate::frame::Frame;
use crate::private::HandlerFuture;
use crate::stream::Stream as CallStream;
use crate::{Context, Status, message};

/// Reads and decodes the call's first message: the method's plain arguments.
async fn recv_args<A: DecodeArgs>(
    call: &ServerCall,
    names: &'static [&'static str],
) -> Result<A, Status> {
    match poll_fn(|cx| call.conn.poll_recv(&call.stream, cx)).await {
        Some(Ok(body)) => A::decode_args(names, &body),
        Some(Err(status)) => Err(status),
        None => Err(Status::invalid_argument(
            "the call ended before its arguments arrived",
        )),
    }
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
    pub async fn send<S, T, E, E2>(self, result: Result<S, E>) -> Result<Option<Bytes>, Status>
    where
        S: Stream<Item = Result<T, E2>>,
        T: Serialize,
        E: Into<Status>,
        E2: Into<Status>,
    {
        let responses = result.map_err(Into::into)?;
        let (conn, stream) = (&self.conn, &self.stream);
        // The call is accepted: an empty DATA frame lets the client's `.await` return the stream.
        conn.push(Frame::Data {
            id: stream.id,
            end_stream: false,
            data: Bytes::new(),
        });
        let responses = responses.map(|item| item.map_err(Into::into));
        match conn.send_stream(stream, responses).await {
            Ok(()) => {}
            Err(SendStreamError::Item(status) | SendStreamError::Ended(status)) => {
                return Err(status);
            }
        }
        Ok(None)
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
    Box::pin(async move {
        let args = recv_args::<A>(&call, names).await?;
        let reply = f(call.context, args).await.map_err(Into::into)?;
        Ok(Some(message::encode(&reply)?))
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
    Box::pin(async move {
        let args = recv_args::<A>(&call, names).await?;
        let ServerCall {
            conn,
            stream,
            context,
        } = call;
        f(context, args, Replies { conn, stream }).await
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
    Box::pin(async move {
        let args = recv_args::<A>(&call, names).await?;
        let ServerCall {
            conn,
            stream,
            context,
        } = call;
        let reply = f(context, args, RequestStream::new(conn, stream))
            .await
            .map_err(Into::into)?;
        Ok(Some(message::encode(&reply)?))
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
    Box::pin(async move {
        let args = recv_args::<A>(&call, names).await?;
        let ServerCall {
            conn,
            stream,
            context,
        } = call;
        let requests = RequestStream::new(conn.clone(), stream.clone());
        f(context, args, requests, Replies { conn, stream }).await
    })
}

/// A method index the service does not have (the router only routes known names, so this is
/// a mismatch between a descriptor and its dispatch).
pub fn unknown_method(call: ServerCall) -> HandlerFuture {
    Box::pin(async move {
        Err(Status::unimplemented(format!(
            "no handler for {}",
            call.context.method()
        )))
    })
}

/// Wraps each item of an infallible stream in `Ok`.
pub fn ok_items<S: Stream>(stream: S) -> impl Stream<Item = Result<S::Item, Status>> {
    stream.map(Ok)
}
