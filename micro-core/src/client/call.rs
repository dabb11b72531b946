//! The call builders generated client methods return, and the client side of a running call.
//!
//! A builder holds the encoded arguments and per-call options ([`timeout`](UnaryCall::timeout),
//! [`metadata`](UnaryCall::metadata)); awaiting it (it implements [`IntoFuture`]) runs the call.

use std::fmt;
use std::future::{Future, IntoFuture, poll_fn};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Either, select};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, Sleep};

use super::{Client, Duplex, DuplexSender, ResponseStream};
use crate::args::EncodeArgs;
use crate::connection::{Connection, SendStreamError, send_stream};
use crate::stream::Stream as CallStream;
use crate::stream::run::Run;
use crate::task::AbortOnDrop;
use crate::{Metadata, Status, message};

#[derive(Debug, Default)]
struct Options {
    /// `None`: the client's default; `Some(None)`: no deadline for this call.
    timeout: Option<Option<Duration>>,
    metadata: Metadata,
}

/// What every call builder holds: where the call goes, its encoded arguments, its options.
#[derive(Debug)]
pub(crate) struct Request {
    client: Client,
    method: &'static str,
    args: Result<Bytes, Status>,
    options: Options,
}

impl Request {
    pub(crate) fn new<A: EncodeArgs>(
        client: &Client,
        method: &'static str,
        names: &'static [&'static str],
        args: A,
    ) -> Request {
        Request {
            client: client.clone(),
            method,
            args: args.encode_args(names),
            options: Options::default(),
        }
    }

    /// When the call must end: its own timeout, else the client's default.
    fn deadline(&self) -> Option<Instant> {
        let timeout = self
            .options
            .timeout
            .unwrap_or(self.client.default_timeout());
        // A timeout too large to add is no deadline at all.
        timeout.and_then(|t| Instant::now().checked_add(t))
    }

    /// Opens the call and sends its arguments.
    async fn start(self, deadline: Option<Instant>, end_stream: bool) -> Result<Call, Status> {
        let conn = self.client.connection().await?;
        // Opening counts against the task's cooperative budget: a task that opens calls in a
        // loop yields now and then, so the writer sends the OPEN frames instead of a queue
        // holding every one of them (memory the queue does not give back).
        tokio::task::coop::consume_budget().await;
        let (call, rest) = self.open(conn, deadline, end_stream)?;
        call.send_rest(rest, end_stream).await?;
        Ok(call)
    }

    /// Opens the call on `conn`. The arguments go in the OPEN frame when they fit; otherwise
    /// they are returned, to be sent next.
    fn open(
        self,
        conn: Connection,
        deadline: Option<Instant>,
        end_stream: bool,
    ) -> Result<(Call, Option<Bytes>), Status> {
        let args = self.args?;
        // What is left of the deadline travels with the call.
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let (stream, rest) = conn.open(
            self.method,
            timeout,
            self.options.metadata,
            args,
            end_stream,
        )?;
        let call = Call {
            conn,
            stream,
            deadline,
        };
        Ok((call, rest))
    }
}

/// A call in progress on the client. Dropping it before the server ended the call cancels the
/// call on the server.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) conn: Connection,
    pub(crate) stream: Arc<CallStream>,
    pub(crate) deadline: Option<Instant>,
}

