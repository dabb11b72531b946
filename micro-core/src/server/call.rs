//! One call on the server: the task that runs its handler under the call's deadline, stops it
//! when the call is cancelled, and sends the final status.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

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
    /// The arguments, when they came whole with the OPEN frame instead of through the stream.
    pub(crate) args: Option<Bytes>,
}

impl ServerCall {
    pub(crate) fn new(
        conn: Arc<Shared>,
        stream: Arc<Stream>,
        context: Context,
        args: Option<Bytes>,
    ) -> ServerCall {
        ServerCall {
            conn,
            stream,
            context,
            args,
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

/// The whole of one call's task: runs `handler` under the call's deadline, stops it when the
/// call is cancelled, then answers the client.
///
/// The handler is inline, in the same box as this state, and the task holds only that box
/// (see [`HandlerFuture`]): an idle call costs one allocation for all of it, and a task of the
/// smallest size. Ending the call takes no box unless its reply must wait for credit.
pub(crate) fn run<F>(
    conn: Arc<Shared>,
    stream: Arc<Stream>,
    deadline: Option<Instant>,
    handler: F,
) -> HandlerFuture
where
    F: Future<Output = Result<Option<Bytes>, Status>> + Send + 'static,
{
    Box::pin(Run {
        running: Running(conn),
        stream,
        // Boxed, so a call without a deadline does not carry a timer.
        sleep: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        end: None,
        handler: Some(handler),
    })
}

pin_project! {
    /// The future of [`run`]. Written out rather than `async`, so the handler is held once (an
    /// `async` block would keep the value it captured next to the one it pinned).
    struct Run<F> {
        running: Running,
        stream: Arc<Stream>,
        sleep: Option<Pin<Box<Sleep>>>,
        // Sending a reply that waits for credit, then the final status, once the handler is
        // gone.
        end: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
        #[pin]
        handler: Option<F>,
    }
}

impl<F> Future for Run<F>
where
    F: Future<Output = Result<Option<Bytes>, Status>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.end.is_none() {
            let outcome = 'outcome: {
                if let Poll::Ready(status) = this.stream.poll_abort(cx) {
                    break 'outcome Outcome::Aborted(status);
                }
                if let Some(sleep) = this.sleep
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    break 'outcome Outcome::Deadline;
                }
                let handler = this.handler.as_mut().as_pin_mut();
                let handler = handler.expect("polled after completion");
                // The handler is the user's code: a panic ends the call with `Internal`.
                match std::panic::catch_unwind(AssertUnwindSafe(|| handler.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => Outcome::Done(Ok(result)),
                    Err(panic) => Outcome::Done(Err(panic)),
                }
            };
            *this.sleep = None;
            let conn = &this.running.0;
            let (status, reply) = conclude(conn, this.stream, outcome, || this.handler.set(None));
            // Usually the reply fits in the CLOSE frame and the call ends here; a reply that
            // must wait for credit goes out from a box of its own.
            let (status, reply) = match conn.finish(this.stream, status, reply) {
                None => return Poll::Ready(()),
                Some(rest) => rest,
            };
            let (conn, stream) = (conn.clone(), this.stream.clone());
            *this.end = Some(Box::pin(async move {
                conn.finish_sending(&stream, status, reply).await;
            }));
        }
        let end = this.end.as_mut().expect("set above");
        end.as_mut().poll(cx)
    }
}

/// What to answer for a handler that finished or must stop; `drop_handler` drops it first.
fn conclude(
    conn: &Shared,
    stream: &Stream,
    outcome: Outcome,
    drop_handler: impl FnOnce(),
) -> (Status, Option<Bytes>) {
    if let Outcome::Deadline = outcome {
        // Recorded first, so nothing the dropped handler leaves behind (a message it was
        // sending) relabels the call.
        conn.abort_call(
            stream,
            Status::deadline_exceeded("the call's deadline passed on the server"),
        );
    }
    // Cancellation means the handler's future is dropped, before the client hears anything.
    // Its destructors are user code too: a panic there must not skip the answer.
    let dropped = std::panic::catch_unwind(AssertUnwindSafe(drop_handler));
    let outcome = match (outcome, dropped) {
        (Outcome::Done(Ok(_)), Err(panic)) => Outcome::Done(Err(panic)),
        (outcome, _) => outcome,
    };
    match outcome {
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
    }
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
