//! [`RequestStream`]: the stream argument a handler receives.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::Stream;
use serde::de::DeserializeOwned;

use crate::connection::Shared;
use crate::stream::Stream as CallStream;
use crate::stream::run::Run;
use crate::{Status, message};

/// The client's stream of requests, as a handler sees it.
///
/// It yields each item the client sent and ends only when the client half-closes its side. If
/// the call fails first (the client cancels or disconnects, an item does not decode, the
/// deadline passes), the handler is stopped — its future is dropped — so a handler never mistakes
/// a broken stream for a finished one.
pub struct RequestStream<T> {
    conn: Arc<Shared>,
    stream: Arc<CallStream>,
    /// The items taken from the stream and not read yet.
    run: Run,
    failed: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T> RequestStream<T> {
    pub(crate) fn new(conn: Arc<Shared>, stream: Arc<CallStream>) -> RequestStream<T> {
        RequestStream {
            conn,
            stream,
            run: Run::default(),
            failed: false,
            _item: PhantomData,
        }
    }

    fn fail(&mut self, status: Status) -> Poll<Option<T>> {
        // The call's task sees this, drops the handler and answers the client with `status`.
        self.failed = true;
        self.conn.abort_call(&self.stream, status);
        Poll::Pending
    }
}

impl<T: DeserializeOwned> Stream for RequestStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Pending;
        }
        match this
            .conn
            .poll_read(&this.stream, &mut this.run, cx, message::decode::<T>)
        {
            Poll::Ready(Some(Ok(decoded))) => match decoded {
                Ok(item) => Poll::Ready(Some(item)),
                Err(err) => this.fail(Status::invalid_argument(format!(
                    "a request item does not decode as {}: {err}",
                    std::any::type_name::<T>()
                ))),
            },
            Poll::Ready(Some(Err(status))) => this.fail(status),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for RequestStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestStream")
            .field("stream", &self.stream.id)
            .finish_non_exhaustive()
    }
}