impl Call {
    pub(crate) fn poll_recv(
        &self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Bytes, Status>>> {
        self.conn.poll_recv(&self.stream, cx)
    }

    /// Sends the arguments [`Request::open`] could not put in the OPEN frame, if any.
    async fn send_rest(&self, rest: Option<Bytes>, end_stream: bool) -> Result<(), Status> {
        match rest {
            Some(args) => self.conn.send_message(&self.stream, args, end_stream).await,
            None => Ok(()),
        }
    }

    /// The next reply of a streaming call, read by `read` out of `run`: see
    /// [`Shared::poll_read`](crate::connection::Shared::poll_read).
    pub(crate) fn poll_read<R>(
        &self,
        run: &mut Run,
        cx: &mut TaskContext<'_>,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Poll<Option<Result<R, Status>>> {
        self.conn.poll_read(&self.stream, run, cx, read)
    }

    /// Waits until the server accepted, answered or refused the call.
    async fn accepted(&self) -> Result<(), Status> {
        poll_fn(|cx| self.stream.poll_started(cx)).await;
        match self.stream.early_error() {
            Some(status) => Err(status),
            None => Ok(()),
        }
    }

    /// The single reply of a unary or client-streaming call.
    async fn reply<R: DeserializeOwned>(&self) -> Result<R, Status> {
        decode(&self.reply_body().await?)
    }

    /// The single reply's message, undecoded.
    async fn reply_body(&self) -> Result<Bytes, Status> {
        let mut reply = None;
        poll_fn(|cx| self.poll_reply(cx, &mut reply)).await
    }

    /// Polls for the single reply of a call. `reply` keeps the message until the end of the
    /// call confirms it was the only one.
    fn poll_reply(
        &self,
        cx: &mut TaskContext<'_>,
        reply: &mut Option<Bytes>,
    ) -> Poll<Result<Bytes, Status>> {
        loop {
            return Poll::Ready(match std::task::ready!(self.poll_recv(cx)) {
                Some(Ok(body)) if reply.is_none() => {
                    *reply = Some(body);
                    continue;
                }
                Some(Ok(_)) => Err(Status::internal("the server sent more than one reply")),
                Some(Err(status)) => Err(status),
                None => reply
                    .take()
                    .ok_or_else(|| Status::internal("the server ended the call without a reply")),
            });
        }
    }

    pub(crate) fn cancel(&self, status: Status) {
        self.conn.cancel(&self.stream, status);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.conn.call_dropped();
        if self.conn.release(&self.stream) {
            // The call had ended: nothing to tell the server.
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.cancel(Status::deadline_exceeded(
                "the call's deadline passed on the client",
            ));
        } else {
            self.cancel(Status::cancelled("the client dropped the call"));
        }
    }
}

/// Decodes a reply message.
pub(crate) fn decode<R: DeserializeOwned>(body: &[u8]) -> Result<R, Status> {
    message::decode(body).map_err(|err| {
        Status::internal(format!(
            "a reply does not decode as {}: {err}",
            std::any::type_name::<R>()
        ))
    })
}

async fn with_deadline<T>(
    deadline: Option<Instant>,
    fut: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match deadline {
        None => fut.await,
        Some(deadline) => match tokio::time::timeout_at(deadline, fut).await {
            Ok(result) => result,
            Err(_) => Err(deadline_passed()),
        },
    }
}

/// How a call ends when its deadline passes while the client waits.
pub(crate) fn deadline_passed() -> Status {
    Status::deadline_exceeded("the call's deadline passed")
}

/// How sending a request stream ended.
pub(crate) enum PumpEnd {
    /// Every item was sent and the client's side half-closed.
    Done,
    /// The call ended first; its outcome is in the response.
    CallEnded,
    /// An item could not be sent (it does not encode, or is over the server's size limit).
    Failed(Status),
}

/// Sends every item of `items` on the call's stream, then half-closes.
pub(crate) async fn pump<I: Serialize>(
    conn: &Connection,
    stream: &Arc<CallStream>,
    items: impl Stream<Item = I>,
) -> PumpEnd {
    match send_stream(conn.clone(), stream.clone(), items.map(Ok)).await {
        Ok(()) => {
            conn.close_send(stream);
            PumpEnd::Done
        }
        Err(SendStreamError::Item(status)) => PumpEnd::Failed(status),
        Err(SendStreamError::Ended(_)) => PumpEnd::CallEnded,
    }
}

macro_rules! call_options {
    ($($ty:ident<$($g:ident),+>),+ $(,)?) => {$(
        impl<$($g),+> $ty<$($g),+> {
            /// Fails the call with `DeadlineExceeded` unless it ends within `timeout`. The server
            /// receives the deadline too and stops its handler when it passes.
            pub fn timeout(mut self, timeout: Duration) -> Self {
                self.request.options.timeout = Some(Some(timeout));
                self
            }

            /// Gives this call no deadline, even if the client has a default
            /// [`timeout`](crate::ClientBuilder::timeout): for long-lived streams.
            pub fn no_timeout(mut self) -> Self {
                self.request.options.timeout = Some(None);
                self
            }

            /// Sends `key: value` with the call; the handler reads it from
            /// [`Context::metadata`](crate::Context::metadata).
            pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
                self.request.options.metadata.insert(key, value);
                self
            }
        }

        impl<$($g),+> fmt::Debug for $ty<$($g),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("method", &self.request.method)
                    .field("timeout", &self.request.options.timeout)
                    .field("metadata", &self.request.options.metadata)
                    .finish_non_exhaustive()
            }
        }
    )+};
}

