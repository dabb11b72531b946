//! One call on the server: the task that runs its handler under the call's deadline, stops it
//! when the call is cancelled, and sends the final status.

use std::any::Any;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures::FutureExt;
use tokio::time::Instant;

use crate::connection::Shared;
use crate::private::HandlerFuture;
use crate::stream::Stream;
use crate::{Code, Context, Status};

/// What a generated handler receives for one call: the call's stream and context.
#[doc(hidden)]
#[derive(Debug)]
pub struct ServerCall {
    pub(crate) conn: Arc<Shared>,
    pub(crate) stream: Arc<Stream>,
    pub(crate) context: Context,
}

impl ServerCall {
    pub(crate) fn new(conn: Arc<Shared>, stream: Arc<Stream>, context: Context) -> ServerCall {
        ServerCall {
            conn,
            stream,
            context,
        }
    }
}

enum Outcome {
    Done(std::thread::Result<Result<Option<Bytes>, Status>>),
    Deadline,
    Aborted(Status),
}

/// Counts the handler as running until dropped, even if the task is torn down.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.handler_finished();
    }
}

/// Runs one call's handler to its end and answers the client.
pub(crate) async fn run(
    conn: Arc<Shared>,
    stream: Arc<Stream>,
    deadline: Option<Instant>,
    handler: HandlerFuture,
) {
    let running = Running(conn.clone());
    let mut handler = Some(AssertUnwindSafe(handler).catch_unwind());
    // Boxed, so a call without a deadline does not carry a timer in its (long-lived) task.
    let mut sleep = deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
    let outcome = poll_fn(|cx| {
        if let Poll::Ready(status) = stream.poll_abort(cx) {
            return Poll::Ready(Outcome::Aborted(status));
        }
        if let Some(sleep) = &mut sleep
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Outcome::Deadline);
        }
        handler
            .as_mut()
            .expect("polled after completion")
            .poll_unpin(cx)
            .map(Outcome::Done)
    })
    .await;
    if let Outcome::Deadline = outcome {
        // Recorded first, so nothing the dropped handler leaves behind (a message it was
        // sending) relabels the call.
        conn.abort_call(
            &stream,
            Status::deadline_exceeded("the call's deadline passed on the server"),
        );
    }
    // Cancellation means the handler's future is dropped, before the client hears anything.
    // Its destructors are user code too: a panic there must not skip the answer.
    let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(handler.take())));
    let outcome = match (outcome, dropped) {
        (Outcome::Done(Ok(_)), Err(panic)) => Outcome::Done(Err(panic)),
        (outcome, _) => outcome,
    };
    let (status, reply) = match outcome {
        Outcome::Done(Ok(Ok(reply))) => (Status::new(Code::Ok, ""), reply),
        Outcome::Done(Ok(Err(status))) => (status, None),
        Outcome::Done(Err(panic)) => {
            let what = panic_message(&*panic);
            tracing::error!(stream = stream.id, panic = %what, "handler panicked");
            (
                Status::internal(format!("the handler panicked: {what}")),
                None,
            )
        }
        Outcome::Deadline => (
            Status::deadline_exceeded("the call's deadline passed on the server"),
            None,
        ),
        // A cancelled or disconnected call is no longer in the table, so nothing is sent; a
        // call stopped for bad input is, and the client learns why.
        Outcome::Aborted(status) => (status, None),
    };
    // Boxed: only a call that ends needs room for the last send, not every idle one.
    Box::pin(conn.finish(&stream, status, reply)).await;
    drop(running);
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
