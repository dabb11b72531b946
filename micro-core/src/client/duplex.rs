//! [`Duplex`]: a bidirectional call driven by hand, in the style of go-micro's
//! `Send`/`Recv`/`Close`.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ResponseStream;
use crate::connection::Connection;
use crate::stream::Stream as CallStream;
use crate::{Status, message};

/// Both directions of a bidirectional call: [`send`](Duplex::send) requests,
/// [`close_send`](Duplex::close_send) when done, [`recv`](Duplex::recv) replies until `None`.
///
/// [`split`](Duplex::split) it to send from one task while receiving in another.
///
/// The request stream ends cleanly only through `close_send`: dropping the handle (or its
/// sender) without it cancels the call, so the server never mistakes an abandoned stream for
/// a finished one.
pub struct Duplex<I, R> {
    // Dropped first: cancelling the call before the sender's drop runs.
    receiver: ResponseStream<R>,
    sender: DuplexSender<I>,
}

impl<I: Serialize, R: DeserializeOwned> Duplex<I, R> {
    pub(crate) fn new(sender: DuplexSender<I>, receiver: ResponseStream<R>) -> Duplex<I, R> {
        Duplex { receiver, sender }
    }

    /// Sends one request, waiting while the server's window is full.
    ///
    /// # Errors
    ///
    /// If the call has ended (its status is what [`recv`](Duplex::recv) returns), or the item
    /// does not encode or is larger than the server accepts.
    pub async fn send(&mut self, item: I) -> Result<(), Status> {
        self.sender.send(item).await
    }

    /// Ends the request stream; the server still replies until it ends the call.
    ///
    /// # Errors
    ///
    /// If the request stream was closed already.
    pub fn close_send(&mut self) -> Result<(), Status> {
        self.sender.close_send()
    }

    /// The next reply, `Ok(None)` once the call ended successfully, or the call's error.
    ///
    /// # Errors
    ///
    /// The status the call failed with.
    pub async fn recv(&mut self) -> Result<Option<R>, Status> {
        self.receiver.message().await
    }

    /// Splits into a sender and the reply stream. Dropping either before the end cancels the
    /// call (the sender: unless [`close_send`](DuplexSender::close_send) was called).
    pub fn split(self) -> (DuplexSender<I>, ResponseStream<R>) {
        (self.sender, self.receiver)
    }
}

impl<I, R: DeserializeOwned> Stream for Duplex<I, R> {
    type Item = Result<R, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().receiver).poll_next(cx)
    }
}

impl<I, R> fmt::Debug for Duplex<I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Duplex")
            .field("sender", &self.sender)
            .field("receiver", &self.receiver)
            .finish()
    }
}

/// The sending half of a [`Duplex`]. End the request stream with
/// [`close_send`](DuplexSender::close_send); dropping the sender without it cancels the call.
pub struct DuplexSender<I> {
    conn: Connection,
    stream: Arc<CallStream>,
    closed: bool,
    _item: PhantomData<fn(I)>,
}

impl<I> DuplexSender<I> {
    pub(crate) fn new(conn: Connection, stream: Arc<CallStream>) -> DuplexSender<I> {
        DuplexSender {
            conn,
            stream,
            closed: false,
            _item: PhantomData,
        }
    }

    /// Ends the request stream; the server still replies until it ends the call.
    ///
    /// # Errors
    ///
    /// `FailedPrecondition` if it was closed already.
    pub fn close_send(&mut self) -> Result<(), Status> {
        if self.closed {
            return Err(Status::failed_precondition(
                "the request stream is closed already",
            ));
        }
        self.closed = true;
        self.conn.close_send(&self.stream);
        Ok(())
    }
}

impl<I: Serialize> DuplexSender<I> {
    /// Sends one request, waiting while the server's window is full.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future may leave a request partly sent, which breaks the
    /// call. Drop it only to abandon the call.
    ///
    /// # Errors
    ///
    /// If the call has ended (the reply stream has its status), the request stream was closed,
    /// or the item does not encode or is larger than the server accepts.
    pub async fn send(&mut self, item: I) -> Result<(), Status> {
        if self.closed {
            return Err(Status::failed_precondition("send after close_send"));
        }
        let msg = self.conn.check_size(message::encode(&item)?)?;
        self.conn.send_message(&self.stream, msg, false).await
    }
}

impl<I> Drop for DuplexSender<I> {
    fn drop(&mut self) {
        if !self.closed {
            // A task that stopped sending without saying it was done (it returned early,
            // panicked or was aborted): the server must not see a finished stream.
            self.conn.cancel(
                &self.stream,
                Status::cancelled("the request stream was dropped without close_send"),
            );
        }
    }
}

impl<I> fmt::Debug for DuplexSender<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuplexSender")
            .field("stream", &self.stream.id)
            .field("closed", &self.closed)
            .finish()
    }
}