/// A unary call; `.await` it for the reply.
#[must_use = "a call does nothing until it is awaited"]
pub struct UnaryCall<R> {
    request: Request,
    _reply: PhantomData<fn() -> R>,
}

/// A server-streaming call; `.await` it for the [`ResponseStream`].
#[must_use = "a call does nothing until it is awaited"]
pub struct ServerStreamingCall<R> {
    request: Request,
    _reply: PhantomData<fn() -> R>,
}

/// A client-streaming call; `.await` it to send the items and get the reply.
#[must_use = "a call does nothing until it is awaited"]
pub struct ClientStreamingCall<I, R> {
    request: Request,
    items: BoxStream<'static, I>,
    _reply: PhantomData<fn() -> R>,
}

/// A bidirectional call fed by a stream; `.await` it for the [`ResponseStream`] (the items are
/// sent in the background meanwhile).
#[must_use = "a call does nothing until it is awaited"]
pub struct BidiStreamingCall<I, R> {
    request: Request,
    items: BoxStream<'static, I>,
    _reply: PhantomData<fn() -> R>,
}

/// A bidirectional call driven by hand; `.await` it for a [`Duplex`] handle.
#[must_use = "a call does nothing until it is awaited"]
pub struct DuplexCall<I, R> {
    request: Request,
    _items: PhantomData<fn(I) -> R>,
}

call_options!(
    UnaryCall<R>,
    ServerStreamingCall<R>,
    ClientStreamingCall<I, R>,
    BidiStreamingCall<I, R>,
    DuplexCall<I, R>,
);

impl<R: DeserializeOwned + Send + 'static> IntoFuture for UnaryCall<R> {
    type Output = Result<R, Status>;
    type IntoFuture = UnaryFuture<R>;

    fn into_future(self) -> UnaryFuture<R> {
        UnaryFuture {
            state: Unary::Start(self.request),
            _reply: PhantomData,
        }
    }
}

/// A unary call running: what `.await` on a [`UnaryCall`] polls. Dropping it before the reply
/// came cancels the call on the server.
///
/// Written out rather than boxed: the common call (connected, arguments that fit in the OPEN
/// frame) takes no allocation of its own, and only one with a deadline holds a timer.
#[must_use = "a call does nothing until it is awaited"]
pub struct UnaryFuture<R> {
    state: Unary,
    _reply: PhantomData<fn() -> R>,
}

enum Unary {
    /// Not polled yet.
    Start(Request),
    /// The request went out in the OPEN frame: waiting for the reply (kept in `reply` until
    /// the end of the call confirms it was the only one).
    Waiting {
        call: Call,
        reply: Option<Bytes>,
        deadline: Option<Pin<Box<Sleep>>>,
    },
    /// Everything else, as `async` code in a box: connecting first, or arguments too large for
    /// the OPEN frame.
    Boxed(BoxFuture<'static, Result<Bytes, Status>>),
    Done,
}

impl<R> fmt::Debug for UnaryFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnaryFuture");
        match &self.state {
            Unary::Start(request) => d.field("method", &request.method).field("state", &"start"),
            Unary::Waiting { call, .. } => d
                .field("stream", &call.stream.id)
                .field("state", &"waiting for the reply"),
            Unary::Boxed(_) => d.field("state", &"connecting or sending"),
            Unary::Done => d.field("state", &"done"),
        };
        d.finish()
    }
}

