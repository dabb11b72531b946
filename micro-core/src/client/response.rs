//! [`ResponseStream`]: the replies of a streaming call, as the client reads them.

use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::Stream;
use serde::de::DeserializeOwned;
use tokio::time::Sleep;

use super::call::{Call, deadline_passed, decode};
use crate::Status;
use crate::stream::run::Run;
use crate::task::AbortOnDrop;

/// The server's replies to a streaming call.
///
/// Yields `Ok(item)` for each reply; a call that fails yields one `Err(status)` (the server's
/// error, `Unavailable` for a lost connection, `DeadlineExceeded` at the deadline) and then
/// ends. A stream that ends without an error ended with `Ok` on the server.
///
/// Dropping it before the end cancels the call on the server.
pub struct ResponseStream<T> {
    call: Call,
    /// The replies taken from the stream and not read yet.
    run: Run,
    sleep: Option<Pin<Box<Sleep>>>,
    _sender: Option<AbortOnDrop>,
    done: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T> ResponseStream<T> {
    pub(crate) fn new(call: Call, sender: Option<AbortOnDrop>) -> ResponseStream<T> {
        let sleep = call.deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
        ResponseStream {
            call,
            run: Run::default(),
            sleep,
            _sender: sender,
            done: false,
            _item: PhantomData,
        }
    }

    fn fail(&mut self, status: Status) -> Poll<Option<Result<T, Status>>> {
        self.done = true;
        self.call.cancel(status.clone());
        Poll::Ready(Some(Err(status)))
    }
}

impl<T: DeserializeOwned> ResponseStream<T> {
    /// The next reply: `Ok(Some(item))`, `Ok(None)` once the call ended successfully, or the
    /// call's error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a reply is never lost when the future is dropped unfinished.
    ///
    /// # Errors
    ///
    /// The status the call failed with.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }
}

impl<T: DeserializeOwned> Stream for ResponseStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(sleep) = &mut this.sleep
            && sleep.as_mut().poll(cx).is_ready()
        {
            return this.fail(deadline_passed());
        }
        match this.call.poll_read(&mut this.run, cx, decode::<T>) {
            Poll::Ready(Some(Ok(decoded))) => match decoded {
                Ok(item) => Poll::Ready(Some(Ok(item))),
                Err(status) => this.fail(status),
            },
            Poll::Ready(Some(Err(status))) => {
                this.done = true;
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for ResponseStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("stream", &self.call.stream.id)
            .field("done", &self.done)
            .finish()
    }
}