impl<R: DeserializeOwned> Future for UnaryFuture<R> {
    type Output = Result<R, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<R, Status>> {
        let state = &mut self.get_mut().state;
        let reply = loop {
            break match state {
                Unary::Start(_) => {
                    // As in `Request::start`, opening counts against the cooperative budget.
                    let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
                    coop.made_progress();
                    let Unary::Start(request) = std::mem::replace(state, Unary::Done) else {
                        unreachable!("matched above")
                    };
                    match start_unary(request) {
                        Ok(started) => {
                            *state = started;
                            continue;
                        }
                        Err(status) => Err(status),
                    }
                }
                Unary::Waiting {
                    call,
                    reply,
                    deadline,
                } => match call.poll_reply(cx, reply) {
                    Poll::Ready(reply) => reply,
                    Poll::Pending => {
                        let passed = deadline
                            .as_mut()
                            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                        if !passed {
                            return Poll::Pending;
                        }
                        Err(deadline_passed())
                    }
                },
                Unary::Boxed(fut) => std::task::ready!(fut.as_mut().poll(cx)),
                Unary::Done => panic!("a unary call was polled after it completed"),
            };
        };
        // Dropping the call here releases it, or cancels it if it failed on this side.
        *state = Unary::Done;
        Poll::Ready(reply.and_then(|body| decode(&body)))
    }
}

/// Starts a unary call: without waiting when its connection is up and its arguments fit in
/// the OPEN frame (then only a deadline costs an allocation: its timer), else in a box.
fn start_unary(request: Request) -> Result<Unary, Status> {
    let deadline = request.deadline();
    let Some(conn) = request.client.usable_connection() else {
        return Ok(Unary::Boxed(Box::pin(with_deadline(
            deadline,
            async move { request.start(deadline, true).await?.reply_body().await },
        ))));
    };
    let (call, rest) = request.open(conn, deadline, true)?;
    if rest.is_some() {
        return Ok(Unary::Boxed(Box::pin(with_deadline(
            deadline,
            async move {
                call.send_rest(rest, true).await?;
                call.reply_body().await
            },
        ))));
    }
    Ok(Unary::Waiting {
        call,
        reply: None,
        deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
    })
}

impl<R: DeserializeOwned + Send + 'static> IntoFuture for ServerStreamingCall<R> {
    type Output = Result<ResponseStream<R>, Status>;
    type IntoFuture = BoxFuture<'static, Result<ResponseStream<R>, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let deadline = self.request.deadline();
            let call = with_deadline(deadline, async {
                let call = self.request.start(deadline, true).await?;
                call.accepted().await?;
                Ok(call)
            })
            .await?;
            Ok(ResponseStream::new(call, None))
        })
    }
}

impl<I, R> IntoFuture for ClientStreamingCall<I, R>
where
    I: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    type Output = Result<R, Status>;
    type IntoFuture = BoxFuture<'static, Result<R, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let deadline = self.request.deadline();
            with_deadline(deadline, async {
                let call = self.request.start(deadline, false).await?;
                let sending = pin!(pump(&call.conn, &call.stream, self.items));
                let reply = pin!(call.reply::<R>());
                match select(sending, reply).await {
                    // The server answered before taking every item; its answer stands.
                    Either::Right((reply, _)) => reply,
                    Either::Left((PumpEnd::Failed(status), _)) => Err(status),
                    Either::Left((PumpEnd::Done | PumpEnd::CallEnded, reply)) => reply.await,
                }
            })
            .await
        })
    }
}

impl<I, R> IntoFuture for BidiStreamingCall<I, R>
where
    I: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    type Output = Result<ResponseStream<R>, Status>;
    type IntoFuture = BoxFuture<'static, Result<ResponseStream<R>, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let deadline = self.request.deadline();
            let items = self.items;
            let (call, sender) = with_deadline(deadline, async {
                let call = self.request.start(deadline, false).await?;
                // Requests flow while the caller reads replies, so they get a task of their own,
                // started before waiting for the server: a handler may read before it answers.
                let (conn, stream) = (call.conn.clone(), call.stream.clone());
                let sender = AbortOnDrop::spawn(async move {
                    // The items are the caller's code: a panic there must end the call, not
                    // leave both sides waiting.
                    match AssertUnwindSafe(pump(&conn, &stream, items))
                        .catch_unwind()
                        .await
                    {
                        Ok(PumpEnd::Failed(status)) => conn.cancel(&stream, status),
                        Ok(PumpEnd::Done | PumpEnd::CallEnded) => {}
                        Err(_) => {
                            conn.cancel(&stream, Status::internal("the request stream panicked"));
                        }
                    }
                });
                call.accepted().await?;
                Ok((call, sender))
            })
            .await?;
            Ok(ResponseStream::new(call, Some(sender)))
        })
    }
}

impl<I, R> IntoFuture for DuplexCall<I, R>
where
    I: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    type Output = Result<Duplex<I, R>, Status>;
    type IntoFuture = BoxFuture<'static, Result<Duplex<I, R>, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let deadline = self.request.deadline();
            let call = with_deadline(deadline, self.request.start(deadline, false)).await?;
            let sender = DuplexSender::new(call.conn.clone(), call.stream.clone());
            Ok(Duplex::new(sender, ResponseStream::new(call, None)))
        })
    }
}

impl<R> UnaryCall<R> {
    pub(crate) fn new(request: Request) -> Self {
        UnaryCall {
            request,
            _reply: PhantomData,
        }
    }
}

impl<R> ServerStreamingCall<R> {
    pub(crate) fn new(request: Request) -> Self {
        ServerStreamingCall {
            request,
            _reply: PhantomData,
        }
    }
}

impl<I, R> ClientStreamingCall<I, R> {
    pub(crate) fn new(request: Request, items: impl Stream<Item = I> + Send + 'static) -> Self {
        ClientStreamingCall {
            request,
            items: items.boxed(),
            _reply: PhantomData,
        }
    }
}

impl<I, R> BidiStreamingCall<I, R> {
    pub(crate) fn new(request: Request, items: impl Stream<Item = I> + Send + 'static) -> Self {
        BidiStreamingCall {
            request,
            items: items.boxed(),
            _reply: PhantomData,
        }
    }
}

impl<I, R> DuplexCall<I, R> {
    pub(crate) fn new(request: Request) -> Self {
        DuplexCall {
            request,
            _items: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{read_frame, test_wired_client};
    use crate::frame::Frame;

    fn open(conn: &Connection) -> Call {
        let args = Bytes::from_static(b"\x91\x01");
        let (stream, _) = conn.open("S.m", None, Metadata::new(), args, true).unwrap();
        Call {
            conn: conn.clone(),
            stream,
            deadline: None,
        }
    }

    #[tokio::test]
    async fn a_call_alone_writes_its_open_itself_until_another_call_is_held() {
        let (conn, mut wire) = test_wired_client();
        // No writer task runs: only a call writing its own OPEN puts anything on the wire.
        let first = open(&conn);
        assert!(matches!(
            read_frame(&mut wire).await,
            Frame::Open { id: 1, .. }
        ));
        // While the first call is held, the next is queued for the writer, to share a write.
        let second = open(&conn);
        let mut byte = [0; 1];
        let read = tokio::io::AsyncReadExt::read(&mut wire, &mut byte).now_or_never();
        assert!(read.is_none(), "nothing more written: {read:?}");
        // Dropped unfinished, both are cancelled; with no call held, the next is alone again
        // and writes everything queued ahead of its OPEN.
        drop((first, second));
        let _third = open(&conn);
        let mut written = Vec::new();
        for _ in 0..4 {
            written.push(match read_frame(&mut wire).await {
                Frame::Open { id, .. } => ("OPEN", id),
                Frame::Cancel { id, .. } => ("CANCEL", id),
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(
            written,
            [("OPEN", 2), ("CANCEL", 1), ("CANCEL", 2), ("OPEN", 3)]
        );
    }
}
